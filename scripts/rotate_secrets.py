#!/usr/bin/env python3
"""Rotate the Yōsai secrets: ``python scripts/rotate_secrets.py`` from the repository root.

The same code as ``yosai-secrets rotate`` (every option of that command works here too). With no
arguments it rotates SECRET_KEY and every *PASSWORD key of k8s/config/api-secrets.yaml (created
from the example when missing), applies the manifest if kubectl reaches a cluster, and says plainly
what is left to do. Works from a checkout where the package is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> None:
    """Run ``yosai-secrets rotate`` with ``argv`` (default: this script's arguments)."""
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
