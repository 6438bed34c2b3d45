"""`git status` is clean after any interrupted rotation: nothing it writes can be committed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from yosai_secrets.rotation import RotationEngine, RotationOptions
from yosai_secrets.rotation.state import ROTATE_STEPS

from .rotation_support import REPO_ROOT, Killed, crash_after, make_manifest

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def repository(tmp_path: Path) -> Path:
    """A git repository with the project's .gitignore and the example manifest committed."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(REPO_ROOT / ".gitignore", root / ".gitignore")
    make_manifest(root)
    example = root / "k8s" / "config" / "api-secrets.example.yaml"
    shutil.copy(REPO_ROOT / "k8s" / "config" / "api-secrets.example.yaml", example)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "start"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return root


def untracked_or_changed(root: Path) -> str:
    """What `git status` would show (every untracked file listed)."""
    done = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.mark.parametrize("step", [str(s) for s in ROTATE_STEPS])
def test_interrupted_after_any_step(tmp_path: Path, step: str) -> None:
    """Killed after each step of a rotation: the manifest, journal and lock are all ignored."""
    root = repository(tmp_path)
    manifest = root / "k8s" / "config" / "api-secrets.yaml"
    hook = crash_after(step)
    options = RotationOptions(
        manifest=manifest, apply=False, environ={}, keys=["SECRET_KEY"], after_step=hook
    )
    with contextlib.suppress(Killed):
        RotationEngine(options).rotate()
    assert untracked_or_changed(root) == ""


def test_killed_in_the_middle_of_a_manifest_write(tmp_path: Path) -> None:
    """A real SIGKILL between writing the new manifest's temporary file and renaming it."""
    root = repository(tmp_path)
    manifest = root / "k8s" / "config" / "api-secrets.yaml"
    code = (
        "import os, signal, sys\n"
        "import yosai_secrets.fileio as fileio\n"
        "real = os.replace\n"
        "def kill(src, dst):\n"
        "    if str(dst).endswith('api-secrets.yaml'):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    real(src, dst)\n"
        "fileio.os.replace = kill\n"
        "from yosai_secrets.rotation import RotationEngine, RotationOptions\n"
        "from pathlib import Path\n"
        "RotationEngine(RotationOptions(manifest=Path(sys.argv[1]), apply=False, environ={},\n"
        "    keys=['SECRET_KEY'])).rotate()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(manifest)], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    leftovers = [p.name for p in manifest.parent.iterdir() if p.name.endswith(".yosai-tmp")]
    assert leftovers  # the whole new manifest is there, in plain text...
    assert untracked_or_changed(root) == ""  # ...but git will never offer to commit it
    RotationEngine(
        RotationOptions(manifest=manifest, apply=False, environ={}, keys=["SECRET_KEY"])
    ).rotate()
    assert not [p for p in manifest.parent.iterdir() if p.name.endswith(".yosai-tmp")]
    assert untracked_or_changed(root) == ""
