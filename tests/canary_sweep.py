"""The canary leak sweep: a pytest plugin that fails the run when a planted value leaks anywhere.

Every test that plants a secret takes it from the ``canary`` fixture (``canary-`` and 24 random hex
digits, often with a suffix); the servers' own seeded values are canaries too. This plugin looks for
that shape, whichever test planted it, in everything a user or an operator could see:

* each test's captured stdout, stderr and log records (pytest's capture, every outcome);
* after the session, every log, report and audit log left under the session's temporary
  directory (``*.log``, ``*.jsonl``, ``*.md``, ``*.sarif``, ``*audit*``, ``incident-*``), and the
  arguments of every kubectl call the stand-in logged (``kubectl*.jsonl``: the manifest it received
  on stdin is the value's destination, its argument list is not);
* the session OpenBao's audit-device log (``OpenBaoServer.audit_log``), read before the server
  and its directory go;
* every file of the repository (tracked or not, git-ignored files excepted): no test may write a
  value into the source tree.

What it does not see, tests look at themselves (``tests/test_canary_sweep.py``): exception chains
and tracebacks with locals, HTTP responses, CLI output captured by click's runner, DEBUG logs of
every library. A hit is listed in the summary (test, where, line) and the run fails (exit 1),
whatever the tests said.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CANARY = re.compile(r"canary-[0-9a-f]{24}")
# Files under the session's temporary directory that are never a value's intended destination
# (a secret file, a manifest or a journal is; a log, a report or an argument list is not).
_LOG_LIKE = re.compile(r"(\.log|\.jsonl|\.md|\.sarif|\.out|\.err)$|audit|incident-|report")
_KUBECTL_LOG = re.compile(r"^kubectl.*\.jsonl$")
_MAX_SCAN_BYTES = 20 * 1024 * 1024
_REPO = Path(__file__).resolve().parent.parent


def new_canary() -> str:
    """A value no message, log or file contains by chance."""
    return "canary-" + os.urandom(12).hex()


@pytest.fixture
def canary() -> str:
    """A unique value to plant as a secret; this sweep hunts it in every output."""
    return new_canary()


@dataclass(frozen=True)
class Hit:
    """One place a canary was seen."""

    where: str
    detail: str


_HITS: list[Hit] = []
_SEEN_SECTIONS: set[tuple[str, str]] = set()
_BASES: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _sweep_knows_basetemp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Remember the session's temporary directory, scanned when the session ends."""
    _BASES.append(tmp_path_factory.getbasetemp())


def _first_line_with_canary(text: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if CANARY.search(line):
            return number
    return None


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Look at what this test printed and logged (captured by pytest)."""
    for title, content in report.sections:  # a later phase's report repeats earlier sections
        if (report.nodeid, title) in _SEEN_SECTIONS:
            continue
        _SEEN_SECTIONS.add((report.nodeid, title))
        line = _first_line_with_canary(content)
        if line is not None:
            _HITS.append(Hit(report.nodeid, f"{title}, line {line}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[object]) -> Iterator[None]:
    """Sweep an OpenBao server's audit log just before the server (and its directory) goes."""
    outcome = yield
    server = outcome.get_result() if fixturedef.argname == "openbao" else None
    audit_log = getattr(server, "audit_log", None)
    if isinstance(audit_log, Path):
        # Finalizers run last-in first-out: this one before the fixture's own teardown.
        fixturedef.addfinalizer(lambda: _scan_file(audit_log, "the OpenBao audit-device log"))


def _scan_kubectl_log(path: Path, label: str) -> None:
    """Only the argument lists: the manifest on stdin is where the values are meant to go."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return
    for number, line in enumerate(lines, start=1):
        try:
            argv = json.loads(line).get("argv", [])
        except (ValueError, AttributeError):
            continue
        if CANARY.search(" ".join(map(str, argv))):
            _HITS.append(Hit(label, f"the arguments of call {number}"))


def _scan_file(path: Path, label: str) -> None:
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > _MAX_SCAN_BYTES:
            return
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return
    line = _first_line_with_canary(text)
    if line is not None:
        _HITS.append(Hit(label, f"line {line}"))


def _repository_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=_REPO,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [_REPO / name for name in listed.decode().split("\0") if name]


def _scan_session_files() -> None:
    for base in _BASES:
        for path in base.rglob("*"):
            if _KUBECTL_LOG.search(path.name):
                _scan_kubectl_log(path, f"kubectl call log {path.relative_to(base)}")
            elif _LOG_LIKE.search(path.name):
                _scan_file(path, f"file {path.relative_to(base)} (session temporary directory)")
    for path in _repository_files():
        _scan_file(path, f"repository file {path.relative_to(_REPO)}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Scan the files the session left behind; fail the run on any hit."""
    if os.environ.get("YOSAI_CANARY_SWEEP", "1") == "0":
        return
    _scan_session_files()
    if _HITS and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say what the sweep found: nothing, or each hit."""
    if os.environ.get("YOSAI_CANARY_SWEEP", "1") == "0":
        return
    if not _HITS:
        terminalreporter.write_line("canary leak sweep: 0 hits")
        return
    terminalreporter.section("canary leak sweep: a planted value leaked", red=True)
    for hit in _HITS:
        terminalreporter.write_line(f"{hit.where}: {hit.detail}")
    terminalreporter.write_line(f"canary leak sweep: {len(_HITS)} hit(s); the run fails")
