"""The rotation journal: a typed, versioned record, checked on load, created atomically."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from yosai_secrets.cli import cli
from yosai_secrets.errors import RotationError
from yosai_secrets.rotation import (
    ABORT_STEPS,
    FINISH_STEPS,
    ROTATE_STEPS,
    RotationEngine,
    RotationOptions,
    RotationPhase,
    Step,
)
from yosai_secrets.rotation.journal import TEMP_MARK, Journal, journal_path
from yosai_secrets.rotation.state import (
    JOURNAL_FORMAT,
    DatabasePlan,
    DbMode,
    RotationState,
    state_from_json,
)
from yosai_secrets.rotation.steps import RotationSteps
from yosai_secrets.rotation.stores import NullStore

from .rotation_support import REPO_ROOT, Killed, crash_after, make_manifest, values

HELD = 3  # `rotate`'s exit status when the rotation holds


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _options(path: Path, **kw: Any) -> RotationOptions:
    return RotationOptions(manifest=path, apply=False, environ={}, **kw)


def _state(**overrides: Any) -> RotationState:
    fields: dict[str, Any] = {
        "id": "3f0c",
        "started_at": "2024-05-01T10:00:00Z",
        "manifest": "k8s/config/api-secrets.yaml",
        "keys": ["SECRET_KEY", "DB_PASSWORD"],
        "old": {"SECRET_KEY": "old-key", "DB_PASSWORD": "old-pw", "DB_USER": "app_a"},
        "new": {"SECRET_KEY": "new-key", "DB_PASSWORD": "new-pw", "DB_USER": "app_b"},
        "annotations": {"SECRET_KEY": None, "DB_PASSWORD": "2024-01-01T00:00:00Z"},
        "deployment": "yosai-api",
        "namespace": None,
        "store": {"backend": "aws", "entries": {"SECRET_KEY": {"token": "tok-4f9c2e71"}}},
        "db": DatabasePlan(DbMode.ALTERNATING, "app_b", "app_a", "127.0.0.1:5432/app", "SCRAM$x"),
        "plain": ["DB_USER"],
    }
    return RotationState(**{**fields, **overrides})


@pytest.fixture
def rotated(tmp_path: Path, canary: str) -> tuple[Path, Path, dict[str, Any]]:
    """A manifest rotated (not finished) without a cluster or a database: held, then continued
    with --restart (as after the operator changed the password); the manifest, its journal, the
    JSON."""
    path = make_manifest(tmp_path, SECRET_KEY=canary, DB_PASSWORD=canary + "-db")
    code, out = _run("rotate", "--manifest", str(path), "--no-apply")
    assert code == HELD, out
    code, out = _run("rotate", "--manifest", str(path), "--restart")
    assert code == 0, out
    journal = journal_path(path)
    return path, journal, json.loads(journal.read_text(encoding="utf-8"))


def _temps(journal: Path) -> list[Path]:
    return sorted(journal.parent.glob(journal.name + TEMP_MARK + "*"))


# -- the record ----------------------------------------------------------------------------------


def test_state_round_trips_through_the_journal_file(tmp_path: Path) -> None:
    """A state saved and loaded again is equal to the original, database plan and store included."""
    path = tmp_path / "api-secrets.yaml.journal.json"
    state = _state(phase=RotationPhase.AWAITING_OPERATOR, hold=True, unmanaged=["X_PASSWORD"])
    state.steps.append(Step.STORE_STAGE)
    Journal.create(path, state)
    loaded = Journal.load(path)
    assert loaded is not None and loaded.state == state
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    loaded.mark(Step.DB_SET)
    again = Journal.load(path)
    assert again is not None and again.done_steps() == ["prepare", "store-stage", "db-set"]


def test_journal_json_is_versioned_and_readable(
    rotated: tuple[Path, Path, dict[str, Any]],
) -> None:
    """The file carries its format number and writes phases and steps as their plain names."""
    _, _, data = rotated
    assert data["format"] == JOURNAL_FORMAT
    assert data["phase"] == "rotated"
    assert data["steps"] == [str(s) for s in ROTATE_STEPS]
    assert data["db"] is None  # no database connection: no role is managed


def test_repr_of_state_and_journal_shows_no_value(tmp_path: Path) -> None:
    """Neither the state's nor the journal's repr shows an old or new value or the verifier."""
    state = _state()
    journal = Journal(tmp_path / "j.journal.json", state)
    shown = repr(state) + repr(journal) + repr(state.db)
    for value in ("old-key", "new-key", "old-pw", "new-pw", "SCRAM$x", "tok-4f9c2e71"):
        assert value not in shown


def test_journal_data_is_a_read_only_view(tmp_path: Path) -> None:
    """``Journal.data`` shows the saved JSON but cannot be changed behind the typed state."""
    journal = Journal(tmp_path / "j.journal.json", _state())
    assert journal.data["new"]["SECRET_KEY"] == "new-key"
    with pytest.raises(TypeError):
        journal.data["phase"] = "rotated"  # type: ignore[index]


def test_format_1_journal_with_a_managed_role_is_read() -> None:
    """A format 1 journal's ``db`` (with ``managed``) becomes a DatabasePlan, or None."""
    raw = _state().to_json()
    raw["format"] = 1
    raw["db"] = {"managed": True, "mode": "single", "role": "app", "active": "app", "target": "t"}
    state = state_from_json(raw, 1)
    assert state.db == DatabasePlan(DbMode.SINGLE, "app", "app", "t", None)
    raw["db"] = {"managed": False}
    assert state_from_json(raw, 1).db is None


def test_in_flight_format_1_journal_is_resumed(tmp_path: Path) -> None:
    """A rotation the previous version left half-done (format 1) is completed by this one."""
    path = make_manifest(tmp_path)
    with pytest.raises(Killed):
        RotationEngine(_options(path, after_step=crash_after("manifest"))).rotate()
    journal = journal_path(path)
    data = json.loads(journal.read_text(encoding="utf-8"))
    data.update({"format": 1, "db": {"managed": False}})
    data.pop("operator_done")
    data.pop("finish_fallbacks")
    journal.write_text(json.dumps(data), encoding="utf-8")
    code, out = _run("rotate", "--manifest", str(path), "--no-apply")
    assert code == HELD, out  # resumed, then held: DB_PASSWORD waits for the operator
    assert "Resumed" in out
    assert values(path)["SECRET_KEY"] == data["new"]["SECRET_KEY"]
    assert json.loads(journal.read_text(encoding="utf-8"))["format"] == JOURNAL_FORMAT


# -- unusable journals ---------------------------------------------------------------------------


def _edit(change: Callable[[dict[str, Any]], object]) -> Callable[[dict[str, Any]], bytes]:
    def variant(data: dict[str, Any]) -> bytes:
        change(data)
        return json.dumps(data).encode()

    return variant


_DELETE = "delete"
_KEEP = "do not delete"
_NEWER = "newer yosai-secrets"

VARIANTS: dict[str, tuple[Callable[[dict[str, Any]], bytes], str]] = {
    "empty file": (lambda data: b"", _KEEP),
    "whitespace only": (lambda data: b"  \n", _KEEP),
    "truncated JSON": (lambda data: json.dumps(data, indent=2).encode()[:200], _KEEP),
    "binary garbage": (lambda data: b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 8, _KEEP),
    "a JSON list": (lambda data: b"[1, 2]", _KEEP),
    "a JSON string": (lambda data: b'"journal"', _KEEP),
    "nested too deeply": (lambda data: b"[" * 100_000, _KEEP),
    "format 1 and nothing else": (lambda data: b'{"format": 1}', _KEEP),
    "no format": (_edit(lambda d: d.pop("format")), _KEEP),
    "format 99": (lambda data: b'{"format": 99}', _NEWER),
    "format 0": (_edit(lambda d: d.update(format=0)), _KEEP),
    "format as a string": (_edit(lambda d: d.update(format="2")), _KEEP),
    "missing field": (_edit(lambda d: d.pop("keys")), _KEEP),
    "wrong field type": (_edit(lambda d: d.update(keys="SECRET_KEY")), _KEEP),
    "wrong nested type": (_edit(lambda d: d["new"].update(SECRET_KEY=7)), _KEEP),
    "unknown phase": (_edit(lambda d: d.update(phase="exploded")), _KEEP),
    "unknown step": (_edit(lambda d: d["steps"].append("teleport")), _KEEP),
    "empty step list": (_edit(lambda d: d.update(steps=[])), _DELETE),
    "format 1 with an empty step list": (
        _edit(lambda d: d.update(format=1, steps=[], db={"managed": False})),
        _DELETE,
    ),
    "new value of a key missing": (_edit(lambda d: d["new"].pop("SECRET_KEY")), _KEEP),
    "bad database plan": (_edit(lambda d: d.update(db={"mode": "single"})), _KEEP),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_unusable_journal_is_a_clear_error_naming_the_file(
    rotated: tuple[Path, Path, dict[str, Any]], variant: str, canary: str
) -> None:
    """Each corrupt, foreign or half-written journal: exit 2, file named, advice, no traceback."""
    path, journal, data = rotated
    make, advice = VARIANTS[variant]
    content = make(json.loads(json.dumps(data)))
    journal.write_bytes(content)
    manifest_before = path.read_bytes()
    code, out = _run("rotate", "--manifest", str(path), "--no-apply")
    assert code == 2, out
    assert out.startswith("error: the rotation journal ") and str(journal) in out
    assert advice in out
    assert "Traceback" not in out and "Error:" not in out
    for value in (canary, canary + "-db", *data["new"].values()):
        assert value not in out
    assert journal.read_bytes() == content  # never overwritten
    assert path.read_bytes() == manifest_before


def test_half_written_journal_with_steps_done_must_be_kept(
    rotated: tuple[Path, Path, dict[str, Any]],
) -> None:
    """A damaged journal recording steps after prepare says to keep it, and how to go on."""
    path, journal, data = rotated
    del data["old"]
    journal.write_text(json.dumps(data), encoding="utf-8")
    code, out = _run("rotate", "--manifest", str(path), "--abort")
    assert code == 2
    assert "lacks the field 'old'" in out
    assert "do not delete it" in out and "rotate --abort" in out
    assert "only this file holds" in out


@pytest.mark.parametrize(
    "args",
    [["rotate", "--abort"], ["rotate", "--finish"], ["rotate", "--restart"], ["status"]],
    ids=["abort", "finish", "restart", "status"],
)
def test_every_command_refuses_an_unusable_journal(
    rotated: tuple[Path, Path, dict[str, Any]], args: list[str]
) -> None:
    """abort, finish, restart and status all stop with the same clear error, exit 2."""
    path, journal, _ = rotated
    journal.write_bytes(b"{")
    code, out = _run(*args, "--manifest", str(path))
    assert code == 2 and str(journal) in out and "Traceback" not in out


def test_dry_run_refuses_an_unusable_journal(rotated: tuple[Path, Path, dict[str, Any]]) -> None:
    """--dry-run reads the journal too and reports it unusable instead of guessing."""
    path, journal, _ = rotated
    journal.write_bytes(b'{"format": 99}')
    code, out = _run("rotate", "--manifest", str(path), "--dry-run")
    assert code == 2 and _NEWER in out


def test_unreadable_journal_names_the_file(rotated: tuple[Path, Path, dict[str, Any]]) -> None:
    """A journal that cannot be read (a directory in its place) is a RotationError naming it."""
    _, journal, _ = rotated
    journal.unlink()
    journal.mkdir()
    with pytest.raises(RotationError, match="cannot read the rotation journal"):
        Journal.load(journal)


# -- the step table ------------------------------------------------------------------------------


def test_step_table_covers_every_step(tmp_path: Path) -> None:
    """Every Step has exactly one handler, a method of the steps object, in the table."""
    steps = RotationSteps(_options(tmp_path / "m.yaml"), NullStore)
    assert set(steps.handlers) == set(Step)
    for handler in steps.handlers.values():
        assert getattr(handler, "__self__", None) is steps


def test_step_sequences_partition_the_steps() -> None:
    """Rotate, finish and abort sequences together name every step once, rotate from prepare."""
    sequences = (*ROTATE_STEPS, *FINISH_STEPS, *ABORT_STEPS)
    assert sorted(sequences) == sorted(Step) and len(set(sequences)) == len(sequences)
    assert ROTATE_STEPS[0] is Step.PREPARE and ROTATE_STEPS[-1] is Step.APPLY


# -- atomic creation -----------------------------------------------------------------------------


def _fail_journal_replace(
    monkeypatch: pytest.MonkeyPatch, journal: Path, error: BaseException
) -> None:
    real = os.replace

    def replace(src: Any, dst: Any, **kw: Any) -> None:
        if Path(dst) == journal:
            raise error
        real(src, dst, **kw)

    monkeypatch.setattr(os, "replace", replace)


def test_crash_during_first_save_leaves_no_journal_and_next_run_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed while the journal is first written: no journal, nothing changed; the next run
    removes the temporary file and rotates."""
    path = make_manifest(tmp_path)
    original = path.read_bytes()
    journal = journal_path(path)
    with monkeypatch.context() as patch:
        _fail_journal_replace(patch, journal, Killed("first save"))
        with pytest.raises(Killed):
            RotationEngine(_options(path)).rotate()
    assert not journal.exists()
    (leftover,) = _temps(journal)
    assert oct(leftover.stat().st_mode & 0o777) == "0o600"
    assert path.read_bytes() == original
    code, out = _run("rotate", "--manifest", str(path), "--no-apply")
    assert code == HELD, out
    assert _temps(journal) == [] and journal.exists()
    assert path.read_bytes() != original  # this run rotated


def test_failed_first_save_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error while the journal is first written: exit 2, no journal, no temporary file."""
    path = make_manifest(tmp_path)
    original = path.read_bytes()
    journal = journal_path(path)
    _fail_journal_replace(monkeypatch, journal, OSError(errno.ENOSPC, "No space left on device"))
    code, out = _run("rotate", "--manifest", str(path), "--no-apply")
    assert code == 2 and "cannot write the rotation journal" in out and str(journal) in out
    assert "Traceback" not in out
    assert not journal.exists() and _temps(journal) == []
    assert path.read_bytes() == original


def test_sigkill_during_first_save_leaves_no_journal(tmp_path: Path) -> None:
    """A real SIGKILL between writing and renaming the journal leaves no journal; a re-run works."""
    path = make_manifest(tmp_path)
    original = path.read_bytes()
    journal = journal_path(path)
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from yosai_secrets.rotation import RotationEngine, RotationOptions\n"
        "real = os.replace\n"
        "def replace(src, dst, **kw):\n"
        "    if str(dst).endswith('.journal.json'):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    real(src, dst, **kw)\n"
        "os.replace = replace\n"
        "RotationEngine(RotationOptions(manifest=Path(sys.argv[1]), apply=False, environ={}))"
        ".rotate()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRET", "ROTATION_"))}
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert not journal.exists() and len(_temps(journal)) == 1
    assert path.read_bytes() == original
    assert _run("rotate", "--manifest", str(path), "--no-apply")[0] == HELD
    assert _temps(journal) == []


def test_leftover_of_the_previous_versions_writer_is_removed_too(tmp_path: Path) -> None:
    """Leftovers of the previous version's writers (journal's and manifest's) are removed."""
    path = make_manifest(tmp_path)
    journal = journal_path(path)
    old_style = journal.with_name(f".{journal.name}.k2j4h5g6.tmp")
    old_style.write_text("{", encoding="utf-8")
    manifests = journal.with_name(f".{path.name}.k2j4h5g6.tmp")  # the manifest writer's
    manifests.write_text("x", encoding="utf-8")
    assert _run("rotate", "--manifest", str(path), "--no-apply")[0] == HELD
    assert not old_style.exists() and not manifests.exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git (apt-get install git)")
def test_temporary_and_lock_file_names_are_git_ignored() -> None:
    """The journal, its temporary files and its lock match the repository's .gitignore."""
    journal = journal_path(Path("k8s/config/api-secrets.yaml"))
    names = [
        journal,
        Path(f"{journal}{TEMP_MARK}0123abcd"),
        Path(f"{journal}".replace(".json", ".lock")),
    ]
    for name in names:
        done = subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", str(name)],
            cwd=REPO_ROOT,
            check=False,
        )
        assert done.returncode == 0, f"{name} is not git-ignored"
