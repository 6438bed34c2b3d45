"""The one place benchmark figures are kept: ``bench/RESULTS.md``, written by the benchmarks.

Each benchmark makes a :class:`Report`, prints through it (so what it prints and what it keeps
are the same text), states its key ratios with :meth:`Report.ratio`, and calls
:meth:`Report.save`, which replaces that benchmark's own section of ``RESULTS.md`` (or adds it)
and leaves every other section as it was. A section says when it was measured, with which
command, on what machine and under what load, since absolute figures on a shared machine drift:
quote the ratios.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import platform
import re
import sys
from pathlib import Path

__all__ = ["RESULTS", "Report"]

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "RESULTS.md"
#: The order of the sections in RESULTS.md (that of ``make bench``); others go after these.
ORDER = ("import_time", "cache", "vault", "aws", "config_load", "readyz")
HEADER = """\
# Benchmark results

Written by the benchmarks themselves (`make bench`, or one of them: `python bench/NAME.py`); each
run replaces its own section. Do not edit by hand. Every figure comes from one run on a shared
machine: compare the ratios, not the absolute times, and rerun when one looks off.
"""
_SECTION = re.compile(r"<!-- bench:(?P<name>[\w-]+) -->\n.*?<!-- /bench:(?P=name) -->\n", re.S)


class Report:
    """What one benchmark prints, kept for its section of RESULTS.md.

    Args:
        name: the section's name (the benchmark file's stem).
        title: the section's heading.
    """

    def __init__(self, name: str, title: str) -> None:
        self.name = name
        self.title = title
        self.lines: list[str] = []
        self.ratios: list[tuple[str, str, str, str]] = []
        self.started = datetime.datetime.now(datetime.UTC)
        self.load = os.getloadavg()[0]

    def print(self, text: str = "") -> None:
        """Print ``text`` and keep it for the section."""
        print(text, flush=True)
        self.lines.extend(text.split("\n"))

    def ratio(
        self,
        label: str,
        value: float,
        *,
        at_most: float | None = None,
        at_least: float | None = None,
        unit: str = "x",
        digits: int = 2,
    ) -> None:
        """Keep one headline figure, and its target if it has one, for the section's summary."""
        target = met = ""
        if at_most is not None:
            target, met = f"<= {at_most:g}{unit}", "yes" if value <= at_most else "NO"
        elif at_least is not None:
            target, met = f">= {at_least:g}{unit}", "yes" if value >= at_least else "NO"
        self.ratios.append((label, f"{value:.{digits}f}{unit}", target, met))

    def save(self) -> None:
        """Print the summary and write this section into RESULTS.md, the others untouched."""
        if self.ratios:
            self.print("summary")
            for label, value, target, met in self.ratios:
                verdict = "met" if met == "yes" else "MISSED"
                goal = f"  (target {target}: {verdict})" if target else ""
                self.print(f"  {label}: {value}{goal}")
        section = self._render()
        # One writer at a time (a lock on the directory), then an atomic replace.
        fd = os.open(BENCH, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
            sections = {m["name"]: m[0] for m in _SECTION.finditer(old)}
            sections[self.name] = section
            names = [n for n in ORDER if n in sections] + sorted(set(sections) - set(ORDER))
            text = HEADER + "".join(f"\n{sections[n]}" for n in names)
            tmp = RESULTS.with_name(f".{RESULTS.name}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(RESULTS)
        finally:
            os.close(fd)
        print(f"(written to {RESULTS.relative_to(BENCH.parent)}, section {self.name})")

    def _render(self) -> str:
        when = self.started.strftime("%Y-%m-%d %H:%M UTC")
        machine = (
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"load average {self.load:.2f} at start"
        )
        parts = [
            f"<!-- bench:{self.name} -->",
            f"## {self.title}",
            "",
            f"{when} · `{_command()}` · {machine}",
            "",
        ]
        if self.ratios:
            parts += ["| figure | value | target | met |", "|---|---:|---|---|"]
            parts += [f"| {' | '.join(row)} |" for row in self.ratios]
            parts.append("")
        body = self.lines
        while body and body[-1] == "":
            body = body[:-1]
        parts += ["```text", *body, "```", f"<!-- /bench:{self.name} -->", ""]
        return "\n".join(parts)


def _command() -> str:
    """How this benchmark was started, with the script relative to the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(BENCH.parent))
    except ValueError:
        shown = script.name
    return " ".join(["python", shown, *sys.argv[1:]])
