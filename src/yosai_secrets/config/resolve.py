"""Resolve a configuration's references and encrypted values in one pass.

Every reference (``secret:``, ``vault:``, ``aws-secrets:``, ``env:``, ``file:``) and every secret
filled from the default backend is handed to :meth:`SecretManager.get_many` at once, which groups
them by backend and path, reads each path once (concurrently across paths, batched where the
backend has a batch API) and picks the fields. Encrypted values written directly in the YAML are
decrypted with ``FERNET_KEY``. Nothing is raised here: every failure becomes a problem naming the
key, the reference, the backend and the cause, so the caller reports all of them together;
:func:`group_problems` turns problems with one cause (six references to a Vault that is not
configured) into one line naming every key, so that each hint is printed once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..crypto import FernetBox, looks_encrypted
from ..errors import ConfigurationError, SecretNotFoundError
from ..manager import SecretManager
from ..references import is_reference, parse_reference
from ..secret import redact, register_secret_value

__all__ = [
    "KeyPath",
    "Kind",
    "Outcome",
    "Request",
    "get_path",
    "group_problems",
    "iter_resolvable",
    "resolve_requests",
    "set_path",
]

#: A key inside the configuration: section names, and list indexes inside lists.
KeyPath = tuple[str | int, ...]
Kind = Literal["reference", "fill", "encrypted"]


@dataclass(frozen=True, slots=True)
class Request:
    """One value to obtain.

    ``kind`` is ``reference`` (``text`` is a reference), ``fill`` (``text`` is a secret name read
    from the default backend because the YAML does not set it) or ``encrypted`` (``text`` is a
    Fernet token written in the YAML or a variable). ``label`` names the key in messages;
    ``origin`` says where the value was written (``config file production.yaml``, ``env NAME``);
    ``described`` asks for the value's source (a backend's description of where it read it),
    which only the six secrets report.
    """

    path: KeyPath
    kind: Kind
    text: str
    label: str
    origin: str = ""
    described: bool = False


@dataclass(slots=True)
class Outcome:
    """What one request gave: a value and its source, or the error and its problem line.

    ``problem`` is ``f"{subject}: {cause}"``: ``subject`` names the key, the reference and the
    backend; ``cause`` is the error's own message (shared by every key that failed alike).
    """

    source: str
    value: str | None = field(default=None, repr=False)
    error: ConfigurationError | None = None
    problem: str | None = None
    subject: str | None = None
    cause: str | None = None


def iter_resolvable(data: Any, prefix: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    """Yield (key path, text) for every string in ``data`` that is a reference or encrypted."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from iter_resolvable(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from iter_resolvable(value, (*prefix, index))
    elif isinstance(data, str) and (is_reference(data) or looks_encrypted(data)):
        yield prefix, data


def get_path(data: Any, path: KeyPath) -> Any:
    """Return the value at ``path`` in ``data``, or raise ``KeyError``."""
    node = data
    for part in path:
        if isinstance(node, Mapping):
            if part not in node:
                raise KeyError(part)
        elif not (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            raise KeyError(part)
        node = node[part]
    return node


def set_path(data: dict[str, Any], path: KeyPath, value: Any) -> None:
    """Set ``path`` in ``data`` to ``value``, creating missing sections."""
    node: Any = data
    for part in path[:-1]:
        nxt = node[part] if isinstance(node, list) and isinstance(part, int) else node.get(part)
        if not isinstance(nxt, dict | list):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[path[-1]] = value


def _describe(manager: SecretManager, key: str) -> str:
    try:
        return manager.describe(key)
    except ConfigurationError:
        return key


def _backend_of(request: Request, manager: SecretManager) -> str:
    if request.kind == "reference":
        return parse_reference(request.text).backend or manager.backend.name
    return manager.backend.name


def resolve_requests(
    requests: list[Request],
    manager: SecretManager,
    environ: Mapping[str, str],
    *,
    max_workers: int = 16,
) -> dict[KeyPath, Outcome]:
    """Obtain every request's value in one pass and return an outcome per key path.

    A ``fill`` that no source holds gets an outcome with a :class:`SecretNotFoundError` and no
    problem line (whether that matters is validation's business); every other failure gets one.
    """
    outcomes: dict[KeyPath, Outcome] = {}
    remote = _remote_requests(requests, outcomes)
    outcomes.update(_fetch(remote, manager, max_workers))
    outcomes.update(_decrypt([r for r in requests if r.kind == "encrypted"], environ))
    for request in requests:
        _describe_failure(request, outcomes[request.path], manager)
    return outcomes


def _remote_requests(requests: list[Request], outcomes: dict[KeyPath, Outcome]) -> list[Request]:
    """The requests a backend answers; a reference that does not parse gets its outcome now."""
    remote: list[Request] = []
    for request in requests:
        if request.kind == "reference":
            try:
                parse_reference(request.text)
            except ConfigurationError as exc:
                outcomes[request.path] = Outcome(request.text, error=exc)
                continue
        if request.kind == "encrypted":
            continue
        remote.append(request)
    return remote


def _fetch(
    remote: list[Request], manager: SecretManager, max_workers: int
) -> dict[KeyPath, Outcome]:
    """Read every remote request with one :meth:`SecretManager.get_many` call."""
    outcomes: dict[KeyPath, Outcome] = {}
    results = manager.get_many([r.text for r in remote], max_workers=max_workers)
    for request in remote:
        result = results[request.text]
        if isinstance(result, str):
            source = _describe(manager, request.text) if request.described else request.text
            outcomes[request.path] = Outcome(source, value=result)
        else:
            outcomes[request.path] = Outcome(request.text, error=result)
    return outcomes


def _decrypt(encrypted: list[Request], environ: Mapping[str, str]) -> dict[KeyPath, Outcome]:
    """Decrypt every encrypted value with ``FERNET_KEY`` (read only if there is one)."""
    if not encrypted:
        return {}
    box: FernetBox | ConfigurationError
    try:
        box = FernetBox.from_environ(environ, purpose="a value in the configuration")
    except ConfigurationError as exc:
        box = exc
    outcomes: dict[KeyPath, Outcome] = {}
    for request in encrypted:
        source = f"{request.origin} (encrypted)"
        if isinstance(box, ConfigurationError):
            outcomes[request.path] = Outcome(source, error=box)
            continue
        try:
            plain = box.decrypt(request.text, name=request.label)
        except ConfigurationError as exc:
            outcomes[request.path] = Outcome(source, error=exc)
        else:
            register_secret_value(plain)
            outcomes[request.path] = Outcome(source, value=plain)
    return outcomes


def _describe_failure(request: Request, outcome: Outcome, manager: SecretManager) -> None:
    """Give a failed outcome its problem line, unless it is a ``fill`` nothing holds."""
    if outcome.error is None:
        return
    if request.kind == "fill" and isinstance(outcome.error, SecretNotFoundError):
        outcome.source = "missing"
        return
    # A second line of defence: no message should hold a value, but mask any that does. Every
    # value obtained is registered by now (the manager registers what it hands out); very short
    # ones are not, as masking every "d" would make the messages unreadable.
    outcome.subject = redact(_subject(request, manager))
    outcome.cause = redact(str(outcome.error))
    outcome.problem = f"{outcome.subject}: {outcome.cause}"
    if request.kind == "fill":
        outcome.source = "error"


def _subject(request: Request, manager: SecretManager) -> str:
    """What failed: the key, and the reference or variable it was read with, and the backend."""
    if request.kind == "encrypted":
        return f"{request.label}: encrypted value in {request.origin}"
    try:
        backend = _backend_of(request, manager)
    except ConfigurationError:
        backend = "?"
    if request.kind == "fill":
        return f"{request.label}: reading {request.text!r} from the {backend} backend"
    return f"{request.label}: reference {request.text} (backend {backend})"


def group_problems(findings: list[tuple[str, str]]) -> list[str]:
    """One line per cause: ``(subject, cause)`` pairs with the same cause become one line.

    A cause met once gives ``"subject: cause"``; a cause met by several subjects gives one line
    naming them all, in the order met: ``"N settings fail for one reason (subject; subject):
    cause"``. Lines come in the order their causes were first met.
    """
    by_cause: dict[str, list[str]] = {}
    for subject, cause in findings:
        subjects = by_cause.setdefault(cause, [])
        if subject not in subjects:
            subjects.append(subject)
    lines = []
    for cause, subjects in by_cause.items():
        if len(subjects) == 1:
            lines.append(f"{subjects[0]}: {cause}")
        else:
            named = "; ".join(subjects)
            lines.append(f"{len(subjects)} settings fail for one reason ({named}): {cause}")
    return lines
