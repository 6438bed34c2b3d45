"""Audit events: one per backend read or failure, hits counted not logged, the JSON-lines file."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import stat
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.servers.openbao import OpenBaoServer
from yosai_secrets import SecretManager
from yosai_secrets.audit import events
from yosai_secrets.errors import (
    BackendPermissionError,
    BackendUnavailableError,
    ConfigurationError,
    SecretNotFoundError,
)
from yosai_secrets.testing import MemoryBackend

READ_FIELDS = {"schema", "time", "pid", "process", "host", "event", "key", "backend", "location"}


@pytest.fixture
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """YOSAI_AUDIT_LOG pointed at a fresh file of this test."""
    path = tmp_path / "audit" / "events.jsonl"
    path.parent.mkdir()
    monkeypatch.setenv("YOSAI_AUDIT_LOG", str(path))
    return path


def lines(path: Path) -> list[dict[str, Any]]:
    """Every event of the file, each line parsed on its own."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def reads_of(path: Path, key: str) -> list[dict[str, Any]]:
    """The read events of ``key`` in the file."""
    return [e for e in lines(path) if e["event"] == "read" and key in e.get("keys", [e["key"]])]


def test_a_backend_read_is_one_event_with_every_field(audit_log: Path, canary: str) -> None:
    """A read reaching the backend writes one event: time, key, backend, where, who; no value."""
    backend = MemoryBackend({"db": {"password": canary}})
    manager = SecretManager(backend)
    before = time.time()
    assert manager.get("db#password") == canary
    (event,) = lines(audit_log)
    assert set(event) >= READ_FIELDS
    assert event["event"] == "read" and event["key"] == "db#password"
    assert (event["backend"], event["outcome"], event["version"]) == ("memory", "ok", None)
    assert event["location"] == "memory db"
    assert event["pid"] == os.getpid() and event["host"] == os.uname().nodename
    assert event["process"]
    stamp = time.mktime(time.strptime(event["time"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert event["time"].endswith("Z") and abs(stamp - before) < 5
    assert canary not in audit_log.read_text(encoding="utf-8")


def test_failures_are_events_named_by_error_type(audit_log: Path) -> None:
    """A failed read (backend down, not found) is an event whose outcome is the error's type."""
    backend = MemoryBackend({"present": "x"})
    manager = SecretManager(backend)
    with pytest.raises(SecretNotFoundError):
        manager.get("absent")
    backend.failing = True
    with pytest.raises(BackendUnavailableError):
        manager.get("present")
    outcomes = {e["key"]: e["outcome"] for e in lines(audit_log)}
    assert outcomes == {"absent": "SecretNotFoundError", "present": "BackendUnavailableError"}


def test_the_logger_gets_the_same_event(
    audit_log: Path, canary: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The yosai_secrets.audit logger gets each event as the record's ``audit`` mapping."""
    caplog.set_level(logging.INFO, logger=events.AUDIT_LOGGER)
    SecretManager(MemoryBackend({"k": canary})).get("k")
    records = [r for r in caplog.records if r.name == events.AUDIT_LOGGER]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert records[0].audit == lines(audit_log)[0]  # type: ignore[attr-defined]
    assert canary not in records[0].getMessage()


def test_hits_are_counted_per_key_not_logged(audit_log: Path) -> None:
    """A hundred cached reads write no event; the summary and stats count them per key."""
    key = f"hits-{uuid.uuid4().hex[:8]}"
    manager = SecretManager(MemoryBackend({key: "v", "other": "w"}))
    for _ in range(100):
        manager.get(key)
    manager.get("other")
    assert len(lines(audit_log)) == 2
    assert manager.audit_hits() == {key: 99}
    assert manager.stats().hits == 99
    counts = events.summary()["keys"][key]
    assert counts["hits"] >= 99 and counts["reads"] >= 1
    manager.invalidate()  # the memo goes; its hits stay counted
    manager.get(key)
    manager.get(key)
    assert manager.audit_hits() == {key: 100}
    assert manager.stats().hits == 100


def test_keys_of_one_path_read_together_are_named_in_one_event(audit_log: Path) -> None:
    """get_many reads a path once for two keys: one event listing both."""
    manager = SecretManager(_BatchMemory({"db": {"user": "u", "password": "p"}, "api": "a"}))
    result = manager.get_many(["db#user", "db#password", "api"])
    assert result == {"db#user": "u", "db#password": "p", "api": "a"}
    by_location = {e["location"]: e for e in lines(audit_log)}
    assert set(by_location) == {"batchmem db", "batchmem api"}
    assert by_location["batchmem db"]["keys"] == ["db#user", "db#password"]
    assert "keys" not in by_location["batchmem api"]


def test_auditing_off_writes_nothing(audit_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """YOSAI_AUDIT=false: no read event (the reads work as before)."""
    monkeypatch.setenv("YOSAI_AUDIT", "false")
    assert SecretManager(MemoryBackend({"k": "v"})).get("k") == "v"
    assert not audit_log.exists()


def test_a_malformed_summary_interval_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """YOSAI_AUDIT_SUMMARY_SECONDS=soon fails at construction, naming the variable."""
    monkeypatch.setenv("YOSAI_AUDIT_SUMMARY_SECONDS", "soon")
    with pytest.raises(ConfigurationError, match="YOSAI_AUDIT_SUMMARY_SECONDS"):
        SecretManager(MemoryBackend({}))


def test_the_periodic_summary_reports_hits(
    audit_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With YOSAI_AUDIT_SUMMARY_SECONDS set, a daemon timer writes the hits since the last one."""
    key = f"periodic-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("YOSAI_AUDIT_SUMMARY_SECONDS", "0.2")
    try:
        manager = SecretManager(MemoryBackend({key: "v"}))
        for _ in range(5):
            manager.get(key)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [e for e in lines(audit_log) if e["event"] == "summary" and key in e["keys"]]
            if found:
                break
            time.sleep(0.05)
        assert found, "no summary event within 10 s"
        assert found[0]["keys"][key] == {"reads": 1, "errors": 0, "hits": 4}
        assert found[0]["period_seconds"] > 0 and "audit_write_failures" in found[0]
    finally:
        events.ensure_summary_timer({"YOSAI_AUDIT_SUMMARY_SECONDS": "0"})


def test_the_timer_starts_with_the_first_backend_read() -> None:
    """Building a manager starts no thread (a fork right after it has none to warn about)."""

    def timer_running() -> bool:
        return any(t.name == "yosai-secrets-audit-summary" for t in threading.enumerate())

    events.ensure_summary_timer({"YOSAI_AUDIT_SUMMARY_SECONDS": "0"})
    try:
        assert not timer_running()
        manager = SecretManager(MemoryBackend({"k": "v"}))
        assert not timer_running()
        manager.get("k")
        assert timer_running()
    finally:
        events.ensure_summary_timer({"YOSAI_AUDIT_SUMMARY_SECONDS": "0"})


def test_a_forked_child_runs_its_own_summary_timer(
    audit_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timer thread is not copied by fork: the child starts its own, and reports its hits."""
    key = f"forked-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("YOSAI_AUDIT_SUMMARY_SECONDS", "0.1")
    try:
        manager = SecretManager(MemoryBackend({key: "v"}))
        for _ in range(5):  # 1 read and 4 hits of the parent's: not the child's to report
            manager.get(key)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for _ in range(3):
                    manager.get(key)
                deadline = time.monotonic() + 10
                while code and time.monotonic() < deadline:
                    time.sleep(0.05)
                    mine = [e for e in lines(audit_log) if e["pid"] == os.getpid()]
                    code = 0 if any(e["event"] == "summary" for e in mine) else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child wrote no summary within 10 s"
        summaries = [e for e in lines(audit_log) if e["pid"] == pid and e["event"] == "summary"]
        assert summaries[0]["keys"][key] == {"reads": 0, "errors": 0, "hits": 3}
    finally:
        events.ensure_summary_timer({"YOSAI_AUDIT_SUMMARY_SECONDS": "0"})


def test_operations_record_who_and_why(audit_log: Path) -> None:
    """emit_operation writes the action, keys, reason, user, host and details."""
    events.emit_operation(
        "rotate", keys=["DB_PASSWORD"], reason="leak", outcome="rotated", details={"version": 4}
    )
    (event,) = lines(audit_log)
    assert event["event"] == "operation" and event["action"] == "rotate"
    assert (event["keys"], event["reason"], event["outcome"]) == (
        ["DB_PASSWORD"],
        "leak",
        "rotated",
    )
    assert event["user"] and event["host"] == os.uname().nodename
    assert event["details"] == {"version": 4}


# -- the file ------------------------------------------------------------------------------------


def test_the_file_is_created_0600_and_appended_to(audit_log: Path) -> None:
    """A new log is mode 0600; an existing one keeps its lines, and ours go after them."""
    SecretManager(MemoryBackend({"a": "1"})).get("a")
    assert stat.S_IMODE(audit_log.stat().st_mode) == 0o600
    first = audit_log.read_text(encoding="utf-8")
    SecretManager(MemoryBackend({"b": "2"})).get("b")
    text = audit_log.read_text(encoding="utf-8")
    assert text.startswith(first) and len(text.splitlines()) == 2


def test_a_rotated_log_is_reopened(audit_log: Path) -> None:
    """After the file is moved away (logrotate), the next event creates a new one at the path."""
    SecretManager(MemoryBackend({"a": "1"})).get("a")
    audit_log.rename(audit_log.with_suffix(".1"))
    SecretManager(MemoryBackend({"b": "2"})).get("b")
    assert [e["key"] for e in lines(audit_log)] == ["b"]


def _write_events(path: str, count: int, width: int) -> None:
    """A child process: ``count`` read events with long key names, as fast as it can."""
    os.environ["YOSAI_AUDIT_LOG"] = path
    os.environ["YOSAI_AUDIT_SUMMARY_SECONDS"] = "0"
    from yosai_secrets.audit import events as child_events

    for n in range(count):
        child_events.emit_access(
            f"K{n:05d}-" + "x" * width, backend="memory", location=f"memory p{n}"
        )


def test_two_processes_append_whole_lines(tmp_path: Path) -> None:
    """Two processes writing 1,500 events each at once: 3,000 lines, each one valid JSON."""
    path = tmp_path / "shared.jsonl"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_events, args=(str(path), 1500, 3000)) for _ in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    events_written = lines(path)  # json.loads raises on any torn or interleaved line
    assert len(events_written) == 3000
    assert len({e["pid"] for e in events_written}) == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_forked_child_writes_through_its_own_descriptor(audit_log: Path) -> None:
    """After fork, the child reopens the log and its events carry its own pid."""
    manager = SecretManager(MemoryBackend({"parent": "1", "child": "2"}))
    manager.get("parent")
    pid = os.fork()
    if pid == 0:  # the child: read, then leave without pytest's teardown
        try:
            manager.get("child")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    manager.get("parent")  # a hit: no event
    by_key = {e["key"]: e["pid"] for e in lines(audit_log)}
    assert by_key == {"parent": os.getpid(), "child": pid}


@pytest.mark.parametrize("target", ["directory", "missing-parent", "/dev/full"])
def test_a_failed_write_is_counted_and_the_read_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any, target: str, canary: str
) -> None:
    """An unwritable log (a directory, no parent, a full device) is counted; reads go on."""
    path = {
        "directory": str(tmp_path),
        "missing-parent": str(tmp_path / "absent" / "audit.jsonl"),
        "/dev/full": "/dev/full",
    }[target]
    if target == "/dev/full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    monkeypatch.setenv("YOSAI_AUDIT_LOG", path)
    before = events.write_failures()
    manager = SecretManager(MemoryBackend({"a": canary, "b": canary}))
    assert manager.get("a") == canary and manager.get("b") == canary
    assert events.write_failures() == before + 2
    assert events.summary()["audit_write_failures"] == before + 2
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(path in m and "audit_write_failures" in m for m in warned)
    assert all(canary not in m for m in caplog.messages)


# -- a real server -------------------------------------------------------------------------------


def test_vault_reads_and_denials_are_events_without_values(
    openbao: OpenBaoServer, audit_log: Path, canary: str
) -> None:
    """A Vault read names the address and path; a denied one is a BackendPermissionError event."""
    name = "audit" + uuid.uuid4().hex[:10]
    openbao.api("PUT", f"secret/data/{name}", {"data": {"password": canary}})
    root = SecretManager("vault", environ={"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": "root"})
    status, body = openbao.api("POST", "auth/token/create", {"policies": ["default"]})
    assert status == 200
    limited = body["auth"]["client_token"]
    denied = SecretManager("vault", environ={"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": limited})
    try:
        assert root.get(f"secret/data/{name}#password") == canary
        with pytest.raises(BackendPermissionError):
            denied.get(f"secret/data/{name}#password")
    finally:
        root.close()
        denied.close()
    ok, refused = reads_of(audit_log, f"secret/data/{name}#password")
    assert ok["outcome"] == "ok" and ok["backend"] == "vault"
    assert ok["location"] == f"vault {openbao.addr} secret/data/{name}"
    assert refused["outcome"] == "BackendPermissionError"
    text = audit_log.read_text(encoding="utf-8")
    assert canary not in text and limited not in text


class _BatchMemory(MemoryBackend):
    """A MemoryBackend with a batch read, like the AWS backend's."""

    def __init__(self, data: dict[str, object]) -> None:
        super().__init__(data, name="batchmem")

    def fetch_many(self, paths: list[str]) -> dict[str, object]:
        results: dict[str, object] = {}
        for path in paths:
            try:
                results[path] = self.fetch(path)
            except ConfigurationError as exc:
                results[path] = exc
        return results


def test_per_key_counts_stay_bounded() -> None:
    """Past MAX_COUNTED_KEYS distinct keys, the rest are counted together."""
    from yosai_secrets.audit.events import MAX_COUNTED_KEYS, OTHER_KEYS, bump

    table: dict[str, int] = {}
    for n in range(MAX_COUNTED_KEYS + 500):
        bump(table, f"KEY_{n}")
    bump(table, "KEY_0", 2)
    assert len(table) == MAX_COUNTED_KEYS + 1
    assert table[OTHER_KEYS] == 500 and table["KEY_0"] == 3
