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

import re
import urllib.parse
from typing import Final, NamedTuple

from .errors import InvalidReferenceError

__all__ = [
    "BACKEND_OF_SCHEME",
    "DEFAULT_SCHEME",
    "MAX_NAME_CHARS",
    "Reference",
    "check_name",
    "is_reference",
    "parse_reference",
    "reads_default_backend",
    "shown",
    "unknown_scheme",
]

#: The longest name a reference may give: far beyond any real path, far below a denial of service.
MAX_NAME_CHARS: Final = 4096
#: AWS Secrets Manager: names of at most 512 of these characters; ARNs add ``:``.
_AWS_NAME: Final = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_AWS_ARN: Final = re.compile(r"arn:[A-Za-z0-9/_+=.@:-]{1,2044}")
#: What looks like a scheme (``vualt:``, ``https:``): letters first, as RFC 3986 has it.
_SCHEME_LIKE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,30}:")
#: Percent-decodings tried: a path encoded more often than this is refused outright.
_MAX_DECODINGS: Final = 4

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
            f"secret reference {shown(text.strip())} has leading or trailing whitespace; remove it"
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
                f"secret reference {shown(text)} ends with '#' but names no field; "
                "write NAME#FIELD or drop the '#'"
            )
    if not name:
        raise InvalidReferenceError(
            f"secret reference {shown(text)} names no secret; expected e.g. "
            "'secret:DB_PASSWORD', 'vault:secret/data/db#password' or "
            "'aws-secrets:prod/db_password'"
        )
    check_name(BACKEND_OF_SCHEME[scheme] if scheme else None, name, text)
    return Reference(scheme, name, field)


def shown(text: str) -> str:
    """``text`` quoted for a message: at most 120 characters, control characters escaped."""
    return repr(text if len(text) <= 120 else text[:117] + "...")


def unknown_scheme(text: str) -> str | None:
    """The scheme ``text`` starts with when it looks like one we do not know (``vualt:``)."""
    found = _SCHEME_LIKE.match(text)
    if found is None:
        return None
    scheme = found.group()[:-1]
    return None if scheme in BACKEND_OF_SCHEME or scheme == "arn" else scheme


def check_name(backend: str | None, name: str, reference: str) -> None:
    """Refuse a name no backend may be asked for, whoever builds the request.

    Every spelling is checked: as written, each percent-decoding of it (up to four deep: a
    server decodes once, a proxy in front of it may decode again) and each one's NFKC form
    (``．．`` is ``..`` to whoever normalises). Refused: control and invisible characters
    (NUL, CR/LF, zero-width, direction overrides), more than :data:`MAX_NAME_CHARS` characters;
    for Vault, ``.``, ``..`` and empty segments, encoded separators (Vault resolves dot
    segments: ``secret/data/%2e%2e/%2e%2e/sys/mounts`` would leave the mount) and a query
    (``?version=1`` would read another version); for files, ``..``
    segments; for AWS, what a secret name or ARN cannot hold.

    Raises:
        InvalidReferenceError: naming ``reference`` (shortened) and what is wrong.
    """
    problem = _name_problem(backend, name)
    if problem is not None:
        raise InvalidReferenceError(f"secret reference {shown(reference)} {problem}")


def _name_problem(backend: str | None, name: str) -> str | None:
    if len(name) > MAX_NAME_CHARS:
        return f"is longer than {MAX_NAME_CHARS} characters; no secret has such a name"
    if backend is None and name.isascii() and name.isprintable():
        return None  # the common case (DB_PASSWORD): nothing hidden, nothing to decode
    forms = _spellings(name)
    if forms is None:
        return "is percent-encoded again and again; write the path as it is"
    if any(_has_control(form) for form in forms):
        return (
            "holds a control or invisible character (NUL, a line break, a zero-width space, a "
            "direction override), perhaps percent-encoded; write it in plain text"
        )
    if backend == "vault":
        return _vault_problem(name)
    if backend == "file" and any(".." in form.split("/") for form in forms):
        return "has a '..' segment; name the file by its path without one"
    if backend == "aws" and not (_AWS_NAME.fullmatch(name) or _AWS_ARN.fullmatch(name)):
        return (
            "is not an AWS secret name (at most 512 of the letters, digits and /_+=.@-) nor an ARN"
        )
    return None


def _vault_problem(name: str) -> str | None:
    if any("?" in form for form in _spellings(name) or [name]):
        # secret/data/db?version=1 would read another version, ?list=true a listing.
        return "holds a '?' (a query, perhaps percent-encoded); a reference names a path only"
    plain = "%" not in name and name.isascii()
    for segment in name.split("/"):
        for form in [segment] if plain else _spellings(segment) or [segment]:
            if form.strip() in ("", ".", "..") or "/" in form or "\\" in form:
                return (
                    "has an empty, '.' or '..' path segment or an encoded separator (perhaps "
                    "percent-encoded, or in look-alike characters); write the path without them"
                )
    return None


def _spellings(text: str) -> list[str] | None:
    """``text``, its successive percent-decodings and their NFKC forms; None past the limit."""
    if "%" not in text and text.isascii():
        return [text]  # the common case: nothing to decode, and ASCII is its own NFKC form
    forms = [text]
    current = text
    for _ in range(_MAX_DECODINGS):
        decoded = urllib.parse.unquote(current)
        if decoded == current:
            break
        forms.append(decoded)
        current = decoded
    else:
        if urllib.parse.unquote(current) != current:
            return None
    if not all(f.isascii() for f in forms):  # NFKC leaves ASCII as it is
        import unicodedata  # only for non-ASCII names: start-up need not load it

        forms += [n for n in (unicodedata.normalize("NFKC", f) for f in forms) if n not in forms]
    return forms


def _has_control(text: str) -> bool:
    # Cc: C0/C1 controls (NUL, CR, LF, tab); Cf: format characters (zero-width, bidi overrides).
    if text.isprintable():
        return False
    import unicodedata  # only for text that is not printable (rare): start-up need not load it

    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)
