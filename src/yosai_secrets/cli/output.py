"""Shared terminal output for the commands (rich, imported with the CLI only)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

__all__ = ["console", "table"]


def console(stderr: bool = False) -> Console:
    """A console that writes plain text when not on a terminal (pipes, CliRunner)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def table(title: str, columns: Sequence[str]) -> Table:
    """A table with the given title and columns."""
    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column)
    return grid
