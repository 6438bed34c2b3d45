"""Property: no ConfigurationError message or log line ever contains a resolved value."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yosai_secrets.config import SecureConfigManager
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.manager import SecretManager
from yosai_secrets.testing import MemoryBackend

# Every generated value carries this character, which no fixed text of ours (messages, paths, key
# names) contains: so no value can be found inside a message by coincidence (Hypothesis once drew
# "configuratio"), and finding the marker at all means a value, or a piece of one, leaked.
MARKER = "\N{CURRENCY SIGN}"

# Values of any printable characters, the marker first, 12 to 48 characters in all.
VALUES = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=11,
    max_size=47,
).map(lambda text: MARKER + text)

CONFIG = """\
security: {secret_key: 'vault:secret/data/app#secret_key'}
database: {password: 'vault:secret/data/db#pw'}
auth0:
  client_id: 'vault:secret/data/auth0#client_id'
  client_secret: 'vault:secret/data/plain#client_secret'
  domain: 'aws-secrets:prod/domain'
  audience: 'env:AUDIENCE_NOT_SET'
mail: {password: 'vault:secret/data/mail#password', user: 'vault:secret/data/mail#user'}
"""


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Capture every log line the root logger emits, formatted, exceptions included."""
    lines: list[str] = []

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = _Handler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret_key=VALUES,
    db_password=VALUES,
    client_id=VALUES,
    plain=VALUES,
    mail_password=VALUES,
    mail_user=VALUES,
)
def test_no_value_in_errors_or_logs(
    secret_key: str,
    db_password: str,
    client_id: str,
    plain: str,
    mail_password: str,
    mail_user: str,
) -> None:
    """Whatever the values, the error lists problems by key and source and never shows one."""
    values = [secret_key, db_password, client_id, plain, mail_password, mail_user]
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "production.yaml").write_text(CONFIG, encoding="utf-8")
        env = {"SECRETS_DIR": str(Path(folder, "run-secrets"))}
        manager = SecretManager("env", environ=env)
        manager.add_backend(
            MemoryBackend(
                {
                    "secret/data/app": {"secret_key": secret_key},
                    # The reference asks for field 'pw': the message may list field names only.
                    "secret/data/db": {"password": db_password},
                    "secret/data/auth0": {"client_id": client_id},
                    # A plain (non-JSON) value where a field is asked for.
                    "secret/data/plain": plain,
                    "secret/data/mail": json.dumps({"password": mail_password, "user": mail_user}),
                },
                name="vault",
            )
        )
        failing = MemoryBackend(name="aws")
        failing.failing = True
        manager.add_backend(failing)
        with captured_logs() as lines:
            try:
                SecureConfigManager(folder, env="production", environ=env, manager=manager)
            except ConfigurationError as exc:
                message = str(exc)
            else:
                raise AssertionError("a broken production configuration was accepted")
            logging.getLogger("yosai_secrets.test").error("start-up failed: %s", message)
    assert "auth0.client_secret (AUTH0_CLIENT_SECRET)" in message
    assert "database.password (DB_PASSWORD)" in message
    assert MARKER not in message
    assert all(MARKER not in line for line in lines)
    for value in values:
        assert value not in message
        assert all(value not in line for line in lines)
        assert value not in repr(message)
