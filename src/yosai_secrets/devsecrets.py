"""Development secrets: generate the local ``secrets/*.txt`` files Docker Compose mounts.

Only for ``YOSAI_ENV=development``: a fresh clone runs with no secret typed by hand. Existing
files are never overwritten.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Final

from .fileio import atomic_write_text

__all__ = ["DEV_SECRET_FILES", "ensure_dev_secrets"]

#: The files generated, and the secret each holds.
DEV_SECRET_FILES: Final = {"secret_key.txt": "SECRET_KEY", "db_password.txt": "DB_PASSWORD"}


def ensure_dev_secrets(directory: str | Path = "secrets") -> list[Path]:
    """Create each missing development secret file (mode 0600, 384 random bits).

    Returns the files created; existing files are left as they are.
    """
    folder = Path(directory)
    created = []
    for filename in DEV_SECRET_FILES:
        target = folder / filename
        if target.exists():
            continue
        atomic_write_text(target, secrets.token_urlsafe(48) + "\n")
        created.append(target)
    return created
