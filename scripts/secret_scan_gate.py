"""Fail when a tracked file holds a secret-shaped string that was not reviewed (a `make test` gate).

detect-secrets scans every file git tracks. Each finding is compared with the reviewed baseline,
``.secrets.baseline`` (detect-secrets' own format: file, type and a SHA-1 of the string, never the
string), by file and hash, so moving a reviewed test value to another line does not fail the gate,
while any new string does. The baseline holds only the fixed, fake values of tests, examples and
docs; a real secret never belongs in it.

    python scripts/secret_scan_gate.py            # the gate
    python scripts/secret_scan_gate.py --update   # after reviewing every new finding by hand

Exit status: 0 nothing new, 1 new findings (listed by file, line and type; never a value).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".secrets.baseline"
DETECT_SECRETS = ROOT / ".venv" / "bin" / "detect-secrets"


def scan() -> dict[str, Any]:
    """Run detect-secrets over the tracked files; its report (hashes only)."""
    done = subprocess.run(
        # The baseline holds hashes that look like secrets themselves.
        [str(DETECT_SECRETS), "scan", "--exclude-files", r"^\.secrets\.baseline$"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def fingerprints(report: dict[str, Any]) -> set[tuple[str, str]]:
    """(file, hashed secret) of every finding: what stays the same when lines move."""
    return {
        (path, item["hashed_secret"])
        for path, items in report.get("results", {}).items()
        for item in items
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="write the current findings")
    args = parser.parse_args()
    report = scan()
    if args.update:
        BASELINE.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {BASELINE.name}: {len(fingerprints(report))} reviewed findings")
        return 0
    reviewed = fingerprints(json.loads(BASELINE.read_text(encoding="utf-8")))
    new = [
        (path, item)
        for path, items in report.get("results", {}).items()
        for item in items
        if (path, item["hashed_secret"]) not in reviewed
    ]
    for path, item in new:
        print(f"NEW SECRET-SHAPED STRING: {path}:{item['line_number']}: {item['type']}")
    if new:
        print(
            f"{len(new)} finding(s) not in {BASELINE.name}: remove the value, or (a fake test value"
            " only) review it and run `python scripts/secret_scan_gate.py --update`",
            file=sys.stderr,
        )
        return 1
    print(f"secret scan: {len(fingerprints(report))} findings, all reviewed in {BASELINE.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
