"""The public edge (edge.py): our errors leave without the frames that held values."""

from __future__ import annotations

import traceback

import pytest

from tests.canary_sweep import CANARY, new_canary
from yosai_secrets.edge import cut_frames, public_edge
from yosai_secrets.errors import ConfigurationError


def _parse(value: str) -> int:
    raise ValueError("not a number")  # a scrubbed message; this frame's locals hold the value


_STORE: dict[str, str] = {}


def _deep(name: str) -> None:
    value = _STORE[name]
    try:
        _parse(value)
    except ValueError as exc:
        raise ConfigurationError("KEY is not a number") from exc


@public_edge
def _entry(name: str) -> None:
    _deep(name)


@public_edge
def _bug() -> None:
    raise KeyError("not ours")


def test_frames_below_the_edge_and_the_causes_frames_are_cut() -> None:
    _STORE["KEY"] = new_canary()  # held by the store and the frames below the edge only
    with pytest.raises(ConfigurationError) as caught:
        _entry("KEY")
    text = "".join(
        traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()
    )
    assert CANARY.search(text) is None
    assert "_deep" not in text and "_parse" not in text
    assert "test_frames_below_the_edge" in text  # the caller's frame stays
    assert isinstance(caught.value.__cause__, ValueError)  # the chain's types and messages stay
    assert caught.value.__cause__.__traceback__ is None


def test_errors_that_are_not_ours_keep_their_frames() -> None:
    with pytest.raises(KeyError) as caught:
        _bug()
    assert "_bug" in "".join(traceback.format_tb(caught.value.__traceback__))


def test_a_cause_cycle_does_not_loop() -> None:
    first, second = ConfigurationError("a"), ConfigurationError("b")
    first.__cause__, second.__cause__ = second, first
    cut_frames(first)  # returns
