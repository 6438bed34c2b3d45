"""The incident's report files: ``incident-<UTC time>.md`` for people, ``.json`` for tools.

Both hold the timeline (every step with its times and status), what was rotated, revoked and
terminated, where the leaked values were found (file, line, encoding, whether still live), the
audit summary, and the manual steps left. Never a value: a step's detail holds names, paths,
versions and counts only, and a finding names the secret, not its value. Written atomically,
mode 0600.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from .incident import IncidentReport
from .outcome import StepOutcome

__all__ = ["report_dict", "report_markdown", "write_reports"]


def _stamp(when: datetime | None) -> str:
    if when is None:
        return ""
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _file_stamp(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def write_reports(report: IncidentReport, directory: Path) -> list[Path]:
    """Write the Markdown and JSON reports in ``directory`` (created if missing); their paths.

    Raises:
        OSError: the directory cannot be written.
    """
    from ..fileio import atomic_write_text

    base = f"incident-{_file_stamp(report.started)}"
    number = 1
    while (directory / f"{base}.md").exists() or (directory / f"{base}.json").exists():
        number += 1
        base = f"incident-{_file_stamp(report.started)}-{number}"
    markdown, document = directory / f"{base}.md", directory / f"{base}.json"
    report.files = [markdown, document]
    atomic_write_text(document, json.dumps(report_dict(report), indent=2) + "\n", mode=0o600)
    atomic_write_text(markdown, report_markdown(report), mode=0o600)
    return report.files


def _step_dict(step: StepOutcome) -> dict[str, str]:
    return {
        "step": step.step,
        "status": str(step.status),
        "detail": step.detail,
        "started": _stamp(step.started),
        "finished": _stamp(step.finished),
    }


def _finding_dict(finding: Any) -> dict[str, Any]:
    return {
        "path": finding.path,
        "line": finding.line,
        "secret": finding.secret,
        "encoding": finding.encoding,
        "live": finding.live,
        "commit": finding.commit,
    }


def _jsonable(value: Any) -> Any:
    for method in ("to_dict", "as_dict"):
        if hasattr(value, method):
            return getattr(value, method)()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def report_dict(report: IncidentReport) -> dict[str, Any]:
    """The report as a JSON-able dict (``exit_code`` included)."""
    rotation = report.rotation
    return {
        "keys": report.keys,
        "reason": report.reason,
        "started": _stamp(report.started),
        "finished": _stamp(report.finished),
        "exit_code": report.exit_code,
        "failed": [s.step for s in report.failed],
        "steps": [_step_dict(s) for s in report.steps],
        "captured_from": report.captured,
        "rotated": list(rotation.keys) if rotation and rotation.outcome == "finished" else [],
        "rotation": rotation.to_dict() if rotation else None,
        "terminated_sessions": rotation.terminated_sessions if rotation else 0,
        "purged": [*report.purged, *(rotation.purged if rotation else [])],
        "findings": [_finding_dict(f) for f in report.findings],
        "audit_summary": _jsonable(report.audit_summary),
        "audit_note": report.audit_note,
        "manual_steps": report.manual_steps(),
    }


def _result(failed: list[str]) -> str:
    return f"FAILED: {', '.join(failed)}" if failed else "every step done, skipped or manual"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def report_markdown(report: IncidentReport) -> str:
    """The report for people (Markdown)."""
    data = report_dict(report)
    lines = [
        f"# Incident {_file_stamp(report.started)}",
        "",
        f"- Keys: {', '.join(report.keys)}",
        f"- Reason: {report.reason or '(none given: --reason)'}",
        f"- Started: {data['started']}; finished: {data['finished']}",
        f"- Result: {_result(data['failed'])}",
        "",
        "## Timeline",
        "",
        "| started | finished | step | status | detail |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {s['started']} | {s['finished']} | {_cell(s['step'])} | {s['status'].upper()} "
        f"| {_cell(s['detail'])} |"
        for s in data["steps"]
    ]
    lines += ["", "## What changed", ""]
    lines += _changes(report, data)
    lines += ["", "## Where the leaked values were found", ""]
    lines += _findings(data["findings"])
    lines += ["", "## Audit summary", ""]
    if data["audit_summary"] is not None:
        if report.audit_note:
            lines += [report.audit_note, ""]
        lines += ["```json", json.dumps(data["audit_summary"], indent=2), "```"]
    else:
        lines.append(report.audit_note or "No audit summary.")
    lines += ["", "## Remaining manual steps", ""]
    lines += [f"- [ ] {_cell(step)}" for step in data["manual_steps"]]
    return "\n".join(lines) + "\n"


def _changes(report: IncidentReport, data: dict[str, Any]) -> list[str]:
    lines = [f"- Rotated (no previous value kept): {', '.join(data['rotated']) or 'nothing'}"]
    rotation = report.rotation
    if rotation is not None:
        lines += [f"- Database: {_cell(line)}" for line in rotation.cut]
        if rotation.cut:
            lines.append(f"- Sessions terminated: {data['terminated_sessions']}")
    lines += [f"- Store: {_cell(line)}" for line in data["purged"]]
    revoked = [s for s in report.steps if s.step.startswith(("revoke", "rotate the Auth0"))]
    lines += [f"- {_cell(s.step)}: {s.status.upper()}: {_cell(s.detail)}" for s in revoked]
    return lines


def _findings(findings: list[dict[str, Any]]) -> list[str]:
    if not findings:
        return ["Nothing found (or nothing was scanned: see the scan step)."]
    lines = ["| file | line | secret | encoding | live | commit |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {_cell(f['path'])} | {f['line']} | {f['secret']} | {f['encoding']} | "
        f"{'LIVE' if f['live'] else 'retired'} | {f['commit'] or ''} |"
        for f in findings
    ]
    return lines
