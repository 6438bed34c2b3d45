"""``yosai-secrets scan`` against detect-secrets: files per second on one tree, and false positives.

Run from the repository root: ``.venv/bin/python bench/scan.py``. Builds, in a temporary directory,
a copy of this repository's tracked files plus a generated tree of 5,000 text files (code, YAML
and log lines with request ids and hashes), 120 of which hold a planted secret: a configured value
(current or previous, in one of its encodings) or a credential shape. Then, one run each, as a
user runs them (a process each, wall and CPU time):

- ``yosai-secrets scan TREE --json`` with three secrets and a fallback in its environment;
- ``detect-secrets -c N scan --all-files TREE`` (its default plugins, all cores as by default).

Then both on this repository's tracked files, with no secret configured for ours: the repository
holds test values, never real ones, so each finding is a test value made to look like a secret or
a false positive (ours are listed by place and shape). Last, the git history of this repository:
the way ``--git`` reads it (``git log -p -U0``) against reading every blob once.
"""

from __future__ import annotations

import base64
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from results import Report

REPO = Path(__file__).resolve().parent.parent
GENERATED_FILES = 5000
PLANTED = 120
SEED = 1318
DETECT_SECRETS = Path(sys.executable).with_name("detect-secrets")
_WORDS = [
    "user",
    "order",
    "invoice",
    "session",
    "cache",
    "token_count",
    "request",
    "handler",
    "value",
    "config",
    "item",
]


def _secrets(rng: random.Random) -> dict[str, str]:
    def token(n: int) -> str:
        return base64.urlsafe_b64encode(rng.randbytes(n)).decode().rstrip("=")

    return {
        "SECRET_KEY": token(48),
        "SECRET_KEY_FALLBACKS": json.dumps([token(48)]),
        "DB_PASSWORD": token(24) + "+/&%",
        "AUTH0_CLIENT_SECRET": token(32),
    }


def _encoded(value: str, rng: random.Random) -> str:
    raw = value.encode()
    forms = [
        value,
        base64.b64encode(raw).decode(),
        base64.b64encode(b"user:" + raw).decode(),
        base64.urlsafe_b64encode(b"xy" + raw).decode().rstrip("="),
        urllib.parse.quote(value, safe=""),
        raw.hex(),
        json.dumps({"password": value})[14:-2],
    ]
    return rng.choice(forms)


def _shape(rng: random.Random) -> str:
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

    def rand(n: int, alphabet: str = alnum) -> str:
        return "Ab1" + "".join(rng.choice(alphabet) for _ in range(n - 3))

    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    jwt = f"{b64({'alg': 'HS256'})}.{b64({'sub': 'u1'})}.{rand(43)}"
    return rng.choice(
        [
            "-----BEGIN RSA PRIVATE KEY-----\n" + base64.b64encode(rng.randbytes(48)).decode(),
            "aws_access_key_id = AKIA"
            + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
            "VAULT_TOKEN=hvs." + rand(90),
            "FERNET_KEY=" + base64.urlsafe_b64encode(rng.randbytes(32)).decode(),
            "Authorization: Bearer " + jwt,
            f'api_key = "{rand(32)}"',
        ]
    )


def _filler(rng: random.Random, lines: int) -> str:
    out = []
    for n in range(lines):
        word = rng.choice(_WORDS)
        kind = n % 4
        if kind == 0:
            out.append(f"def {word}_{n}(self, {rng.choice(_WORDS)}):  # handles the {word}")
        elif kind == 1:
            out.append(f"    {word}: {rng.randint(0, 10**6)}  # {rng.choice(_WORDS)} setting")
        elif kind == 2:
            out.append(
                f"2026-11-29T10:{n % 60:02d}:00Z INFO "
                f"request_id={rng.randbytes(16).hex()} {word} ok"
            )
        else:
            out.append(f'    return self.{word}.get("{rng.choice(_WORDS)}", {n})')
    return "\n".join(out) + "\n"


def build_tree(root: Path, values: dict[str, str]) -> set[tuple[str, int]]:
    """Copy the tracked files and generate the rest; where the secrets were planted (file, line)."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    for name in tracked.stdout.decode().split("\0"):
        if name and (REPO / name).is_file():
            (root / "repo" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / name, root / "repo" / name)
    rng = random.Random(SEED)
    planted_values = [values["SECRET_KEY"], values["DB_PASSWORD"], values["AUTH0_CLIENT_SECRET"]]
    planted_values += json.loads(values["SECRET_KEY_FALLBACKS"])
    chosen = set(rng.sample(range(GENERATED_FILES), PLANTED))
    planted = set()
    for n in range(GENERATED_FILES):
        lines = rng.randint(30, 90)
        text = _filler(rng, lines)
        name = f"gen/d{n % 50:02d}/f{n:05d}.{('py', 'yaml', 'txt')[n % 3]}"
        if n in chosen:
            secret = _encoded(rng.choice(planted_values), rng) if n % 2 else _shape(rng)
            text += f"planted = {secret}\n" if n % 2 else secret + "\n"
            planted.add((name, lines + 1))
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return planted


def _timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system of the child) and stdout of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr[-500:]}")
    return wall, cpu, done.stdout


def _ours(
    paths: list[str], env: dict[str, str], cwd: Path
) -> tuple[float, float, list[dict[str, object]]]:
    code = "import sys; from yosai_secrets.cli.scan import scan; scan(sys.argv[1:])"
    wall, cpu, out = _timed([sys.executable, "-c", code, *paths, "--json"], env, cwd)
    return wall, cpu, json.loads(out)["findings"]


def _theirs(
    paths: list[str], env: dict[str, str], cwd: Path, all_files: bool
) -> tuple[float, float, dict[str, list[dict[str, object]]]]:
    flags = ["--all-files"] if all_files else []
    cores = str(os.cpu_count() or 1)
    wall, cpu, out = _timed([str(DETECT_SECRETS), "-c", cores, "scan", *flags, *paths], env, cwd)
    return wall, cpu, json.loads(out)["results"]


def _clean_env() -> dict[str, str]:
    prefixes = ("SECRET", "DB_", "AUTH0_", "VAULT_", "AWS_", "YOSAI_", "FERNET_", "ROTATION_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def _count_files(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _row(
    report: Report,
    tool: str,
    files: int,
    size: int,
    wall: float,
    cpu: float,
    found: int,
    planted: str,
) -> None:
    report.print(
        f"  {tool:<15} {files:>6} {wall:>8.2f} {cpu:>8.2f} {files / wall:>10.0f} "
        f"{size / wall / 1e6:>7.1f} {found:>9} {planted:>13}"
    )


def bench_tree(report: Report, values: dict[str, str]) -> tuple[float, float]:
    """The timed runs over the generated tree; ours over theirs, files per wall and CPU second."""
    with tempfile.TemporaryDirectory(prefix="yosai-scan-bench-") as tmp:
        tree = Path(tmp)
        planted = build_tree(tree, values)
        files, size = _count_files(tree)
        report.print(f"tree: {files} files, {size / 1e6:.1f} MB ({len(planted)} planted secrets)")
        columns = ("files", "wall s", "cpu s", "files/s", "MB/s", "findings", "planted found")
        widths = (6, 8, 8, 10, 7, 9, 13)
        report.print(
            f"  {'tool':<15} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
        )
        env = {**_clean_env(), **values}
        wall, cpu, ours = _ours(["."], env, tree)
        ours_hits = {(f["path"].removeprefix("./"), f["line"]) for f in ours}  # type: ignore[union-attr]
        _row(
            report,
            "yosai-secrets",
            files,
            size,
            wall,
            cpu,
            len(ours),
            f"{len(planted & ours_hits)}/{len(planted)}",
        )
        ours_rate, ours_cpu = files / wall, cpu
        wall, cpu, theirs = _theirs(["."], _clean_env(), tree, all_files=True)
        theirs_hits = {
            (path, int(s["line_number"])) for path, found in theirs.items() for s in found
        }  # type: ignore[call-overload]
        count = sum(len(v) for v in theirs.values())
        _row(
            report,
            "detect-secrets",
            files,
            size,
            wall,
            cpu,
            count,
            f"{len(planted & theirs_hits)}/{len(planted)}",
        )
        return ours_rate / (files / wall), cpu / ours_cpu


def bench_repository(report: Report) -> tuple[int, int]:
    """Both on this repository's tracked files, nothing configured: every finding is false."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    )
    names = [n for n in tracked.stdout.splitlines() if (REPO / n).is_file()]
    report.print(f"this repository: {len(names)} tracked files, no secret configured")
    _, _, ours = _ours(names, _clean_env(), REPO)
    _, _, theirs = _theirs([], _clean_env(), REPO, all_files=False)
    theirs_count = sum(len(v) for v in theirs.values())
    report.print(
        f"  yosai-secrets   {len(ours):>4} findings in {len({f['path'] for f in ours}):>3} files"
    )
    for f in ours:  # names and places only: what a reader needs to judge each one
        report.print(f"      {f['path']}:{f['line']} {f['shape'] or f['secret']}")
    report.print(f"  detect-secrets  {theirs_count:>4} findings in {len(theirs):>3} files")
    return len(ours), theirs_count


def bench_history(report: Report) -> None:
    """--git's way (the diffs of ``git log -p``) against reading every blob once, on this repo."""
    from yosai_secrets.audit.encodings import ValueMatcher
    from yosai_secrets.audit.history import scan_history
    from yosai_secrets.audit.scan import scan_bytes

    matcher = ValueMatcher({"SECRET_KEY": [(base64.b64encode(os.urandom(48)).decode(), True)]})

    def git(*args: str, data: bytes | None = None) -> bytes:
        return subprocess.run(
            ["git", *args], cwd=REPO, input=data, capture_output=True, check=True
        ).stdout

    def diffs() -> int:
        return len(scan_history(REPO, matcher, shapes=True))

    def blobs() -> int:
        listing = git(
            "rev-list",
            "--objects",
            "--all",
            "--filter=object:type=blob",
            "--filter-provided-objects",
        )
        oids = b"".join(line.split(b" ")[0] + b"\n" for line in listing.splitlines())
        batch = git("cat-file", "--batch", data=oids)
        found, at = 0, 0
        while at < len(batch):
            header_end = batch.index(b"\n", at)
            size = int(batch[at:header_end].split()[2])
            found += len(scan_bytes(batch[header_end + 1 : header_end + 1 + size], "", matcher))
            at = header_end + 2 + size
        return found

    commits = git("rev-list", "--all", "--count").decode().strip()
    diff_bytes = len(git("log", "-p", "--all", "-U0", "--no-color", "--format=%x00%H"))
    report.print(f"git history of this repository ({commits} commits), one run each:")
    for label, run, size in (
        ("git log -p -U0 (--git)", diffs, diff_bytes),
        ("every blob once", blobs, None),
    ):
        start = time.perf_counter()
        found = run()
        seconds = time.perf_counter() - start
        shown = f"{size / 1e6:5.1f} MB of diffs" if size else ""
        report.print(f"  {label:<24} {seconds:6.2f} s  {found:>4} findings  {shown}")


def main() -> None:
    """Measure and print."""
    report = Report("scan", "yosai-secrets scan against detect-secrets (bench/scan.py)")
    values = _secrets(random.Random(SEED))
    ratio, cpu_ratio = bench_tree(report, values)
    ours_fp, theirs_fp = bench_repository(report)
    bench_history(report)
    report.ratio("files per second, yosai-secrets over detect-secrets", ratio, at_least=1)
    # CPU time drifts less than wall time on a shared machine.
    report.ratio("files per CPU second, yosai-secrets over detect-secrets", cpu_ratio, at_least=1)
    # Nothing is configured and the repository holds no real secret: each finding is a test value
    # written to look like one, or a false positive (ours are listed above).
    report.ratio("findings on this repository, yosai-secrets", ours_fp, unit="", digits=0)
    report.ratio("findings on this repository, detect-secrets", theirs_fp, unit="", digits=0)
    report.save()


if __name__ == "__main__":
    main()
