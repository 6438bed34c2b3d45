"""Start-up validation: the rules each environment's secrets must meet.

Every rule is checked and every problem returned, so an operator fixes them all in one go. No
message contains a value: a weak key is described by its length, its number of distinct
characters, its estimated entropy or by being a known placeholder. In production, a secret that
still holds the example's placeholder (``replace-me-...``) is not set, and every
``SECRET_KEY_FALLBACKS`` key must be as strong as ``SECRET_KEY`` (a session cookie signed with any
of them is accepted).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from ..environments import REQUIRED_SECRETS, required_secrets
from ..errors import ConfigurationError
from ..fallbacks import FALLBACKS_KEY, parse_fallbacks
from ..placeholders import is_placeholder
from ..references import BACKEND_OF_SCHEME
from .keys import SECRET_SETTINGS, dotted

__all__ = [
    "MAX_RUN_SHARE",
    "MIN_DISTINCT_CHARACTERS",
    "MIN_ENTROPY_BITS",
    "MIN_RUN_LENGTH",
    "MIN_SECRET_KEY_BYTES",
    "PLACEHOLDERS",
    "SecretState",
    "estimated_entropy_bits",
    "fallback_key_problems",
    "misspelt_scheme",
    "secret_key_weakness",
    "validate_secrets",
]

#: A production ``SECRET_KEY`` is at least this many bytes long (UTF-8) ...
MIN_SECRET_KEY_BYTES: Final = 32
#: ... holds at least this many different characters ...
MIN_DISTINCT_CHARACTERS: Final = 8
#: ... is not one unit written again and again (``abab...``, ``0123 0123 ...``, any length), and
#: its runs, a character repeated or a step through the alphabet or the digits (``aaaa``,
#: ``1234``, ``fedc``) of at least this many characters ...
MIN_RUN_LENGTH: Final = 3
#: ... make up at most this share of it; ...
MAX_RUN_SHARE: Final = 0.5
#: ... and its estimated entropy (:func:`estimated_entropy_bits`) is at least this many bits.
MIN_ENTROPY_BITS: Final = 112

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

# `scheme:rest`, where rest names a path, a field or a NAME (what a reference holds).
_REFERENCE_LIKE: Final = re.compile(r"([A-Za-z][A-Za-z-]{2,30}):(?=\S*[/#]|[A-Z][A-Z0-9_]*$)")


@dataclass(frozen=True, slots=True)
class SecretState:
    """What loading found for one of the six secrets (the value is never shown)."""

    name: str
    status: Status
    source: str
    value: str | None = field(default=None, repr=False)
    detail: str | None = None


def secret_key_weakness(value: str) -> str | None:
    """Say why ``value`` is too weak for a production ``SECRET_KEY``, or ``None`` if it is not.

    The rule, in order: not a known placeholder (nor one repeated, nor containing a placeholder
    word), at least :data:`MIN_SECRET_KEY_BYTES` bytes, at least :data:`MIN_DISTINCT_CHARACTERS`
    distinct characters, not a shorter unit repeated, runs (:data:`MIN_RUN_LENGTH`) covering at
    most :data:`MAX_RUN_SHARE` of it, and :data:`MIN_ENTROPY_BITS` bits of estimated entropy. The
    reason names counts and sizes only, never a character of the key.
    """
    placeholder = _placeholder_weakness(value)
    if placeholder is not None:
        return placeholder
    size = len(value.encode("utf-8"))
    if size < MIN_SECRET_KEY_BYTES:
        return f"it is {size} bytes long; at least {MIN_SECRET_KEY_BYTES} are needed"
    distinct = len(set(value))
    if distinct < MIN_DISTINCT_CHARACTERS:
        return (
            f"it has {distinct} distinct characters; at least {MIN_DISTINCT_CHARACTERS} are needed"
        )
    period = _shortest_period(value)
    if period * 2 <= len(value):
        return f"it is a pattern of {period} characters repeated"
    share = _run_share(value)
    if share > MAX_RUN_SHARE:
        return (
            f"{share:.0%} of it is runs of repeated or consecutive characters (such as aaa or "
            f"123); at most {MAX_RUN_SHARE:.0%} may be"
        )
    bits = estimated_entropy_bits(value)
    if bits < MIN_ENTROPY_BITS:
        return (
            f"its estimated entropy is {math.floor(bits)} bits; at least {MIN_ENTROPY_BITS} "
            "are needed"
        )
    return None


def _placeholder_weakness(value: str) -> str | None:
    normalized = re.sub(r"[^a-z0-9]", "", value.lower())
    if normalized in PLACEHOLDERS or not normalized:
        return "it is a known placeholder value"
    if any(fragment in normalized for fragment in _PLACEHOLDER_FRAGMENTS):
        return "it contains a placeholder word (such as 'changeme')"
    for word in PLACEHOLDERS:
        if len(normalized) % len(word) == 0 and normalized == word * (len(normalized) // len(word)):
            return "it is a placeholder word repeated"
    return None


def _shortest_period(value: str) -> int:
    """The smallest ``p`` such that ``value[i] == value[i + p]`` everywhere (``len`` if none)."""
    # The prefix function of Knuth-Morris-Pratt: the longest proper border gives the period.
    border = [0] * len(value)
    for i in range(1, len(value)):
        k = border[i - 1]
        while k and value[i] != value[k]:
            k = border[k - 1]
        border[i] = k + 1 if value[i] == value[k] else 0
    return len(value) - (border[-1] if value else 0)


def _run_at(value: str, start: int) -> int:
    """The length of the run starting at ``start``: one step (-1, 0 or +1) between neighbours."""
    if start + 1 >= len(value):
        return len(value) - start
    step = ord(value[start + 1]) - ord(value[start])
    if step not in (-1, 0, 1):
        return 1
    end = start + 1
    while end + 1 < len(value) and ord(value[end + 1]) - ord(value[end]) == step:
        end += 1
    return end - start + 1


def _run_share(value: str) -> float:
    """The share of ``value`` inside runs of at least :data:`MIN_RUN_LENGTH` characters."""
    covered, start = 0, 0
    while start < len(value):
        run = _run_at(value, start)
        if run >= MIN_RUN_LENGTH:
            covered += run
            start += run
        else:
            start += 1
    return covered / len(value) if value else 1.0


def _pool_size(value: str) -> int:
    """How many characters an attacker must try per position, from the classes ``value`` uses."""
    pool = 0
    for found, size in (
        (any(c.islower() and c.isascii() for c in value), 26),
        (any(c.isupper() and c.isascii() for c in value), 26),
        (any(c.isdigit() and c.isascii() for c in value), 10),
        (any(c.isascii() and not c.isalnum() for c in value), 33),
        (any(not c.isascii() for c in value), 100),
    ):
        pool += size if found else 0
    return max(pool, 2)


def _earlier(value: str, start: int, size: int) -> int:
    """Where the ``size`` characters at ``start`` also start earlier (nearest first), or -1."""
    # Overlapping matches count: "abab" + "ab" repeats from two characters back.
    return value.rfind(value[start : start + size], 0, start + size - 1)


def _repeat_at(value: str, start: int) -> tuple[int, int]:
    """The longest text from ``start`` that also starts earlier: (length, distance back)."""
    longest = len(value) - start
    if longest < MIN_RUN_LENGTH or _earlier(value, start, MIN_RUN_LENGTH) < 0:
        return 0, 0
    # A repeat of n characters contains one of n - 1: search the longest by bisection.
    low, high = MIN_RUN_LENGTH, longest
    while low < high:
        middle = (low + high + 1) // 2
        if _earlier(value, start, middle) >= 0:
            low = middle
        else:
            high = middle - 1
    return low, start - _earlier(value, start, low)


def estimated_entropy_bits(value: str) -> float:
    """A conservative estimate of the bits an attacker must guess to find ``value``.

    Each character costs ``log2`` of the pool of its character classes (26 lower case letters,
    26 upper case, 10 digits, 33 other ASCII, 100 beyond ASCII), except where the text repeats
    what came before (the cost of saying where and how long) or is a run (``aaaa``, ``1234``:
    the cost of its first character and its length). Random keys score close to their real
    entropy; repetitions and sequences score low whatever their length.
    """
    literal = math.log2(_pool_size(value))
    bits, start = 0.0, 0
    while start < len(value):
        run = _run_at(value, start)
        repeat, distance = _repeat_at(value, start)
        if run >= MIN_RUN_LENGTH and run >= repeat:
            bits += literal + math.log2(run) + 1
            start += run
        elif repeat >= MIN_RUN_LENGTH:
            bits += math.log2(distance + 1) + math.log2(repeat)
            start += repeat
        else:
            bits += literal
            start += 1
    return bits


def fallback_key_problems(raw: object, source: str, *, key: str | None = None) -> list[str]:
    """Every problem with ``SECRET_KEY_FALLBACKS`` (``raw``, read from ``source``) in production.

    Each key is held to the ``SECRET_KEY`` rule (:func:`secret_key_weakness`); a key equal to
    ``key`` (the current ``SECRET_KEY``, dropped by the app) is not checked twice. Messages name
    the position (1 is the first key), never a key.
    """
    try:
        keys = parse_fallbacks(raw)
    except ConfigurationError as exc:
        return [f"{FALLBACKS_KEY} (from {source}) cannot be read: {exc}"]
    problems = []
    for position, fallback in enumerate(keys, start=1):
        if key is not None and fallback == key:
            continue
        weakness = (
            "it is the example's placeholder"
            if is_placeholder(fallback)
            else secret_key_weakness(fallback)
        )
        if weakness is not None:
            problems.append(
                f"{FALLBACKS_KEY} key {position} of {len(keys)} (from {source}) is too weak for "
                f"production: {weakness}; a session signed with it would be accepted. Remove it "
                f"from {FALLBACKS_KEY} (sessions signed with it end) or rotate SECRET_KEY"
            )
    return problems


def validate_secrets(
    env: str, states: Mapping[str, SecretState], config_file: str | None = None
) -> list[str]:
    """Return every problem with the six secrets in ``env`` (empty when all is well).

    In production, the ``SECRET_KEY_FALLBACKS`` state (when ``states`` has one) is checked too:
    each of its keys must be as strong as ``SECRET_KEY``. Secrets whose status is ``error`` were
    already reported by the resolution step and are not reported again.
    """
    problems = _presence_problems(env, states, config_file or f"{env}.yaml")
    if env != "production":
        return problems
    key, current = states.get("SECRET_KEY"), None
    if key is not None and key.status == "found" and key.value:
        current = key.value
        weakness = None if is_placeholder(current) else secret_key_weakness(current)
        if weakness is not None:
            problems.append(
                f"SECRET_KEY (from {key.source}) is too weak for production: {weakness}; "
                + _GENERATE_HINT
            )
    fallbacks = states.get(FALLBACKS_KEY)
    if fallbacks is not None and fallbacks.status == "found" and fallbacks.value:
        problems.extend(fallback_key_problems(fallbacks.value, fallbacks.source, key=current))
    return problems


def _presence_problems(env: str, states: Mapping[str, SecretState], where: str) -> list[str]:
    """Each secret ``env`` requires that is missing (or, in production, a placeholder)."""
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
        elif state.value is not None and not state.value.strip():
            problems.append(
                f"{name} is required in {env} but is not set: {state.source} holds only blanks "
                "(spaces, tabs or newlines); set it to the real value"
            )
        elif env == "production" and is_placeholder(state.value):
            problems.append(
                f"{name} is required in {env} but is not set: {state.source} holds the example's "
                "placeholder; replace it with the real value"
            )
    return problems


def misspelt_scheme(text: str) -> str | None:
    """The known scheme ``text`` seems to misspell (``vualt:secret/db#pw`` -> ``vault``), or None.

    Only a text shaped like a reference (a word, a colon, then a path, a ``#field`` or
    a ``NAME``) whose word is one edit (two for ``aws-secrets``) from a scheme of at least four
    letters counts: such a value would otherwise be used as the secret itself. ``env`` is too
    short to tell from a word.
    """
    found = _REFERENCE_LIKE.match(text)
    if found is None or found.group(1) in BACKEND_OF_SCHEME:
        return None
    word = found.group(1).lower()
    if word in BACKEND_OF_SCHEME:
        return word  # "Vault:": schemes are lower case
    for scheme in BACKEND_OF_SCHEME:
        allowed = 2 if len(scheme) > 8 else 1
        if len(scheme) >= 4 and _edits(word, scheme, allowed) <= allowed:
            return scheme
    return None


def _edits(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (a swap of neighbours is one edit), capped past limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]
