"""A cached hit, auditing on and off, beside the floor, for whichever yosai_secrets is importable.

Auditing on is the default (``YOSAI_AUDIT``): every backend read is an event, and every hit is
counted per key for the audit summary (never logged). This measures what that costs a hit:
``get_secret()`` (the default manager, auditing on, ``YOSAI_AUDIT_LOG`` set), a manager with
auditing on and one with it off, and the floor, in interleaved rounds so that a change in the
machine's load hits them all alike. Run it against two trees to compare a change's cost::

    git worktree add ../before <commit>
    PYTHONPATH=../before/src .venv/bin/python bench/cached_hit.py --no-save
    .venv/bin/python bench/cached_hit.py

The floor is a dict lookup with a monotonic-clock check, as a function call. Best of 301 short
rounds of 5,000 calls each, interleaved: on a shared machine the minimum is the least disturbed,
and many short rounds give each candidate its share of quiet moments.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable

os.environ["DB_PASSWORD"] = "x" * 32
os.environ.setdefault("YOSAI_ENV", "test")
os.environ["YOSAI_AUDIT_SUMMARY_SECONDS"] = "0"  # no timer thread beside the measured loop
_LOG_DIR = tempfile.TemporaryDirectory()
os.environ["YOSAI_AUDIT_LOG"] = os.path.join(_LOG_DIR.name, "audit.jsonl")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import yosai_secrets  # noqa: E402
from results import Report  # noqa: E402
from yosai_secrets import SecretManager, get_secret  # noqa: E402

ROUNDS, CALLS = 301, 5_000

_TABLE: dict[str, tuple[str, float]] = {"DB_PASSWORD": ("x" * 32, time.monotonic() + 300)}


def floor(
    key: str, table: dict[str, tuple[str, float]] = _TABLE, clock: object = time.monotonic
) -> str | None:
    """What any cache must do at least: look the key up and check its expiry."""
    entry = table.get(key)
    if entry is not None and entry[1] > clock():  # type: ignore[operator]
        return entry[0]
    return None


def one_round_ns(fn: Callable[[str], object]) -> float:
    """The mean time of one call over CALLS calls, in nanoseconds."""
    start = time.perf_counter()
    for _ in range(CALLS):
        fn("DB_PASSWORD")
    return (time.perf_counter() - start) / CALLS * 1e9


def best_ns(candidates: dict[str, Callable[[str], object]]) -> dict[str, float]:
    """The best round of each candidate, the rounds interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(ROUNDS):
        for name, fn in candidates.items():
            samples[name].append(one_round_ns(fn))
    return {name: min(values) for name, values in samples.items()}


def candidates() -> dict[str, Callable[[str], object]]:
    """The hits to time: with auditing on and off where this tree has the switch."""
    found: dict[str, Callable[[str], object]] = {"get_secret() (default)": get_secret}
    try:
        on, off = SecretManager("env", audit=True), SecretManager("env", audit=False)  # type: ignore[call-arg]
    except TypeError:  # a tree from before auditing
        return {**found, "floor": floor}
    found["manager.get(), auditing on"] = on.get
    found["manager.get(), auditing off"] = off.get
    found["floor"] = floor
    return found


def main() -> None:
    """Print each hit, the floor and the ratios, and write the section of RESULTS.md."""
    report = Report("cached_hit", "A cached hit with auditing on and off (bench/cached_hit.py)")
    timed = candidates()
    for fn in timed.values():
        fn("DB_PASSWORD")  # warm: the one backend read (and its audit event) happens here
    best = best_ns(timed)
    where = os.path.dirname(os.path.dirname(yosai_secrets.__file__))
    report.print(f"yosai_secrets from {os.path.basename(os.path.dirname(where)) or where}")
    report.print(f"best of {ROUNDS} interleaved rounds of {CALLS:,} calls")
    base = best["floor"]
    for name, ns in best.items():
        report.print(f"  {name:30} {ns:6.0f} ns  {ns / base:5.2f}x the floor")
    log = os.environ["YOSAI_AUDIT_LOG"]
    lines = 0
    if os.path.exists(log):
        with open(log, encoding="utf-8") as written:
            lines = sum(1 for _ in written)
    report.print(f"audit log lines written: {lines} (the warm-up reads; hits write none)")
    report.ratio("get_secret() hit / floor", best["get_secret() (default)"] / base, at_most=3)
    if "manager.get(), auditing on" in best:
        on, off = best["manager.get(), auditing on"], best["manager.get(), auditing off"]
        report.ratio("hit, auditing on / floor", on / base, at_most=3)
        report.ratio("hit, auditing off / floor", off / base, at_most=3)
        report.ratio("hit, auditing on / off", on / off, at_most=1.1)
    if "--no-save" not in sys.argv:
        report.save()


if __name__ == "__main__":
    main()
