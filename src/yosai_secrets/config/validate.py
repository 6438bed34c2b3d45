"""Start-up validation: the rules each environment's secrets must meet.

Every rule is checked and every problem returned, so an operator fixes them all in one go. No
message contains a value: a weak key is described by its length or by being a known placeholder.
In production, a secret that still holds the example's placeholder (``replace-me-...``) is not set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from ..environments import REQUIRED_SECRETS, required_secrets
from ..placeholders import is_placeholder
from .keys import SECRET_SETTINGS, dotted

__all__ = [
    "MIN_SECRET_KEY_BYTES",
    "PLACEHOLDERS",
    "SecretState",
    "secret_key_weakness",
    "validate_secrets",
]

MIN_SECRET_KEY_BYTES: Final = 32

#: Values people leave in configuration by mistake (compared without case and punctuation).
PLACEHOLDERS: Final = frozenset(
    {
        "dev",
        "development",
        "changeme",
        "changeit",
        "replaceme",
        "secret",
        "secretkey",
        "mysecretkey",
        "yoursecretkey",
        "supersecret",
        "supersecretkey",
        "password",
        "default",
        "test",
        "testing",
        "example",
        "placeholder",
        "insecure",
        "notsecret",
        "todo",
        "fixme",
        "xxx",
        "none",
        "null",
        "flask",
        "dash",
        "yosai",
        "devsecretkey",
        "djangoinsecure",
    }
)
# Fragments that mark a made-up value even inside a long string ("changeme-changeme-...").
_PLACEHOLDER_FRAGMENTS: Final = (
    "changeme",
    "replaceme",
    "yoursecret",
    "placeholder",
    "insecure",
    "notsecret",
    "example",
)
_GENERATE_HINT: Final = (
    "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
)

Status = Literal["found", "missing", "error"]


@dataclass(frozen=True, slots=True)
class SecretState:
    """What loading found for one of the six secrets (the value is never shown)."""

    name: str
    status: Status
    source: str
    value: str | None = field(default=None, repr=False)
    detail: str | None = None


def secret_key_weakness(value: str) -> str | None:
    """Say why ``value`` is too weak for a production ``SECRET_KEY``, or ``None`` if it is not."""
    normalized = re.sub(r"[^a-z0-9]", "", value.lower())
    if normalized in PLACEHOLDERS or not normalized:
        return "it is a known placeholder value"
    if any(fragment in normalized for fragment in _PLACEHOLDER_FRAGMENTS):
        return "it contains a placeholder word (such as 'changeme')"
    for word in PLACEHOLDERS:
        if len(normalized) % len(word) == 0 and normalized == word * (len(normalized) // len(word)):
            return "it is a placeholder word repeated"
    size = len(value.encode("utf-8"))
    if size < MIN_SECRET_KEY_BYTES:
        return f"it is {size} bytes long; at least {MIN_SECRET_KEY_BYTES} are needed"
    return None


def validate_secrets(
    env: str, states: Mapping[str, SecretState], config_file: str | None = None
) -> list[str]:
    """Return every problem with the six secrets in ``env`` (empty when all is well).

    Secrets whose status is ``error`` were already reported by the resolution step and are not
    reported again.
    """
    where = config_file or f"{env}.yaml"
    problems: list[str] = []
    required = required_secrets(env)
    for name in REQUIRED_SECRETS:
        state = states.get(name)
        if name not in required or (state is not None and state.status == "error"):
            continue
        if (
            state is None
            or state.status == "missing"
            or (state.status == "found" and not state.value)
        ):
            looked = f" (looked at: {state.detail})" if state and state.detail else ""
            problems.append(
                f"{name} is required in {env} but was not found{looked}; set the environment "
                f"variable {name}, or set {dotted(SECRET_SETTINGS[name])} in {where} "
                f"(e.g. to secret:{name}, a vault: or an aws-secrets: reference)"
            )
        elif env == "production" and is_placeholder(state.value):
            problems.append(
                f"{name} is required in {env} but is not set: {state.source} holds the example's "
                "placeholder; replace it with the real value"
            )
    key = states.get("SECRET_KEY")
    if (
        env == "production"
        and key is not None
        and key.status == "found"
        and key.value
        and not is_placeholder(key.value)
    ):
        weakness = secret_key_weakness(key.value)
        if weakness is not None:
            problems.append(
                f"SECRET_KEY (from {key.source}) is too weak for production: {weakness}; "
                + _GENERATE_HINT
            )
    return problems
