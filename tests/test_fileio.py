"""Atomic private writes: stricter modes kept, links followed, leftovers ignored and removed."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from yosai_secrets.fileio import TEMP_SUFFIX, atomic_write_text, remove_leftovers

REPO = Path(__file__).resolve().parent.parent


def mode_of(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_is_private(tmp_path: Path) -> None:
    """A new file is written with mode 0600."""
    target = tmp_path / "a.yaml"
    atomic_write_text(target, "x: 1\n")
    assert (target.read_text(), mode_of(target)) == ("x: 1\n", 0o600)


@pytest.mark.parametrize("existing", [0o400, 0o600, 0o640, 0o644])
def test_a_stricter_existing_mode_is_kept(tmp_path: Path, existing: int) -> None:
    """0400 stays 0400; anything looser than 0600 becomes 0600."""
    target = tmp_path / "a.yaml"
    target.write_text("old\n")
    target.chmod(existing)
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert mode_of(target) == existing & 0o600


def test_a_symlink_keeps_pointing_at_the_written_file(tmp_path: Path) -> None:
    """Writing through a link replaces its target; the link stays a link to the new content."""
    real = tmp_path / "real" / "api-secrets.yaml"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "api-secrets.yaml"
    link.symlink_to(real)
    atomic_write_text(link, "new\n")
    assert link.is_symlink() and real.read_text() == "new\n" and link.read_text() == "new\n"


def test_leftovers_of_an_interrupted_write_are_removed_by_the_next(tmp_path: Path) -> None:
    """A temporary file a crash left (old or new naming) is deleted before the next write."""
    target = tmp_path / "api-secrets.yaml"
    stale = [tmp_path / f".api-secrets.yaml.abc{TEMP_SUFFIX}", tmp_path / ".api-secrets.yaml.x.tmp"]
    for path in stale:
        path.write_text("the whole manifest\n")
    other = tmp_path / ".other.yaml.abc.tmp"
    other.write_text("not ours to remove\n")
    atomic_write_text(target, "new\n")
    assert not any(path.exists() for path in stale) and other.exists()
    assert sorted(os.listdir(tmp_path)) == [".other.yaml.abc.tmp", "api-secrets.yaml"]
    assert remove_leftovers(target) == []


def test_temporary_files_are_git_ignored_under_k8s_config() -> None:
    """A leftover beside the manifest would never be committed by `git add`."""
    for name in (f".api-secrets.yaml.abc{TEMP_SUFFIX}", ".api-secrets.yaml.abc.tmp"):
        path = f"k8s/config/{name}"
        done = subprocess.run(
            ["git", "check-ignore", "-q", path], cwd=REPO, check=False, capture_output=True
        )
        assert done.returncode == 0, path
