"""Fernet encryption of secret values, with key rotation (``FERNET_KEY``).

``FERNET_KEY`` holds one key, or several comma-separated: the first encrypts, all decrypt
(``MultiFernet``), so a new key can be put first while values encrypted with the old one still
decrypt. An encrypted value is a Fernet token, optionally written with the ``enc:`` prefix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from .edge import public_edge
from .errors import DecryptionError, MissingDependencyError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

__all__ = ["ENC_PREFIX", "FernetBox", "generate_key", "looks_encrypted"]

ENC_PREFIX: Final = "enc:"
# A Fernet token: version byte 0x80 and a 64-bit timestamp whose top bytes are zero for the next
# few thousand years, so it starts "gAAAAA"; then base64url of at least 73 bytes (100 characters
# with padding).
_TOKEN_RE: Final = re.compile(r"gAAAAA[A-Za-z0-9_\-]{92,}={0,2}")


def looks_encrypted(value: str) -> bool:
    """Tell whether ``value`` is a Fernet token or carries the ``enc:`` prefix."""
    if value.startswith(ENC_PREFIX):
        return True
    return value.startswith("gAAAAA") and _TOKEN_RE.fullmatch(value) is not None


def generate_key() -> str:
    """Return a new random Fernet key (urlsafe base64 of 32 bytes)."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


class FernetBox:
    """Encrypts and decrypts with the keys of ``FERNET_KEY``.

    Raises:
        DecryptionError: at construction, when no key is given or a key is malformed (the message
            says which one by position, never the key).
    """

    @public_edge
    def __init__(self, keys: str, *, purpose: str | None = None) -> None:
        # What needed the key, for the messages: "secret 'SECRET_KEY' is encrypted, but ...".
        needed = f"{purpose} is encrypted, but " if purpose else ""
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise DecryptionError(
                f"{needed}FERNET_KEY is empty; set it to a key from `yosai-secrets generate-key`"
            )
        try:
            from cryptography.fernet import Fernet, MultiFernet
        except ImportError as exc:  # pragma: no cover - cryptography is a core dependency
            raise MissingDependencyError("cryptography", "all", "Fernet decryption") from exc
        fernets = []
        for position, part in enumerate(parts, start=1):
            try:
                fernets.append(Fernet(part.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise DecryptionError(
                    f"{needed}FERNET_KEY key #{position} is not a valid Fernet key (32 bytes, "
                    "urlsafe base64); generate one with `yosai-secrets generate-key`"
                ) from None
        self._fernet: MultiFernet = MultiFernet(fernets)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, purpose: str) -> FernetBox:
        """Build from ``FERNET_KEY``; ``purpose`` names what needs it in the error.

        Raises:
            DecryptionError: ``FERNET_KEY`` is not set or malformed.
        """
        keys = environ.get("FERNET_KEY", "")
        if not keys.strip():
            raise DecryptionError(
                f"{purpose} is encrypted but FERNET_KEY is not set; set FERNET_KEY to the key "
                "it was encrypted with"
            )
        return cls(keys, purpose=purpose)

    def encrypt(self, value: str) -> str:
        """Encrypt ``value`` with the first key and return the token (without ``enc:``)."""
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    @public_edge
    def decrypt(self, token: str, *, name: str) -> str:
        """Decrypt ``token`` (with or without ``enc:``); ``name`` names the secret in errors.

        Raises:
            DecryptionError: no key decrypts it, or the plaintext is not UTF-8.
        """
        plain = self._open(token, f"encrypted value of {name}")
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError(f"decrypted value of {name} is not UTF-8 text") from None

    @public_edge
    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` with the first key (for key rotation).

        Raises:
            DecryptionError: no key in ``FERNET_KEY`` decrypts it.
        """
        from cryptography.fernet import InvalidToken

        raw = _raw(token, "the token to re-encrypt")
        try:
            return self._fernet.rotate(raw).decode("ascii")
        except (InvalidToken, ValueError):
            raise DecryptionError(
                "the token to re-encrypt does not decrypt with any key in FERNET_KEY; check "
                "that FERNET_KEY holds the key it was encrypted with"
            ) from None

    def _open(self, token: str, what: str) -> bytes:
        from cryptography.fernet import InvalidToken

        raw = _raw(token, what)
        try:
            return self._fernet.decrypt(raw)
        except (InvalidToken, ValueError):
            raise DecryptionError(
                f"{what} does not decrypt with any key in FERNET_KEY; "
                "check that FERNET_KEY holds the key it was encrypted with"
            ) from None


def _raw(token: object, what: str) -> bytes:
    """The token's bytes, ``enc:`` and surrounding blanks removed; refused if not ASCII text."""
    if not isinstance(token, str):
        raise DecryptionError(f"{what} is not text (a {type(token).__name__}); expected a token")
    try:
        return token.removeprefix(ENC_PREFIX).strip().encode("ascii")
    except UnicodeEncodeError:
        raise DecryptionError(
            f"{what} does not decrypt with any key in FERNET_KEY: it is not a Fernet token "
            "(a token is ASCII)"
        ) from None
