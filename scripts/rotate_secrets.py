#!/usr/bin/env python3
"""Rotate the Yōsai secrets: ``python scripts/rotate_secrets.py`` from the repository root.

The same code as ``yosai-secrets rotate`` (every option of that command works here too, and its
exit status: 0 done, 2 refused or failed, 3 held). With no arguments it rotates SECRET_KEY and every
*PASSWORD key of k8s/config/api-secrets.yaml (created from the example when missing), applies the
manifest if kubectl reaches a cluster, and says plainly what was done, what was held and why, and
the one command to run next. A database password it cannot deliver to the app in the same run is
not changed: the rotation holds (exit 3) until ``--restart``. Works from a checkout where the
package is not installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"


def _dependencies_present() -> bool:
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
        import ruamel.yaml  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    """Run ``yosai-secrets rotate`` with ``argv`` (default: this script's arguments)."""
    if not _dependencies_present():
        # Run with an interpreter that lacks the packages (the system python3): use the
        # project's own environment, the one `make run` / `make test` create, when it exists.
        if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV.resolve():
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])  # noqa: S606
        sys.exit(
            "rotate_secrets.py needs the packages click, rich and ruamel.yaml; run `make venv` "
            "from the repository root (or `pip install 'yosai-secrets[rotation]'`) first"
        )
    try:
        import yosai_secrets  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(ROOT / "src"))
    from yosai_secrets.cli import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--manifest" or a.startswith("--manifest=") for a in args):
        default = Path("k8s/config/api-secrets.yaml")
        # Run from elsewhere, the default manifest is still the repository's own.
        if not default.parent.is_dir() and (ROOT / default.parent).is_dir():
            args = ["--manifest", str(ROOT / default), *args]
    cli_main(["rotate", *args])


if __name__ == "__main__":
    main()
