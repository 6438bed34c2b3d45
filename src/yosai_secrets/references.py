"""Parse and print secret references.

A reference names one secret in one source::

    secret:DB_PASSWORD                the key DB_PASSWORD of the default backend (SECRET_BACKEND)
    vault:secret/data/db#password     a field of a Vault/OpenBao path
    aws-secrets:prod/db_password      an AWS Secrets Manager secret (``#key`` picks a JSON key)
    env:DB_PASSWORD                   an environment variable (or its _FILE / Docker secret)
    file:/run/secrets/db_password     a file's content

``secret:NAME`` is backend-neutral: it reads exactly what ``get_secret("NAME")`` reads (with
``env``, the variable or Docker secret ``NAME``; with ``vault``, the field ``NAME`` of
``VAULT_SECRETS_PATH``; with ``aws``, the secret ``SECRET_NAME_PREFIX`` + ``NAME``), so one
configuration file serves every backend. A string without a scheme is a plain key
(``DB_PASSWORD``), read from the default backend too; it may still carry ``#field``.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from .errors import InvalidReferenceError

__all__ = [
    "BACKEND_OF_SCHEME",
    "DEFAULT_SCHEME",
    "Reference",
    "is_reference",
    "parse_reference",
    "reads_default_backend",
]

#: The scheme of a backend-neutral reference: ``secret:NAME`` reads NAME from the default backend.
DEFAULT_SCHEME: Final = "secret"

# Scheme as written in configuration -> backend name in the registry; None: the default backend.
BACKEND_OF_SCHEME: Final[dict[str, str | None]] = {
    DEFAULT_SCHEME: None,
    "vault": "vault",
    "aws-secrets": "aws",
    "env": "env",
    "file": "file",
}


class Reference(NamedTuple):
    """One parsed reference: the scheme (``None`` for a plain key), the name and the field.

    Immutable, compared by value; a named tuple (no ``dataclasses`` import at start-up).
    """

    scheme: str | None
    name: str
    field: str | None = None

    @property
    def backend(self) -> str | None:
        """The backend name this reference is read from, or ``None`` for the default one."""
        return BACKEND_OF_SCHEME[self.scheme] if self.scheme is not None else None

    def __str__(self) -> str:
        text = f"{self.scheme}:{self.name}" if self.scheme else self.name
        return f"{text}#{self.field}" if self.field is not None else text


def is_reference(text: object) -> bool:
    """Tell whether ``text`` is a string that starts with a known reference scheme."""
    if not isinstance(text, str):
        return False
    scheme, sep, _ = text.partition(":")
    return bool(sep) and scheme in BACKEND_OF_SCHEME


def reads_default_backend(text: object) -> bool:
    """Tell whether ``text`` is a ``secret:NAME`` reference (read from the default backend)."""
    return isinstance(text, str) and text.partition(":")[0] == DEFAULT_SCHEME and ":" in text


def parse_reference(text: str) -> Reference:
    """Parse ``text`` into a :class:`Reference`.

    Raises:
        InvalidReferenceError: the name or the field is empty, or the text has surrounding space.
    """
    if not isinstance(text, str) or not text:
        raise InvalidReferenceError("a secret reference must be a non-empty string")
    if text != text.strip():
        raise InvalidReferenceError(
            f"secret reference {text.strip()!r} has leading or trailing whitespace; remove it"
        )
    scheme: str | None = None
    rest = text
    head, sep, tail = text.partition(":")
    if sep and head in BACKEND_OF_SCHEME:
        scheme, rest = head, tail
    # file: paths may legitimately contain '#'; only split a field off for the other schemes.
    if scheme == "file":
        name, field = rest, None
    else:
        name, hash_sep, field_text = rest.partition("#")
        field = field_text if hash_sep else None
        if hash_sep and not field_text:
            raise InvalidReferenceError(
                f"secret reference {text!r} ends with '#' but names no field; "
                "write NAME#FIELD or drop the '#'"
            )
    if not name:
        raise InvalidReferenceError(
            f"secret reference {text!r} names no secret; expected e.g. 'secret:DB_PASSWORD', "
            "'vault:secret/data/db#password' or 'aws-secrets:prod/db_password'"
        )
    return Reference(scheme, name, field)
