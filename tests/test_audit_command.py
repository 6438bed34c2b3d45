"""``yosai-secrets audit``: counts and the four flags, on our events and a real OpenBao log."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.servers.openbao import OpenBaoServer
from yosai_secrets import SecretManager
from yosai_secrets.audit import events
from yosai_secrets.audit.analyze import Rules, parse_since, summarize
from yosai_secrets.cli.audit import audit
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.testing import MemoryBackend

DAY1 = datetime(2026, 11, 20, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def ours(when: datetime, **fields: Any) -> dict[str, Any]:
    """An event in our format, as events.py writes it, at ``when``."""
    base = {"schema": 1, "time": when.isoformat().replace("+00:00", "Z"), "pid": 4242}
    return {**base, **fields}


def read(when: datetime, key: str, host: str, process: str = "gunicorn", **more: Any) -> Any:
    """A read event of ``key`` by ``process`` on ``host``."""
    return ours(
        when,
        event="read",
        key=key,
        backend="vault",
        location=f"vault https://vault.internal:8200 secret/data/app/{key.lower()}",
        outcome=more.pop("outcome", "ok"),
        version=more.pop("version", None),
        host=host,
        process=process,
        **more,
    )


def baseline() -> list[dict[str, Any]]:
    """Day 1: two web hosts read the two secrets every hour; a rotation makes version 5."""
    found = []
    for hour in range(24):
        for host in ("web-1", "web-2"):
            when = DAY1 + timedelta(hours=hour, minutes=host == "web-2")
            found.append(read(when, "DB_PASSWORD", host, version=4))
            found.append(read(when, "SECRET_KEY", host))
    found.append(
        ours(
            DAY1 + timedelta(hours=23, minutes=30),
            event="operation",
            action="rotate",
            keys=["DB_PASSWORD"],
            reason="quarterly",
            outcome="rotated",
            user="ops",
            host="admin-1",
            details={"versions": {"DB_PASSWORD": 5}},
        )
    )
    found.append(
        ours(DAY1 + timedelta(hours=23), event="summary", keys={"DB_PASSWORD": {"hits": 1000}})
    )
    return found


def write_log(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write ``records`` as JSON lines and return the path."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def clean_log(tmp_path: Path) -> Path:
    """A day of routine reads, then a second day of the same."""
    records = baseline()
    for hour in range(12):
        for host in ("web-1", "web-2"):
            records.append(read(DAY2 + timedelta(hours=hour), "DB_PASSWORD", host, version=5))
    return write_log(tmp_path / "clean.jsonl", records)


@pytest.fixture
def suspicious_log(tmp_path: Path) -> Path:
    """Day 2 has a burst of denials, a laptop reading, and an old version read after rotation."""
    records = baseline()
    start = DAY2 + timedelta(hours=3)
    for second in range(0, 36, 6):  # six refusals within 30 s from one process
        when = start + timedelta(seconds=second)
        records.append(read(when, "SECRET_KEY", "web-2", "sh", outcome="BackendPermissionError"))
    records.append(read(DAY2 + timedelta(hours=4), "DB_PASSWORD", "laptop-7", "python3"))
    records.append(read(DAY2 + timedelta(hours=5), "DB_PASSWORD", "web-1", version=4))
    records.append(read(DAY2 + timedelta(hours=5), "DB_PASSWORD", "web-2", version=5))
    return write_log(tmp_path / "suspicious.jsonl", records)


def kinds(report: Any) -> dict[str, list[Any]]:
    """Flags by rule."""
    found: dict[str, list[Any]] = {}
    for flag in report.flags:
        found.setdefault(flag.kind, []).append(flag)
    return found


# -- our events --------------------------------------------------------------------------------


def test_a_clean_log_flags_nothing_and_exits_0(clean_log: Path) -> None:
    """Routine reads by the known hosts, of the current version: exit 0, counts per key."""
    report = summarize([clean_log], since=DAY2)
    assert not report.flagged and report.flags == []
    assert report.keys["DB_PASSWORD"].reads == 24
    assert report.keys["DB_PASSWORD"].sources == {"gunicorn@web-1", "gunicorn@web-2"}
    result = CliRunner().invoke(audit, [str(clean_log), "--since", "2026-11-21T00:00:00Z"])
    assert result.exit_code == 0, result.output
    assert "nothing flagged" in result.output and "DB_PASSWORD" in result.output


def test_each_pattern_is_flagged_once(suspicious_log: Path) -> None:
    """A denial burst, a new host and a new process, an old version read after the rotation."""
    report = summarize([suspicious_log], since=DAY2)
    found = kinds(report)
    assert set(found) == {"denied-burst", "new-reader", "read-after-rotation"}
    (burst,) = found["denied-burst"]
    assert burst.source == "sh@web-2" and burst.key == "SECRET_KEY"
    assert burst.reason.startswith("6 denied requests in 30 s")
    process, host = found["new-reader"]  # the refused process is new on web-2 too
    assert (process.source, process.key) == ("sh@web-2", "SECRET_KEY")
    assert "process sh never read a secret from web-2" in process.reason
    assert (host.source, host.key) == ("python3@laptop-7", "DB_PASSWORD")
    assert "host laptop-7" in host.reason
    (old,) = found["read-after-rotation"]
    assert old.source == "gunicorn@web-1" and "read version 4 after version 5" in old.reason
    assert old.where.endswith(f"suspicious.jsonl:{len(baseline()) + 8}")
    assert report.keys["DB_PASSWORD"].hits == 0  # the summary event is before the window
    assert summarize([suspicious_log]).keys["DB_PASSWORD"].hits == 1000


def test_a_new_process_on_a_known_host_is_flagged(tmp_path: Path) -> None:
    """A process never seen on a host that reads every day is flagged as a new reader."""
    records = [*baseline(), read(DAY2, "SECRET_KEY", "web-1", "ipython")]
    report = summarize([write_log(tmp_path / "a.jsonl", records)], since=DAY2)
    (flag,) = report.flags
    assert flag.kind == "new-reader" and "process ipython never read a secret from web-1" in (
        flag.reason
    )


def test_thresholds_are_options(suspicious_log: Path) -> None:
    """Seven denials make a burst only when the threshold says six within 30 s suffice."""
    strict = summarize([suspicious_log], since=DAY2, rules=Rules(burst_count=7))
    assert "denied-burst" not in kinds(strict)
    result = CliRunner().invoke(
        audit, [str(suspicious_log), "--since", "2026-11-21T00:00Z", "--burst-count", "7"]
    )
    assert result.exit_code == 1 and "denied-burst" not in result.output


def test_key_filter_keeps_one_secret(suspicious_log: Path) -> None:
    """--key SECRET_KEY reports that key only (the burst, its new process), not DB_PASSWORD."""
    report = summarize([suspicious_log], since=DAY2, key="SECRET_KEY")
    assert set(report.keys) == {"SECRET_KEY"}
    assert [f.kind for f in report.flags] == ["denied-burst", "new-reader"]


def test_the_command_prints_flags_and_exits_1(suspicious_log: Path) -> None:
    """The table lists the secrets and sources; each flag is a line with its reason; exit 1."""
    result = CliRunner().invoke(audit, [str(suspicious_log), "--since", "2026-11-21T00:00:00Z"])
    assert result.exit_code == 1, result.output
    for text in ("Secrets", "Sources", "flagged: 4", "denied-burst", "new-reader", "laptop-7"):
        assert text in result.output


def test_json_output_for_scripts(suspicious_log: Path, tmp_path: Path) -> None:
    """--json prints the whole report; a directory of logs reads every file in it."""
    result = CliRunner().invoke(audit, [str(tmp_path), "--json", "--since", "2026-11-21T00:00Z"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["files"] == [str(suspicious_log)]
    assert {f["kind"] for f in data["flags"]} == {
        "denied-burst",
        "new-reader",
        "read-after-rotation",
    }
    assert data["keys"]["SECRET_KEY"]["denied"] == 6
    assert data["window"]["start"] == "2026-11-21T00:00:00Z"


def test_events_written_by_the_library_are_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The events a manager writes (reads, a failure, a summary, an operation) are understood."""
    log = tmp_path / "lib.jsonl"
    monkeypatch.setenv("YOSAI_AUDIT_LOG", str(log))
    key = "LIB_" + uuid.uuid4().hex[:6]
    manager = SecretManager(MemoryBackend({key: "v"}))
    for _ in range(3):
        manager.get(key)
    with pytest.raises(ConfigurationError):
        manager.get("ABSENT_" + key)
    events.emit_summary()
    events.emit_operation("rotate", keys=[key], reason="test", outcome="rotated")
    report = summarize([log], key=key)
    assert report.unrecognised == 0 and report.lines == 4
    assert (report.keys[key].reads, report.keys[key].hits) == (1, 2)
    assert [r.key for r in report.rotations] == [key]


def test_since_takes_durations_and_times() -> None:
    """--since 7d, 24h, 30m, 90s or an ISO time; anything else is a clear error."""
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since("90s", now=now) == now - timedelta(seconds=90)
    assert parse_since("2026-11-29T10:00:00.123456789Z") == datetime(
        2026, 11, 29, 10, 0, 0, 123456, tzinfo=UTC
    )
    with pytest.raises(ConfigurationError, match="--since 'yesterday'"):
        parse_since("yesterday")


@pytest.mark.parametrize("problem", ["missing", "not-utf8", "bad-since"])
def test_our_errors_exit_2_naming_the_cause(tmp_path: Path, problem: str) -> None:
    """A missing or unreadable log, or a bad --since, is one line naming it, exit 2."""
    path = tmp_path / "audit.jsonl"
    args = [str(path)]
    if problem == "not-utf8":
        path.write_bytes(b'{"schema": 1}\n\xff\xfe\n')
    elif problem == "bad-since":
        path.write_text("", encoding="utf-8")
        args += ["--since", "last tuesday"]
    result = CliRunner().invoke(audit, args)
    assert result.exit_code == 2, result.output
    expected = "last tuesday" if problem == "bad-since" else str(path)
    assert expected in result.output and "Traceback" not in result.output


def test_gzipped_logs_and_naive_times(suspicious_log: Path, tmp_path: Path) -> None:
    """A rotated log compressed with gzip reads like the plain one; a naive since is UTC."""
    import gzip

    packed = tmp_path / "old" / "suspicious.jsonl.gz"
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(suspicious_log.read_bytes()))
    plain = summarize([suspicious_log], since=DAY2)
    zipped = summarize([packed], since=DAY2.replace(tzinfo=None))
    assert [f.kind for f in zipped.flags] == [f.kind for f in plain.flags]


def test_lines_of_neither_format_are_counted_not_fatal(tmp_path: Path) -> None:
    """A plain text line or a foreign JSON document is skipped and counted in a note."""
    log = tmp_path / "mixed.log"
    records = [read(DAY1, "SECRET_KEY", "web-1")]
    log.write_text(json.dumps(records[0]) + "\nnot json\n[1, 2]\n", encoding="utf-8")
    report = summarize([log])
    assert report.unrecognised == 2 and report.keys["SECRET_KEY"].reads == 1
    assert any("2 line(s)" in note for note in report.notes)


# -- a real OpenBao audit-device log -------------------------------------------------------------


def request_from(server: OpenBaoServer, source: str, path: str, token: str) -> int:
    """GET /v1/``path`` with ``token`` from the loopback address ``source``; the status."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", server.port, timeout=5, source_address=(source, 0)
    )
    try:
        connection.request("GET", f"/v1/{path}", headers={"X-Vault-Token": token})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.fixture
def bao_incident(openbao: OpenBaoServer, canary: str) -> Iterator[dict[str, Any]]:
    """On the session OpenBao: a secret rotated once and read as usual, then a suspicious hour."""
    assert openbao.audit_log is not None, "the session OpenBao declares a file audit device"
    name = "audit" + uuid.uuid4().hex[:10]
    path = f"secret/data/{name}"
    openbao.api(
        "PUT", f"sys/policy/{name}", {"policy": f'path "{path}" {{ capabilities = ["read"] }}'}
    )
    openbao.api("PUT", path, {"data": {"password": canary + "-old"}})
    openbao.api("PUT", path, {"data": {"password": canary}})  # the rotation: version 2
    reader = openbao.api("POST", "auth/token/create", {"policies": [name]})[1]["auth"]
    for _ in range(3):
        assert request_from(openbao, "127.0.0.1", path, reader["client_token"]) == 200
    time.sleep(0.05)
    since = datetime.now(UTC)
    time.sleep(0.05)
    outsider = openbao.api("POST", "auth/token/create", {"policies": ["default"]})[1]["auth"]
    for _ in range(6):
        assert request_from(openbao, "127.0.0.1", path, outsider["client_token"]) == 403
    assert request_from(openbao, "127.0.0.2", path, reader["client_token"]) == 200
    assert request_from(openbao, "127.0.0.1", f"{path}?version=1", reader["client_token"]) == 200
    yield {"path": path, "since": since, "log": openbao.audit_log, "tokens": [reader, outsider]}


def test_a_real_openbao_audit_log_raises_all_four_flags(bao_incident: dict[str, Any]) -> None:
    """Denials, a new address, the token from it, version 1 read after version 2: all flagged."""
    report = summarize([bao_incident["log"]], since=bao_incident["since"], key=bao_incident["path"])
    found = kinds(report)
    assert set(found) == {"denied-burst", "new-reader", "read-after-rotation", "token-new-address"}
    (burst,) = found["denied-burst"]
    assert burst.source == "127.0.0.1" and burst.reason.startswith("6 denied requests")
    (new,) = found["new-reader"]
    assert new.source.endswith("@127.0.0.2") and "host 127.0.0.2" in new.reason
    (moved,) = found["token-new-address"]
    assert "used from 127.0.0.2, before only from 127.0.0.1" in moved.reason
    (old,) = found["read-after-rotation"]
    assert "read version 1 after version 2" in old.reason
    counts = report.keys[bao_incident["path"]]
    assert (counts.reads, counts.denied) == (2, 6)


def test_the_openbao_log_and_the_report_hold_no_value(
    bao_incident: dict[str, Any], canary: str
) -> None:
    """OpenBao HMACs the values (and tokens) it logs; the command's output holds none either."""
    text = bao_incident["log"].read_text(encoding="utf-8")
    assert bao_incident["path"] in text and "hmac-sha256:" in text
    assert canary not in text
    for token in bao_incident["tokens"]:
        assert token["client_token"] not in text and token["accessor"] not in text
    since = bao_incident["since"].isoformat()
    result = CliRunner().invoke(
        audit, [str(bao_incident["log"]), "--since", since, "--key", bao_incident["path"], "--json"]
    )
    assert result.exit_code == 1, result.output
    assert canary not in result.output
    assert len(json.loads(result.output)["flags"]) == 4
