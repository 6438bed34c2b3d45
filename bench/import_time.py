"""Benchmark: the start-up cost of ``from yosai_secrets import get_secret``, beside hvac, boto3.

Run: ``python bench/import_time.py`` (or ``make bench``). Each contender is a fresh interpreter
(``python -c "<import>"``) minus a bare one (``python -c pass``), the minimum of 20 runs each,
interleaved so that machine noise hits every contender alike. Target: ``get_secret`` at most
30 ms over a bare interpreter.

Every interpreter runs from compiled bytecode, as in the shipped image (``UV_COMPILE_BYTECODE=1``)
and after ``pip install``: a private ``PYTHONPYCACHEPREFIX`` is filled by a first run, and
``PYTHONDONTWRITEBYTECODE`` is dropped. (Without bytecode, every start would also compile each
module, and the figures would measure the compiler.)

Last, ``python -X importtime`` says which modules the import brings in: ours (their own code),
and each module that one of ours imports directly, with everything it pulls in.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import Report

RUNS = 20
OURS = "from yosai_secrets import get_secret"
CONTENDERS = {
    "bare interpreter": "pass",
    "yosai_secrets get_secret": OURS,
    "hvac": "import hvac",
    "boto3": "import boto3",
}
TARGET_MS = 30.0
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def run_ms(code: str, env: dict[str, str], cwd: str) -> float:
    """Wall time of one ``python -c code``, in ms."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True)
    return (time.perf_counter() - start) * 1000


def minimums(env: dict[str, str], cwd: str, runs: int) -> dict[str, float]:
    """{contender: minimum ms over ``runs`` interleaved runs}."""
    best = dict.fromkeys(CONTENDERS, float("inf"))
    for _ in range(runs):
        for name, code in CONTENDERS.items():
            best[name] = min(best[name], run_ms(code, env, cwd))
    return best


def imported_by_ours(env: dict[str, str], cwd: str) -> tuple[float, list[tuple[str, float, str]]]:
    """(ms of our own modules' code, [(module, cumulative ms, which of ours imported it)]).

    The minimum over 5 runs of ``-X importtime`` (which inflates every figure somewhat).
    """
    own: dict[str, float] = {}
    outside: dict[str, float] = {}
    importer: dict[str, str] = {}
    for _ in range(5):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", OURS],
            env=env,
            cwd=cwd,
            check=True,
            capture_output=True,
            text=True,
        ).stderr
        rows = []
        for line in err.splitlines():
            m = _LINE.match(line)
            if m:
                rows.append((int(m[1]), int(m[2]), len(m[3]) // 2, m[4]))
        seen_own: dict[str, float] = {}
        seen_out: dict[str, float] = {}
        for index, (self_us, cumulative_us, depth, name) in enumerate(rows):
            if name.startswith("yosai_secrets"):
                seen_own[name] = self_us / 1000
                continue
            # Its importer is the next row one level up (importtime prints children first).
            parent = next((r[3] for r in rows[index + 1 :] if r[2] < depth), "")
            if parent.startswith("yosai_secrets"):
                seen_out[name] = cumulative_us / 1000
                importer[name] = parent
        for target, seen in ((own, seen_own), (outside, seen_out)):
            for name, ms in seen.items():
                target[name] = min(target.get(name, ms), ms)
    ranked = sorted(((n, ms, importer[n]) for n, ms in outside.items()), key=lambda r: -r[1])
    return sum(own.values()), ranked


def main() -> None:
    report = Report("import_time", "Import time: `from yosai_secrets import get_secret`")
    cwd = tempfile.mkdtemp(prefix="yosai-bench-import-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPYCACHEPREFIX"] = str(Path(cwd, "pycache"))
    for code in CONTENDERS.values():
        run_ms(code, env, cwd)  # compiles into the private cache
    best = minimums(env, cwd, RUNS)
    own_ms, imported = imported_by_ours(env, cwd)

    bare = best["bare interpreter"]
    report.print(
        f"import cost over a bare interpreter (python -c pass: {bare:.1f} ms), "
        f"min of {RUNS} runs each, compiled bytecode"
    )
    for name, code in CONTENDERS.items():
        if code != "pass":
            report.print(f"  {name:28}{best[name] - bare:8.1f} ms  python -c {code!r}")
    ours = best["yosai_secrets get_secret"] - bare
    report.print(f"what {OURS!r} imports (python -X importtime, min of 5)")
    report.print(f"  {'our own modules (their code only)':34}{own_ms:8.1f} ms")
    for name, ms, parent in imported:
        if ms < 0.5:
            break
        report.print(f"  {name:34}{ms:8.1f} ms  with what it imports, first by {parent}")
    report.ratio("get_secret import over a bare interpreter", ours, at_most=TARGET_MS, unit=" ms")
    report.ratio("hvac import / ours", (best["hvac"] - bare) / ours)
    report.ratio("boto3 import / ours", (best["boto3"] - bare) / ours)
    report.save()


if __name__ == "__main__":
    main()
