"""Audit the locked dependencies for known vulnerabilities with pip-audit (a `make test` gate).

The requirements are exported from ``uv.lock`` (every extra and the dev group, pinned with hashes),
so what is audited is exactly what ``make`` installs. pip-audit asks the PyPI JSON API about each
pin. When that database cannot be reached (no network, or a registry mirror that serves packages
but not the JSON API), the audit is skipped with a notice on stderr that says so; it is never
skipped silently. Exit status: 0 clean (or skipped, with the notice), 1 a known vulnerability.

    python scripts/audit_dependencies.py [--strict]

``--strict`` turns a skip into a failure (for a machine that must audit).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
# pip-audit's default service reads one JSON document per pinned version, at this kind of address.
PROBE = "https://pypi.org/pypi/pip/24.0/json"


def database_reachable(timeout: float = 10.0) -> str | None:
    """Return None when the vulnerability database answers, else why it does not."""
    try:
        with urllib.request.urlopen(PROBE, timeout=timeout) as answer:
            json.load(answer)
    except urllib.error.HTTPError as exc:
        return f"{PROBE} answered HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{PROBE} could not be read ({type(exc).__name__})"
    return None


def export_requirements(target: Path) -> None:
    """Write the locked pins (with hashes) of every extra and the dev group to ``target``."""
    subprocess.run(
        [
            *(str(BIN / "uv"), "export", "--frozen", "--all-extras", "--group", "dev"),
            *("--no-emit-project", "--quiet", "--output-file", str(target)),
        ],
        cwd=ROOT,
        check=True,
    )


def audit(requirements: Path) -> tuple[list[tuple[str, str, str]], list[str], int]:
    """Run pip-audit: (name, version, vulnerability id) found, the unaudited pins, the pin count."""
    done = subprocess.run(
        [
            *(str(BIN / "pip-audit"), "--requirement", str(requirements), "--disable-pip"),
            *("--format", "json", "--progress-spinner", "off"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"pip-audit failed (exit {done.returncode}), its output above") from None
    found: list[tuple[str, str, str]] = []
    skipped: list[str] = []
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            skipped.append(dep["name"])
        for vuln in dep.get("vulns", []):
            found.append((dep["name"], dep.get("version", "?"), vuln.get("id", "?")))
    return found, skipped, len(report.get("dependencies", []))


def skip_notice(why: str) -> None:
    """Say loudly, on stderr, that nothing was audited and why."""
    print(
        f"NOTICE: dependency audit SKIPPED: the vulnerability database is unreachable ({why}).",
        "Run `python scripts/audit_dependencies.py` where pypi.org is reachable.",
        file=sys.stderr,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="fail when the audit is skipped")
    args = parser.parse_args()
    why = database_reachable()
    if why is not None:
        skip_notice(why)
        return 1 if args.strict else 0
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        export_requirements(requirements)
        found, skipped, pins = audit(requirements)
    if pins and len(skipped) == pins:
        skip_notice(f"it answered for none of the {pins} locked pins")
        return 1 if args.strict else 0
    for name, version, vuln_id in found:
        print(f"VULNERABLE: {name} {version}: {vuln_id}", file=sys.stderr)
    if skipped:
        print(
            f"NOTICE: {len(skipped)} of {pins} locked pins not audited: {', '.join(skipped)}",
            file=sys.stderr,
        )
    if found:
        return 1
    print(f"dependency audit: no known vulnerabilities in {pins - len(skipped)} locked pins")
    return 1 if (skipped and args.strict) else 0


if __name__ == "__main__":
    raise SystemExit(main())
