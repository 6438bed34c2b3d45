"""Issue 12, class 15: clear errors (exit 2, one line) where tracebacks escaped.

An unwritable manifest or directory during a rotation, a journal this version cannot use, and
``flask secrets invalidate --pidfile`` with a file that holds no live process id. Each case is a
real file-system state: an immutable file or directory (``chattr +i``, which refuses even root;
where it cannot be set, a read-only directory for a non-root user), a directory where the file
should be, or a path through a regular file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from yosai_secrets.cli import cli
from yosai_secrets.cli.flask_group import secrets_group
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.fileio import TEMP_SUFFIX, FileWriteError, atomic_write_text
from yosai_secrets.rotation.journal import journal_path
from yosai_secrets.rotation.manifest import SecretManifest

from .rotation_support import make_manifest, values

HELD = 3


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """Make ``path`` (a file or a directory) refuse every change, even root's, for the block.

    ``chattr +i`` where the file system and the privileges allow it; else, for a non-root user,
    no write permission on the directory. Skips when neither is possible.
    """
    chattr = shutil.which("chattr")
    done = chattr is not None and (
        subprocess.run([chattr, "+i", str(path)], capture_output=True, check=False).returncode == 0
    )
    directory = path if path.is_dir() else path.parent
    mode = directory.stat().st_mode
    if not done:
        if os.geteuid() == 0:
            pytest.skip("chattr +i is not available here and root ignores permissions")
        directory.chmod(0o500)
    try:
        yield
    finally:
        if done:
            subprocess.run([str(chattr), "-i", str(path)], check=True)
        else:
            directory.chmod(mode)


def _rotate(manifest: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["rotate", "--manifest", str(manifest), *extra])
    return result.exit_code, result.output


def _assert_one_clear_line(code: int, out: str, *named: str) -> None:
    """Exit 2, no traceback, and an ``error:`` line naming each of ``named``."""
    assert code == 2, out
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
    for name in named:
        assert name in errors[0], (name, errors[0])


def _leftovers(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.endswith(TEMP_SUFFIX)]


# -- writing a file -------------------------------------------------------------------------------


def test_a_write_through_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    """A target whose parent is a regular file: a FileWriteError naming it, not NotADirectory."""
    blocker = tmp_path / "k8s"
    blocker.write_text("a file, not a directory\n", encoding="utf-8")
    target = blocker / "config" / "api-secrets.yaml"
    with pytest.raises(FileWriteError) as info:
        atomic_write_text(target, "canary-value\n", what="the Secret manifest")
    message = str(info.value)
    assert str(target) in message and "the Secret manifest" in message
    assert "not a directory" in message and "canary-value" not in message
    assert isinstance(info.value, ConfigurationError) and isinstance(info.value, OSError)
    assert info.value.__context__ is None
    assert blocker.read_text(encoding="utf-8") == "a file, not a directory\n"


def test_a_directory_in_place_of_the_file_is_a_clear_error(tmp_path: Path) -> None:
    """A directory where the file should be: named, said to be a directory, nothing left over."""
    target = tmp_path / "api-secrets.yaml"
    target.mkdir()
    with pytest.raises(FileWriteError, match="is a directory; move it away"):
        atomic_write_text(target, "new\n")
    assert target.is_dir() and not _leftovers(tmp_path)


@pytest.mark.parametrize("what", ["file", "directory"])
def test_an_immutable_file_or_directory_is_a_clear_error(tmp_path: Path, what: str) -> None:
    """An immutable target or directory: the file keeps its text, the message says what to do."""
    folder = tmp_path / "config"
    folder.mkdir()
    target = folder / "api-secrets.yaml"
    target.write_text("old\n", encoding="utf-8")
    with unwritable(target if what == "file" else folder):
        with pytest.raises(FileWriteError) as info:
            atomic_write_text(target, "new\n", what="the Secret manifest")
        assert str(target) in str(info.value)
        assert "writable" in str(info.value) and "run the command again" in str(info.value)
        assert info.value.strerror  # the system's reason, for code that reads OSError.strerror
    assert target.read_text(encoding="utf-8") == "old\n"
    assert not _leftovers(folder)


# -- the rotation ---------------------------------------------------------------------------------


def test_an_immutable_manifest_stops_the_rotation_with_one_line(tmp_path: Path) -> None:
    """rotate on an immutable manifest: exit 2 naming it; once writable, a re-run resumes."""
    manifest = make_manifest(tmp_path)
    before = manifest.read_bytes()
    with unwritable(manifest):
        code, out = _rotate(manifest, "--no-apply")
        _assert_one_clear_line(code, out, "the Secret manifest", str(manifest))
    assert manifest.read_bytes() == before
    code, out = _rotate(manifest, "--no-apply")
    assert code == HELD, out
    assert values(manifest)["SECRET_KEY"] != SecretManifest(
        manifest.with_name("api-secrets.example.yaml")
    ).get("SECRET_KEY")


def test_an_immutable_manifest_stops_the_abort_with_one_line(tmp_path: Path) -> None:
    """--abort on an immutable manifest: exit 2 naming it; once writable, the abort completes."""
    manifest = make_manifest(tmp_path)
    original = manifest.read_bytes()
    assert _rotate(manifest, "--no-apply")[0] == HELD
    with unwritable(manifest):
        code, out = _rotate(manifest, "--abort")
        _assert_one_clear_line(code, out, str(manifest))
    code, out = _rotate(manifest, "--abort")
    assert code == 0, out
    assert manifest.read_bytes() == original


def test_a_directory_in_place_of_the_manifest_is_a_usage_error(tmp_path: Path) -> None:
    """A directory at the manifest's path: click refuses it (exit 2, named), no traceback."""
    manifest = tmp_path / "k8s" / "config" / "api-secrets.yaml"
    manifest.mkdir(parents=True)
    code, out = _rotate(manifest, "--no-apply")
    assert code == 2 and "Traceback" not in out
    assert str(manifest) in out and "is a directory" in out


def test_a_manifest_replaced_by_a_directory_before_saving_is_a_clear_error(
    tmp_path: Path,
) -> None:
    """A manifest that became a directory between reading and saving: one clear error."""
    manifest = make_manifest(tmp_path)
    loaded = SecretManifest(manifest)
    loaded.set("SECRET_KEY", "canary-" + os.urandom(8).hex())
    manifest.unlink()
    manifest.mkdir()
    with pytest.raises(ConfigurationError) as info:
        loaded.save()
    assert str(manifest) in str(info.value) and "canary-" not in str(info.value)
    assert manifest.is_dir() and not _leftovers(manifest.parent)


def test_an_immutable_manifest_directory_stops_the_rotation_with_one_line(
    tmp_path: Path,
) -> None:
    """rotate with an immutable manifest directory: exit 2 with one line, no traceback."""
    manifest = make_manifest(tmp_path)
    with unwritable(manifest.parent):
        code, out = _rotate(manifest, "--no-apply")
    _assert_one_clear_line(code, out, str(manifest.parent))


@pytest.mark.parametrize(
    "journal",
    ['{"format":1}', '{"format": 999}', '{"format": "1"}', "[]", "null", "", "not json", "{"],
)
def test_a_journal_this_version_cannot_use_is_one_line(tmp_path: Path, journal: str) -> None:
    """A journal that is not one (format 1 alone, unknown format, not JSON): exit 2, named."""
    manifest = make_manifest(tmp_path)
    before = manifest.read_bytes()
    path = journal_path(manifest)
    path.write_text(journal, encoding="utf-8")
    for action in ((), ("--abort",), ("--finish",)):
        code, out = _rotate(manifest, "--no-apply", *action)
        _assert_one_clear_line(code, out, str(path))
    assert manifest.read_bytes() == before
    assert path.read_text(encoding="utf-8") == journal  # kept: it may hold the only copy


# -- flask secrets invalidate --pidfile --------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _invalidate(*args: str) -> tuple[int, str]:
    result = Flask(__name__).test_cli_runner().invoke(secrets_group, ["invalidate", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot read the pid file"),
        ("", "is empty"),
        ("\n  \n", "is empty"),
        ("garbage", "does not hold a process id"),
        ("-5", "does not hold a process id"),
        ("0", "does not hold a process id"),
        ("12abc", "does not hold a process id"),
        ("1.5", "does not hold a process id"),
        ("\u0661\u0662", "does not hold a process id"),  # Arabic-Indic digits: isdigit() is True
        ("binary", "does not hold a process id"),
        ("99999999999999999999999", "is not a process id"),
        ("dead", "no process"),
    ],
)
def test_invalidate_with_a_bad_pidfile_is_one_line(
    tmp_path: Path, content: str | None, said: str
) -> None:
    """Each bad pid file (missing, empty, not a number, negative, no such process) is one line."""
    pidfile = tmp_path / "server.pid"
    if content == "dead":
        content = f"{_dead_pid()}\n"
    if content == "binary":
        pidfile.write_bytes(b"\xff\xfe\x00 not text")
    elif content is not None:
        pidfile.write_text(content, encoding="utf-8")
    code, out = _invalidate("--pidfile", str(pidfile))
    _assert_one_clear_line(code, out, str(pidfile), said)


def test_invalidate_with_a_directory_as_pidfile_is_one_line(tmp_path: Path) -> None:
    """A directory given as --pidfile is refused by click itself, without a traceback."""
    code, out = _invalidate("--pidfile", str(tmp_path))
    assert code == 2 and "Traceback" not in out and str(tmp_path) in out


@pytest.mark.parametrize(("pid", "said"), [("0", "not a process id"), ("-1", "not a process id")])
def test_invalidate_never_signals_a_process_group(pid: str, said: str) -> None:
    """--pid 0 or a negative id (a whole process group for kill()) is refused, one line."""
    code, out = _invalidate(f"--pid={pid}")
    _assert_one_clear_line(code, out, said)


def test_invalidate_a_pid_that_is_not_running_is_one_line() -> None:
    """--pid of a process that has exited: exit 2, 'no process N is running'."""
    pid = _dead_pid()
    code, out = _invalidate("--pid", str(pid))
    _assert_one_clear_line(code, out, f"no process {pid} is running")


def test_the_pidfile_of_a_live_process_still_signals_it(tmp_path: Path) -> None:
    """A good pid file (with a newline and spaces) still reaches the process (exit 0)."""
    from .rotation_support import sighup_listener

    child = sighup_listener()
    try:
        pidfile = tmp_path / "server.pid"
        pidfile.write_text(f"  {child.pid}\n", encoding="utf-8")
        code, out = _invalidate("--pidfile", str(pidfile))
        assert code == 0, out
        assert child.wait(timeout=10) < 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
