"""Well-known credential shapes: what a secret looks like when nobody told us its value.

Each shape is one regular expression over bytes, most of them anchored on a literal prefix
(``-----BEGIN``, ``AKIA``, ``hvs.``, ``eyJ``) that the engine finds with a fast substring search,
plus a check in Python on the few candidates:

- ``private-key``: a PEM (or OpenSSH, PGP) private key block header;
- ``aws-access-key``: an AWS access key id (``AKIA``/``ASIA``/``ABIA``/``ACCA`` and 16 more);
- ``vault-token``: a Vault or OpenBao token (``hvs.``/``hvb.``/``hvr.``, or the older
  ``s.``/``b.``/``r.`` with 24 characters of mixed case and digits);
- ``fernet-key``: 44 URL-safe base64 characters that decode to exactly 32 bytes;
- ``jwt``: a signed JSON Web Token (three base64url parts, the first two JSON objects);
- ``high-entropy-assignment``: ``password = ...``, ``secret: ...``, ``api_key=...`` whose value
  is random-looking (Shannon entropy near that of random text of its length and alphabet).

What is left out on purpose, to keep false positives near zero on an ordinary repository: AWS's
documented example key (``...EXAMPLE``), values that are placeholders, variable references, code
(an attribute path, a call, an environment variable's name) or words rather than random text. A
line carrying ``pragma: allowlist secret`` (detect-secrets' marker) or ``yosai-secrets: allow`` is
not reported for a shape; it is still reported for a configured secret's value.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Final

__all__ = ["ALLOW_MARKERS", "SHAPES", "find_shapes", "shannon_entropy"]

#: Markers that silence shape findings on their line.
ALLOW_MARKERS: Final = (b"pragma: allowlist secret", b"yosai-secrets: allow")

# Each expression starts with a literal (or a small set of characters), so that the engine skips
# to candidates at C speed; what must not come before a match is checked in Python, on the few.
# A header followed by a body (after optional "Proc-Type: ..." lines), possibly JSON-escaped: code
# that only names the header (a parser, a test building one) is not a key.
_PRIVATE_KEY: Final = re.compile(
    rb"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
    rb"(?:\r?\n|\\(?:r\\)?n)(?:[A-Za-z-]+: [^\n]*?(?:\r?\n|\\n)|\r?\n|\\n)*[A-Za-z0-9+/=]{40}"
)
_AWS_KEY_ID: Final = re.compile(rb"A(?:KIA|SIA|BIA|CCA)[A-Z2-7]{16}(?![A-Z0-9])")
_VAULT_TOKEN: Final = re.compile(rb"hv[sbr]\.[A-Za-z0-9_-]{24,}(?![\w.])")
_VAULT_LEGACY: Final = re.compile(rb"\.[A-Za-z0-9]{24}(?![\w.])")  # after s, b or r
_FERNET_KEY: Final = re.compile(rb"=(?<=[A-Za-z0-9_-]{43}=)(?![A-Za-z0-9_=+/-])")
_JWT: Final = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
# Matched in the lower-cased text (a case-insensitive alternation costs three times as much); the
# keywords are spelled as a trie, one branch per first letter, for the same reason.
_ASSIGNMENT: Final = re.compile(
    rb"(?:p(?:ass(?:word|wd|phrase)?|wd|rivate[_-]?key)|secret|token|a(?:pi|ccess)[_-]?key"
    rb"|c(?:lient[_-]?secret|redentials?))[\w.-]{0,30}[\"']?[ \t]{0,3}(?::=|=>|[:=])[ \t]{0,3}"
    rb"[\"']?(?P<value>[^\s\"'`,;()\[\]{}<>]{12,256})"
)
_WORD_CHARS: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_BASE64_CHARS: Final = _WORD_CHARS | frozenset(b"-+/")

# The last character of the base64 of 32 bytes carries 2 bits of data and 4 zero bits.
_FERNET_LAST: Final = frozenset(b"AEIMQUYcgkosw048")
_PLACEHOLDER_WORDS: Final = (
    b"example",
    b"replace",
    b"changeme",
    b"change-me",
    b"placeholder",
    b"dummy",
    b"sample",
    b"your",
    b"xxxx",
    b"****",
    b"redacted",
    b"test",
    b"fake",
)
_CODE: Final = re.compile(
    rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+"  # an attribute path
    rb"|[A-Z0-9_]+"  # an environment variable's name
    rb"|(?:[A-Z][a-z]+)+|[a-z]+(?:[A-Z][a-z]+)+"  # a CamelCase or camelCase name
    rb"|.*(?:\$\{|\$\(|%\(|\{\{|\\|::|\.\.\.).*"  # a reference, format, template, escape, elision
    rb"|[./~]?(?:[\w.-]+/)+[\w.-]*"  # a path
    rb"|[a-z]+(?:[-_][a-z]+)+"  # words joined by dashes or underscores
)

# A key that names a hash of a secret (detect-secrets' baseline), not a secret.
_HASH_NAME: Final = re.compile(rb"(?i)hash|digest|sha\d|checksum|fingerprint")
# A reference rather than a value: vault:secret/..., secret:NAME, env:NAME, arn:aws:...
_SCHEME: Final = re.compile(rb"[a-z][a-z0-9+-]*:")
# "=" inside a value: another assignment (a command line, a query string), not a token.
_INNER_EQUALS: Final = re.compile(rb"=[^=]")
_HEX: Final = re.compile(rb"[0-9a-f]+|[0-9A-F]+")
_CLASSES: Final = (re.compile(rb"[a-z]"), re.compile(rb"[A-Z]"), re.compile(rb"[0-9]"))
_SEPARATORS: Final = re.compile(rb"[-_.]+")
_WORD: Final = re.compile(rb"[a-z]+|[A-Z]+|[0-9]+|[A-Z][a-z]+")


def shannon_entropy(text: bytes) -> float:
    """Bits per character of ``text``'s own character frequencies."""
    if not text:
        return 0.0
    total = len(text)
    return -sum(n / total * math.log2(n / total) for n in Counter(text).values())


def _random_looking(value: bytes) -> bool:
    """Whether ``value`` looks like random text rather than words, a name or a hash's label.

    Hex needs 32 digits or more. Anything else needs 16 characters of at least two of lower
    case, upper case and digits, and must not be words joined by ``-``, ``_`` or ``.``
    (``bench-value-1234``, ``first-db-password``, ``SECRET_KEY_2``). Both need about the entropy
    of random text of their length and alphabet: at least 0.7 of the most their length allows
    (random tokens measured here never fell below 0.74 in 20,000 draws).
    """
    if _HEX.fullmatch(value):
        return len(value) >= 32 and shannon_entropy(value) >= 0.7 * 4
    classes = sum(c.search(value) is not None for c in _CLASSES)
    if len(value) < 16 or classes < 2:
        return False
    segments = [s for s in _SEPARATORS.split(value) if s]
    if len(segments) > 1 and all(_WORD.fullmatch(s) for s in segments):
        return False
    return shannon_entropy(value) >= 0.7 * math.log2(min(len(value), 64))


def _placeholder(value: bytes) -> bool:
    lowered = value.lower()
    return any(word in lowered for word in _PLACEHOLDER_WORDS)


_Span = tuple[int, int] | None


def _after(data: bytes, start: int, forbidden: frozenset[int]) -> bool:
    """Whether ``data[start]`` is not preceded by one of ``forbidden`` (a match starts a word)."""
    return start == 0 or data[start - 1] not in forbidden


def _aws(match: re.Match[bytes]) -> _Span:
    if match[0].endswith(b"EXAMPLE") or not _after(match.string, match.start(), _WORD_CHARS):
        return None
    return match.span()


def _vault(match: re.Match[bytes]) -> _Span:
    data, start = match.string, match.start()
    if not _after(data, start, _WORD_CHARS | {ord(".")}):
        return None
    return match.span() if _random_looking(match[0][4:]) and not _placeholder(match[0]) else None


def _vault_legacy(match: re.Match[bytes]) -> _Span:
    data, start = match.string, match.start() - 1
    if start < 0 or data[start] not in b"sbr" or not _after(data, start, _WORD_CHARS | {46}):
        return None
    return (start, match.end()) if _random_looking(match[0][1:]) else None


def _fernet(match: re.Match[bytes]) -> _Span:
    data, start = match.string, match.end() - 44
    key = data[start : match.end()]
    if not _after(data, start, _BASE64_CHARS) or key[42] not in _FERNET_LAST:
        return None
    return (start, match.end()) if _random_looking(key[:43]) and not _placeholder(key) else None


def _jwt(match: re.Match[bytes]) -> _Span:
    if not _after(match.string, match.start(), _WORD_CHARS | {ord("-")}):
        return None
    header, payload, _signature = match[0].split(b".")
    for part in (header, payload):
        try:
            decoded = json.loads(base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4)))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(decoded, dict):
            return None
    return match.span()


def _assignment(match: re.Match[bytes], data: bytes) -> _Span:
    """``match`` is in the lower-cased text; the value is read from ``data`` itself."""
    value = data[match.start("value") : match.end("value")]
    key = data[max(0, match.start() - 30) : match.start("value")]  # "hashed_" + "secret"
    looks_secret = (
        _HASH_NAME.search(key) is None
        and _SCHEME.match(value) is None
        and _CODE.fullmatch(value) is None
        and not _placeholder(value)
        and not value.startswith((b"$", b"%", b"http://", b"https://"))
        and _INNER_EQUALS.search(value) is None
        and _random_looking(value)
    )
    return match.span() if looks_secret else None


_Check = Callable[[re.Match[bytes]], _Span]

#: Each shape's name, its expression, and the check that gives a candidate's span (or None),
#: most specific first. The generic assignment (:data:`_ASSIGNMENT`) comes after them.
SHAPES: Final[tuple[tuple[str, re.Pattern[bytes], _Check], ...]] = (
    ("private-key", _PRIVATE_KEY, lambda match: match.span()),
    ("aws-access-key", _AWS_KEY_ID, _aws),
    ("vault-token", _VAULT_TOKEN, _vault),
    ("vault-token", _VAULT_LEGACY, _vault_legacy),
    ("fernet-key", _FERNET_KEY, _fernet),
    ("jwt", _JWT, _jwt),
)


def find_shapes(data: bytes) -> Iterator[tuple[int, int, str]]:
    """Yield ``(start, end, shape)`` for each credential shape found in ``data``."""
    for name, pattern, check in SHAPES:
        for match in pattern.finditer(data):
            span = check(match)
            if span is not None:
                yield span[0], span[1], name
    for match in _ASSIGNMENT.finditer(data.lower()):  # bytes.lower() keeps every offset
        span = _assignment(match, data)
        if span is not None:
            yield span[0], span[1], "high-entropy-assignment"
