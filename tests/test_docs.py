"""The README and docs: commands that work as written, and benchmark figures in one place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])
ACTIVATE = ". .venv/bin/activate"
# A command that needs the virtualenv: our CLI, its Python, or a tool installed into it.
NEEDS_VENV = re.compile(
    r"^\s*(?:[A-Z_]+=\S*\s+)*(?:python|yosai-secrets|flask|gunicorn|bao|pip|dynaconf)\b"
)
# A table of measurements: a cell holding a time ("| 16.9 ms |", "| 210 ns (1.5x ...) |"), or a
# header naming a time unit or a percentile ("| contender | p50 µs | CPU µs/read |").
FIGURE_ROW = re.compile(
    r"^\|.*(?:\|\s*[\d.,]+\s*(?:ms|µs|ns)\b[^|]*\||\b(?:ms|µs|ns|p50)\b.*\|\s*$)", re.MULTILINE
)


def _first_command_line(text: str) -> int | None:
    """The index of the first line, inside a shell code block, that needs the virtualenv."""
    in_shell = False
    for index, line in enumerate(text.splitlines()):
        if line.startswith("```"):
            in_shell = not in_shell and line.strip("`").strip() in {"bash", "sh", "shell", ""}
            continue
        if in_shell and NEEDS_VENV.match(line):
            return index
    return None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_venv_is_activated_before_the_first_command(page: Path) -> None:
    """Each page that shows a command says to activate the venv before its first one."""
    text = page.read_text(encoding="utf-8")
    first = _first_command_line(text)
    if first is None:
        return
    before = "\n".join(text.splitlines()[:first])
    assert ACTIVATE in before, f"{page.name}: say `{ACTIVATE}` before line {first + 1}"


def test_no_page_says_venv_bin() -> None:
    """One convention: activation, never a .venv/bin/ prefix in a documented command."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8").replace(ACTIVATE, "")
        assert ".venv/bin/" not in text, page.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_copies_a_benchmark_figure(page: Path) -> None:
    """No page holds a table of measured figures: they live in bench/RESULTS.md alone."""
    assert not FIGURE_ROW.findall(page.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["configuration.md", "vault.md", "aws.md", "api.md"])
def test_pages_that_describe_a_benchmark_link_to_its_results(name: str) -> None:
    """A page that names a benchmark links to bench/RESULTS.md for its figures."""
    assert "(../bench/RESULTS.md)" in (REPO_ROOT / "docs" / name).read_text(encoding="utf-8")
