"""The bad-input corpus (see ``tests/corpus/__init__.py``): every row, one parametrised test."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.corpus import (
    ACCEPTED,
    Ctx,
    Response,
    Row,
    chain_text,
    rows_aws,
    rows_aws_settings,
    rows_env,
    rows_fernet,
    rows_files,
    rows_jwt,
    rows_references,
    rows_vault,
    rows_vault_settings,
    rows_vault_standin,
    rows_writes,
    rows_yaml,
    tree,
    walk_rows,
)
from yosai_secrets.errors import YosaiSecretsError

MODULES = [
    rows_references,
    rows_vault,
    rows_vault_standin,
    rows_vault_settings,
    rows_aws,
    rows_aws_settings,
    rows_fernet,
    rows_yaml,
    rows_files,
    rows_writes,
    rows_env,
    rows_jwt,
]
ROWS = list(walk_rows(MODULES))
# A repeated id would hide a row from -k and from the report.
assert len({row.id for row in ROWS}) == len(ROWS), "two corpus rows share an id"
#: Fixtures that start a server: a row needing one is an integration row.
_SERVERS = {"openbao", "moto_server", "sealed_openbao", "moto_iam"}


def _param(row: Row) -> Any:
    marks: list[Any] = []
    if _SERVERS.intersection(row.needs):
        marks.append(pytest.mark.integration)
    if row.xfail:
        marks.append(pytest.mark.xfail(strict=True, reason=row.xfail))
    return pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", [_param(row) for row in ROWS])
def test_corpus(
    row: Row,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A hostile input gets our error (or the API's bare status) naming what is wrong, in time.

    The canary planted in the input is in no message, repr, chain or log line, and nothing is
    left half-written.
    """
    servers = {name: request.getfixturevalue(name) for name in row.needs}  # started untimed
    ctx = Ctx(
        canary="canary-" + os.urandom(12).hex(),
        tmp=tmp_path / "row",
        monkeypatch=monkeypatch,
        servers=servers,
    )
    ctx.tmp.mkdir()
    ctx.name(*row.named)
    caplog.set_level(logging.DEBUG)
    # Every logger at DEBUG, also those a library set higher (caplog restores them afterwards).
    for name in (
        "yosai_secrets",
        "botocore",
        "urllib3",
        "werkzeug",
        *logging.root.manager.loggerDict,
    ):
        caplog.set_level(logging.DEBUG, logger=name)
    try:
        if row.setup is not None:
            row.setup(ctx)
        caplog.clear()  # what the setup's own clients logged is not the library's
        before = tree(ctx.tmp)
        started = time.monotonic()
        texts = _outcome(row, ctx)
        elapsed = time.monotonic() - started
        after = tree(ctx.tmp)
    finally:
        ctx.close()
    assert elapsed < row.deadline_seconds, f"took {elapsed:.2f} s"
    _assert_nothing_shows(ctx, caplog, texts)
    assert not [p for p in after if p.endswith(".yosai-tmp")], "a temporary file is left"
    assert after == before, "the row's directory changed"


def _assert_nothing_shows(ctx: Ctx, caplog: pytest.LogCaptureFixture, texts: list[str]) -> None:
    """Neither the canary nor anything planted is in a log record or in what the caller got."""
    logged = "\n".join(
        [caplog.text]
        + [str(r.__dict__) for r in caplog.records]
        + [r.exc_text or "" for r in caplog.records]
    )
    for planted in [ctx.canary, *ctx.planted]:
        assert planted not in logged, f"{planted[:40]!r} is in a log line"
        for text in texts:
            assert planted not in text, f"{planted[:40]!r} is in what the caller sees"


def _outcome(row: Row, ctx: Ctx) -> list[str]:
    """Run the act; check the error type or status and the names; return what a caller sees."""
    if row.expect == ACCEPTED:
        row.act(ctx)
        return []
    if isinstance(row.expect, int):
        response = row.act(ctx)
        assert isinstance(response, Response)
        assert response.status == row.expect, response.text[:300]
        return [response.text]
    with pytest.raises(BaseException) as info:
        row.act(ctx)
    error = info.value
    assert isinstance(row.expect, type)
    assert isinstance(error, row.expect), f"{type(error).__name__}: {str(error)[:500]}"
    assert isinstance(error, YosaiSecretsError)
    message = str(error)
    assert ctx.names, "an error row must say what its message names"
    for name in ctx.names:
        assert name in message, f"{name!r} is not named in: {message[:500]}"
    return [message, repr(error), chain_text(error)]
