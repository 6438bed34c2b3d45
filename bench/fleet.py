"""Benchmark: a fleet of pods started together against one OpenBao, with and without jitter,
directly and through a node-local ``bao proxy``.

Run: ``python bench/fleet.py`` (about 3 minutes on 2 cores; ``--processes``, ``--managers``,
``--ttl``, ``--steady-seconds`` for other shapes). It starts its own ``bao server -dev`` with a file
audit device (every request that reaches the server is one line, so the server itself counts),
writes the six secrets every pod needs (SECRET_KEY, DB_PASSWORD, AUTH0_CLIENT_ID,
AUTH0_CLIENT_SECRET, AUTH0_DOMAIN, AUTH0_AUDIENCE) as the fields of ``secret/data/yosai`` (the
shipped layout: bare names at ``VAULT_SECRETS_PATH``), and creates an AppRole for the pods.

A pod is one :class:`SecretManager` with its own Vault client, as a real pod would have: by default
8 forked processes of 32 managers each, 256 pods. All are released at one instant and read the six
secrets with one ``get_many`` (a cold start), then each process reads every pod's six secrets every
50 ms (served by the cache, refreshed as TTLs run out) for the steady-state window. Four runs:

- **direct**: each pod logs in with AppRole and reads from the server (``VAULT_ADDR``);
- **proxy**: each pod sends no token to one ``bao proxy`` (``VAULT_AGENT_ADDR``; AppRole auto-auth,
  ``use_auto_auth_token``) standing for the node-local proxy of every pod;

each with ``SECRET_CACHE_JITTER=0`` and ``0.1``. Measured: requests reaching the server during the
cold start and per minute in steady state (short TTL, scaled to the default 300 s), the busiest
second of the steady state, the time until every pod is ready, and the p50/p99 of a pod's cold read.
Last, the server's own cost: KV reads and AppRole logins per second and server CPU per request
(from ``/proc``), which docs/scaling.md extrapolates from.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers.bao_proxy import start_bao_proxy, stop_bao_proxy
from tests.servers.openbao import OpenBaoServer, start_openbao, stop_openbao

from results import Report
from yosai_secrets.environments import REQUIRED_SECRETS
from yosai_secrets.manager import SecretManager

KEYS = REQUIRED_SECRETS  # the six secrets every pod needs
SECRETS_PATH = "secret/data/yosai"
TRAFFIC_PERIOD_SECONDS = 0.05
DEFAULT_TTL_SECONDS = 300.0
RELEASE_DELAY_SECONDS = 3.0


@dataclass
class Shape:
    """The fleet's size and timing (from the command line)."""

    processes: int
    managers: int
    ttl: float
    steady_seconds: float

    @property
    def pods(self) -> int:
        """How many simulated pods."""
        return self.processes * self.managers


@dataclass
class Outcome:
    """One run's figures."""

    label: str
    cold_requests: int
    steady_per_minute: float
    busiest_second: int
    busiest_hundredth: int
    ready_seconds: float
    p50_ms: float
    p99_ms: float
    errors: int


# -- one simulated process of pods ----------------------------------------------------------------


def _pod_cold_start(manager: SecretManager, release_at: float) -> tuple[float, float, int]:
    """Wait for the release, read the six secrets in one get_many: (latency s, ready at, errors)."""
    time.sleep(max(0.0, release_at - time.time()))
    start = time.perf_counter()
    results = manager.get_many(KEYS)
    latency = time.perf_counter() - start
    errors = sum(1 for value in results.values() if not isinstance(value, str))
    return latency, time.time(), errors


def _traffic(managers: list[SecretManager], end_at: float) -> int:
    """Every 50 ms, read every pod's six secrets (cache hits; refreshes when TTLs run out)."""
    errors = 0
    while time.time() < end_at:
        for manager in managers:
            for key in KEYS:
                try:
                    manager.get(key)
                except Exception:  # a failed refresh past its stale window: count it
                    errors += 1
        time.sleep(TRAFFIC_PERIOD_SECONDS)
    return errors


def _process_main(
    environ: dict[str, str], shape: Shape, jitter: float, times: tuple[float, float], out: Any
) -> None:
    """One process of ``shape.managers`` pods: a cold start together, then steady traffic."""
    release_at, end_at = times
    managers = [
        SecretManager(environ=environ, ttl_seconds=shape.ttl, jitter=jitter, audit=False)
        for _ in range(shape.managers)
    ]
    with ThreadPoolExecutor(max_workers=shape.managers) as pool:
        cold = list(pool.map(lambda m: _pod_cold_start(m, release_at), managers))
    errors = sum(c[2] for c in cold) + _traffic(managers, end_at)
    out.send({"latency": [c[0] for c in cold], "ready": [c[1] for c in cold], "errors": errors})
    out.close()
    for manager in managers:
        manager.close()


# -- counting at the server -----------------------------------------------------------------------


class AuditCounter:
    """Reads the request lines the server's audit device wrote, by their time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new_request_times(self) -> list[float]:
        """The wall times of the requests logged since the last call."""
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        cut = data.rfind(b"\n") + 1
        self.offset += cut
        times = []
        for line in data[:cut].splitlines():
            entry = json.loads(line)
            if entry.get("type") == "request":
                stamp = datetime.datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
                times.append(stamp.timestamp())
        return times


def _busiest(times: list[float], window_seconds: float) -> int:
    """The most requests in any window of ``window_seconds`` (sliding)."""
    ordered = sorted(times)
    best = start = 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= window_seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- one run of the fleet -------------------------------------------------------------------------


def run_fleet(
    label: str, environ: dict[str, str], shape: Shape, jitter: float, counter: AuditCounter
) -> Outcome:
    """Start every process, release the pods together, and count what reached the server."""
    counter.new_request_times()  # skip what came before
    release_at = time.time() + RELEASE_DELAY_SECONDS
    end_at = release_at + shape.ttl + shape.steady_seconds
    context = multiprocessing.get_context("fork")
    pipes, processes = [], []
    for _ in range(shape.processes):
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(
            target=_process_main, args=(environ, shape, jitter, (release_at, end_at), writer)
        )
        process.start()
        writer.close()
        pipes.append(reader)
        processes.append(process)
    reports = [pipe.recv() for pipe in pipes]
    for process in processes:
        process.join(timeout=60)
    time.sleep(0.5)  # the audit device writes before answering; let the last lines land
    latencies = sorted(x for r in reports for x in r["latency"])
    ready_all = max(x for r in reports for x in r["ready"])
    times = [t for t in counter.new_request_times() if t >= release_at - 0.5]
    cold = sum(1 for t in times if t <= ready_all + 0.05)
    # Steady state: whole TTL periods, starting half a TTL after the release.
    steady_from = release_at + shape.ttl / 2
    steady_to = steady_from + shape.ttl * int(shape.steady_seconds // shape.ttl)
    steady = [t for t in times if steady_from <= t < steady_to]
    return Outcome(
        label=label,
        cold_requests=cold,
        steady_per_minute=len(steady) * 60.0 / (steady_to - steady_from),
        busiest_second=_busiest(steady, 1.0),
        busiest_hundredth=_busiest(steady, shape.ttl / 100),
        ready_seconds=ready_all - release_at,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        errors=sum(r["errors"] for r in reports),
    )


# -- the server's own cost -----------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hammer(
    addr: str, request: Callable[[http.client.HTTPConnection], None], seconds: float
) -> int:
    """Send ``request`` on keep-alive connections from 4 threads for ``seconds``; count answers."""
    parts = urlsplit(addr)
    counts = [0] * 4
    stop_at = time.monotonic() + seconds

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        while time.monotonic() < stop_at:
            request(conn)
            counts[index] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def server_cost(
    server: OpenBaoServer, login_body: dict[str, str], seconds: float
) -> dict[str, tuple[float, float]]:
    """{what: (requests per second, server CPU ms per request)} for KV reads and AppRole logins."""

    def kv_read(conn: http.client.HTTPConnection) -> None:
        conn.request("GET", f"/v1/{SECRETS_PATH}", headers={"X-Vault-Token": server.token})
        conn.getresponse().read()

    def login(conn: http.client.HTTPConnection) -> None:
        body = json.dumps(login_body)
        conn.request("POST", "/v1/auth/approle/login", body=body)
        conn.getresponse().read()

    cost = {}
    for what, request in (("KV read", kv_read), ("AppRole login", login)):
        cpu_before = _cpu_seconds(server.pid)
        count = _hammer(server.addr, request, seconds)
        cpu = _cpu_seconds(server.pid) - cpu_before
        cost[what] = (count / seconds, cpu * 1000 / max(count, 1))
    return cost


# -- setting up, printing -------------------------------------------------------------------------


def _setup(server: OpenBaoServer) -> dict[str, str]:
    """Write the six secrets and create the pods' AppRole; return its login body."""
    values = {key: f"fleet-{key.lower()}-value" for key in KEYS}
    server.api("POST", SECRETS_PATH, {"data": values})
    server.api("POST", "sys/auth/approle", {"type": "approle"})
    policy = f'path "{SECRETS_PATH}" {{ capabilities = ["read"] }}'
    server.api("PUT", "sys/policy/fleet", {"policy": policy})
    server.api("POST", "auth/approle/role/fleet", {"token_policies": ["fleet"]})
    role_id = server.api("GET", "auth/approle/role/fleet/role-id")[1]["data"]["role_id"]
    secret_id = server.api("POST", "auth/approle/role/fleet/secret-id", {})[1]["data"]
    return {"role_id": role_id, "secret_id": secret_id["secret_id"]}


def _runs(server: OpenBaoServer, login: dict[str, str], shape: Shape, which: str) -> list[Outcome]:
    """The runs ``which`` asks for (all: four): direct and via bao proxy, jitter 0 and 0.1."""
    assert server.audit_log is not None
    counter = AuditCounter(server.audit_log)
    direct = {
        "SECRET_BACKEND": "vault",
        "VAULT_ADDR": server.addr,
        "VAULT_ROLE_ID": login["role_id"],
        "VAULT_SECRET_ID": login["secret_id"],
        "VAULT_SECRETS_PATH": SECRETS_PATH,
    }
    outcomes = []
    for jitter in (0.0, 0.1) if which in ("all", "direct") else ():
        label = f"direct, jitter {jitter:g}"
        print(f"running {label} ...", flush=True)
        outcomes.append(run_fleet(label, direct, shape, jitter, counter))
    if which == "direct":
        return outcomes
    proxy = start_bao_proxy(server)
    try:
        via = {
            "SECRET_BACKEND": "vault",
            "VAULT_AGENT_ADDR": proxy.addr,
            "VAULT_SECRETS_PATH": SECRETS_PATH,
        }
        for jitter in (0.0, 0.1):
            label = f"bao proxy, jitter {jitter:g}"
            print(f"running {label} ...", flush=True)
            outcomes.append(run_fleet(label, via, shape, jitter, counter))
    finally:
        stop_bao_proxy(proxy)
    return outcomes


def _print(report: Report, shape: Shape, outcomes: list[Outcome], cost: dict[str, Any]) -> None:
    scale = shape.ttl / DEFAULT_TTL_SECONDS
    report.print(
        f"{shape.pods} pods ({shape.processes} processes x {shape.managers} SecretManagers, each "
        f"its own client), six secrets in one path, TTL {shape.ttl:g} s, steady state "
        f"{int(shape.steady_seconds // shape.ttl) * shape.ttl:g} s; requests counted in the "
        "server's audit log; peak/s: the busiest second of the steady state; TTL/100: the "
        "busiest window of a hundredth of the TTL (3 s at TTL 300)"
    )
    report.print(
        f"  {'run':<22}{'cold reqs':>10}{'reqs/min':>10}{'@300s TTL':>10}{'peak/s':>8}"
        f"{'TTL/100':>8}{'ready s':>9}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
    )
    for o in outcomes:
        report.print(
            f"  {o.label:<22}{o.cold_requests:>10}{o.steady_per_minute:>10.0f}"
            f"{o.steady_per_minute * scale:>10.1f}{o.busiest_second:>8}{o.busiest_hundredth:>8}"
            f"{o.ready_seconds:>9.2f}"
            f"{o.p50_ms:>8.0f}{o.p99_ms:>8.0f}{o.errors:>7}"
        )
    report.print("OpenBao's own cost here (4 keep-alive client threads, audit device on)")
    for what, (per_second, cpu_ms) in cost.items():
        report.print(f"  {what:<14} {per_second:8.0f} requests/s  {cpu_ms:6.3f} ms server CPU each")


def _ratios(report: Report, outcomes: list[Outcome], shape: Shape) -> None:
    by = {o.label: o for o in outcomes}
    if len(by) < 4:  # a partial run: the jitter ratio of what ran
        for kind in ("direct", "bao proxy"):
            if f"{kind}, jitter 0" in by:
                no, yes = by[f"{kind}, jitter 0"], by[f"{kind}, jitter 0.1"]
                report.ratio(
                    f"steady busiest second, jitter 0.1 / jitter 0 ({kind})",
                    yes.busiest_second / max(no.busiest_second, 1),
                )
        return
    direct0, direct1 = by["direct, jitter 0"], by["direct, jitter 0.1"]
    proxy0, proxy1 = by["bao proxy, jitter 0"], by["bao proxy, jitter 0.1"]
    report.ratio("cold-start requests per pod, direct", direct1.cold_requests / shape.pods)
    report.ratio("cold-start requests per pod, via bao proxy", proxy1.cold_requests / shape.pods)
    report.ratio(
        "steady busiest second, jitter 0.1 / jitter 0 (direct)",
        direct1.busiest_second / max(direct0.busiest_second, 1),
    )
    report.ratio(
        "steady busiest second, jitter 0.1 / jitter 0 (proxy)",
        proxy1.busiest_second / max(proxy0.busiest_second, 1),
    )
    report.ratio(
        "steady busiest TTL/100 window, jitter 0.1 / jitter 0 (direct)",
        direct1.busiest_hundredth / max(direct0.busiest_hundredth, 1),
    )
    report.ratio(
        "steady requests/min, proxy / direct (jitter 0.1)",
        proxy1.steady_per_minute / max(direct1.steady_per_minute, 1),
    )
    report.ratio("every pod ready, direct, jitter 0.1", direct1.ready_seconds, unit=" s")
    report.ratio("cold read p99, direct, jitter 0.1", direct1.p99_ms, unit=" ms", digits=0)
    report.ratio(
        "errors in all runs", sum(o.errors for o in outcomes), at_most=0, unit="", digits=0
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--managers", type=int, default=32, help="pods per process")
    parser.add_argument("--ttl", type=float, default=10.0, help="SECRET_CACHE_TTL of every pod")
    parser.add_argument("--steady-seconds", type=float, default=30.0)
    parser.add_argument("--cost-seconds", type=float, default=4.0)
    parser.add_argument("--runs", choices=("all", "direct", "proxy"), default="all")
    args = parser.parse_args()
    shape = Shape(args.processes, args.managers, args.ttl, args.steady_seconds)
    server = start_openbao(audit_log=True, kv_v1_mount=None)
    try:
        login = _setup(server)
        outcomes = _runs(server, login, shape, args.runs)
        cost = server_cost(server, login, args.cost_seconds)
    finally:
        stop_openbao(server)
    title = f"Fleet: {shape.pods} pods started together against one OpenBao (bench/fleet.py)"
    default = (args.processes, args.managers, args.ttl, args.runs) == (8, 32, 10.0, "all")
    report = Report("fleet" if default else f"fleet-ttl{args.ttl:g}-{args.runs}", title)
    _print(report, shape, outcomes, cost)
    _ratios(report, outcomes, shape)
    report.save()


if __name__ == "__main__":
    main()
