"""SecretManager, and the process-wide default behind :func:`get_secret`.

A manager owns one cache and the backends it has built. A key is either a plain name
(``DB_PASSWORD``, ``secret/data/db#password``), read from the default backend (``SECRET_BACKEND``),
or a reference with a scheme (``vault:``, ``aws-secrets:``, ``env:``, ``file:``), read from that
scheme's backend whatever the default is. Field selection, decryption and redaction are done here,
once, for every backend.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from . import forksafe, metrics
from .audit import events
from .audit.reads import ReadAudit
from .backends import Backend, Fetched, Location, create_backend
from .backends.projected import ProjectedWatcher
from .cache import CacheEntry, CacheStats, SecretCache
from .crypto import FernetBox, looks_encrypted
from .edge import leaving, public_edge
from .envvars import env_bool, env_seconds
from .errors import BackendError, ConfigurationError, SecretNotFoundError, YosaiSecretsError
from .fields import is_batch, not_found_for, select_field, where
from .jitter import jitter_from_environ
from .references import BACKEND_OF_SCHEME
from .secret import Secret, register_secret_value

__all__ = [
    "DEFAULT_MAX_STALE_SECONDS",
    "DEFAULT_READ_TIMEOUT_SECONDS",
    "DEFAULT_TTL_SECONDS",
    "SecretManager",
    "default_manager",
    "get_secret",
    "invalidate_secret",
    "reset_default_manager",
]

DEFAULT_TTL_SECONDS: Final = 300.0
DEFAULT_MAX_STALE_SECONDS: Final = 3600.0
#: The longest a read from a remote backend may take, waiters included (SECRET_READ_TIMEOUT):
#: under the 10 s probe timeout of k8s/deployment.yaml, so that readiness answers, even if "no".
DEFAULT_READ_TIMEOUT_SECONDS: Final = 8.0


class _Missing:
    def __repr__(self) -> str:
        return "<no default>"


_MISSING: Final = _Missing()
_CacheKey = tuple[str, str]


class _Memo:
    """A resolved key: its final value, the cache entry it came from, and its hits since."""

    __slots__ = ("entry", "hits", "value")

    def __init__(self, value: str, entry: CacheEntry[Fetched]) -> None:
        self.value = value
        self.entry = entry
        self.hits = 0


# Backends that read this machine only (no network round trip to hide behind threads).
_LOCAL_BACKENDS: Final = frozenset({"env", "file"})


class SecretManager:
    """Gets secrets from backends, through one cache.

    Args:
        backend: the default backend: an object satisfying the ``Backend`` protocol, or a name
            (``env``, ``vault``, ``aws``); default ``SECRET_BACKEND``, else ``env``.
        environ: the environment to configure backends from (default ``os.environ``).
        ttl_seconds: how long a value is fresh (default ``SECRET_CACHE_TTL``, else 300).
        max_stale_seconds: how long past expiry a value is served while its backend fails.
        max_entries: the most paths cached.
        clock: a monotonic clock in seconds.
        read_timeout_seconds: the longest a read from a remote backend may take, waiters
            included (default ``SECRET_READ_TIMEOUT``, else 8).
        jitter: the fraction of the TTL drawn at random per cached path, so that processes
            started together refresh apart (default ``SECRET_CACHE_JITTER``, else 0.1; 0: off).
        audit: emit an audit event for every backend read and count hits per key in the audit
            summary (default ``YOSAI_AUDIT``, else on); see :mod:`yosai_secrets.audit.events`.

    Keys read from a Kubernetes-mounted Secret (a directory with a ``..data`` link) are forgotten
    when the kubelet swaps that link, within ``SECRETS_WATCH_INTERVAL`` seconds (default 2; 0:
    off); see :mod:`yosai_secrets.backends.projected`.

    Raises:
        UnknownBackendError: the backend name is not known; the message lists the valid ones.
        ConfigurationError: a malformed ``SECRET_*``, ``SECRETS_WATCH_INTERVAL`` or
            ``YOSAI_AUDIT*`` variable.
    """

    def __init__(
        self,
        backend: Backend | str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        ttl_seconds: float | None = None,
        max_stale_seconds: float = DEFAULT_MAX_STALE_SECONDS,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        read_timeout_seconds: float | None = None,
        audit: bool | None = None,
        jitter: float | None = None,
    ) -> None:
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        if ttl_seconds is None:
            ttl_seconds = env_seconds(self._environ, "SECRET_CACHE_TTL", DEFAULT_TTL_SECONDS)
        if read_timeout_seconds is None:
            read_timeout_seconds = env_seconds(
                self._environ,
                "SECRET_READ_TIMEOUT",
                DEFAULT_READ_TIMEOUT_SECONDS,
                exclusive=True,
            )
        self._cache: SecretCache[Fetched] = SecretCache(
            ttl_seconds=ttl_seconds,
            max_stale_seconds=max_stale_seconds,
            max_entries=max_entries,
            clock=clock,
            read_timeout_seconds=read_timeout_seconds,
            jitter=jitter_from_environ(self._environ) if jitter is None else jitter,
        )
        self._clock = clock
        self._lock = threading.Lock()
        # No thread until a secret is read from a projected volume.
        self._watcher = ProjectedWatcher.from_environ(self._environ, self._forget_keys)
        self._backends: dict[str, Backend] = {}
        if backend is None:
            backend = self._environ.get("SECRET_BACKEND", "").strip() or "env"
        if isinstance(backend, str):
            backend = create_backend(backend, self._environ)
        self._default = backend
        self._backends[backend.name] = backend
        self._watch(backend)
        self._fernet: FernetBox | None = None
        # key -> its memo (final value, cache entry, hits): the hot path of get().
        self._resolved: dict[str, _Memo] = {}
        self._max_resolved = max_entries * 4
        if audit is None:
            audit = env_bool(self._environ, "YOSAI_AUDIT", True)
        self._audit = ReadAudit(
            self._resolved,
            enabled=audit,
            summary_seconds=events.summary_seconds(self._environ) if audit else 0.0,
        )
        forksafe.register(self)
        metrics.track(self)  # a weak reference: its counters are read at scrape time

    def __repr__(self) -> str:
        return f"SecretManager(backend={self._default.name!r}, cached={len(self._resolved)})"

    @property
    def backend(self) -> Backend:
        """The default backend."""
        return self._default

    @property
    def ttl_seconds(self) -> float:
        """How long a fetched value is fresh."""
        return self._cache.ttl_seconds

    @property
    def read_timeout_seconds(self) -> float | None:
        """The longest a read from a backend may take, waiters included."""
        return self._cache.read_timeout_seconds

    def get(self, key: str, default: str | _Missing = _MISSING) -> str:
        """Return the secret ``key`` as text.

        Args:
            key: a plain name or a reference (``vault:secret/data/db#password``).
            default: returned when no source holds the key; without it, that is an error.

        Raises:
            SecretNotFoundError: no source holds the key and no default was given.
            ConfigurationError: any other failure (backend down, bad file, bad token).
        """
        hit = self._resolved.get(key)
        if hit is not None and hit.entry.expires_at > self._clock():
            hit.hits += 1  # the audit summary's per-key count, and stats().hits
            return hit.value
        try:
            return self._resolve(key)
        except SecretNotFoundError as error:
            if isinstance(default, _Missing):
                raise leaving(error) from error.__cause__
            return default
        except YosaiSecretsError as error:  # the frames below held the value (edge.py)
            raise leaving(error) from error.__cause__

    def secret(self, key: str) -> Secret:
        """Return the secret ``key`` wrapped in a :class:`Secret`, which never shows itself."""
        return Secret(self.get(key))

    @public_edge
    def get_bytes(self, key: str) -> bytes:
        """Return the secret ``key`` as bytes (binary AWS secrets; text is UTF-8 encoded)."""
        backend, location = self._locate(key)
        raw = self._read(key, backend, location.path).value
        if isinstance(raw, bytes) and location.field is None:
            return raw
        return self.get(key).encode("utf-8")

    def get_many(
        self, keys: Iterable[str], *, max_workers: int = 16
    ) -> dict[str, str | ConfigurationError]:
        """Resolve many keys at once: each path is read once, paths concurrently.

        Backends with a batch API read their paths in batches. Keys of one path (``DB_USER`` and
        ``DB_PASSWORD`` of one store entry) come from one and the same read, so a refresh landing
        in between never mixes an old user with a new password. Returns, for each key, its value
        or the error it met; nothing is raised for a single key's failure.
        """
        located: dict[str, tuple[Backend, Location] | ConfigurationError] = {}
        for key in dict.fromkeys(keys):
            try:
                located[key] = self._locate(key)
            except ConfigurationError as exc:
                located[key] = exc
        cold: dict[_CacheKey, Backend] = {}
        names: dict[_CacheKey, list[str]] = {}  # the keys each cold path is read for (audit)
        for key, item in located.items():
            if isinstance(item, tuple):
                backend, location = item
                if backend.name in _LOCAL_BACKENDS:
                    continue  # read by _resolve itself: microseconds, no thread or batch pays
                ck = (backend.name, location.path)
                entry = self._cache.peek(ck)
                if entry is None or entry.expires_at <= self._clock():
                    cold[ck] = backend
                    names.setdefault(ck, []).append(key)
        snapshot: dict[_CacheKey, CacheEntry[Fetched]] = {}
        failed = self._prefetch(cold, max_workers, snapshot, names)
        results: dict[str, str | ConfigurationError] = {}
        for key, item in located.items():
            if isinstance(item, tuple):
                error = failed.get((item[0].name, item[1].path))
                if isinstance(error, SecretNotFoundError):
                    error = not_found_for(key, item[1], error)
                if error is None:
                    try:
                        results[key] = self._resolve(key, item, snapshot)
                    except ConfigurationError as exc:
                        error = exc
                if error is not None:
                    results[key] = leaving(error)  # handed back, not raised: still an edge
            else:
                results[key] = item
        return results

    def invalidate(self, key: str | None = None) -> int:
        """Forget ``key`` (every cached field of its path), or everything when ``None``.

        Returns how many cached paths were forgotten.
        """
        if key is None:
            self._forget_resolved()
            return self._cache.invalidate()
        backend, location = self._locate(key)
        target = (backend.name, location.path)
        self._forget_resolved()
        return self._cache.invalidate(lambda k: k == target)

    def stats(self) -> CacheStats:
        """Return the cache's counters: hits, misses, backend calls, errors, stale serves."""
        stats = self._cache.stats()
        # The memo's hits (get()'s fast path) are counted there, not by the cache.
        return CacheStats(stats.hits + self._audit.fast_hits(), *stats[1:])

    def audit_hits(self) -> dict[str, int]:
        """Cache hits per key since this manager was created (also in the audit summary)."""
        return self._audit.audit_hits()

    def describe(self, key: str) -> str:
        """Say where ``key`` is read from (backend, variable, file or path), never its value."""
        backend, location = self._locate(key)
        source = where(backend, location.path)
        return f"{source}#{location.field}" if location.field else source

    def is_stale(self, key: str) -> bool:
        """Tell whether ``key`` is being served past its TTL because its backend fails."""
        backend, location = self._locate(key)
        entry = self._cache.peek((backend.name, location.path))
        return entry is not None and entry.failing

    def close(self) -> None:
        """Stop the backends' background work (token renewal) and close their connections.

        The manager may still be used afterwards: connections open again on demand.
        """
        if self._watcher is not None:
            self._watcher.close()
        with self._lock:
            backends = list(self._backends.values())
        for backend in backends:
            close = getattr(backend, "close", None)
            if callable(close):
                close()

    def after_fork_in_child(self) -> None:
        """In a forked child: new locks and no in-flight reads; cached values are kept.

        Each backend registers itself too and drops its own connections, clients and threads.
        """
        self._lock = threading.Lock()
        self._cache.after_fork_in_child()

    def backend_for(self, name: str) -> Backend:
        """Return this manager's backend called ``name``, building it from the environment."""
        found = self._backends.get(name)
        if found is not None:
            return found
        with self._lock:
            found = self._backends.get(name)
            if found is None:
                found = create_backend(name, self._environ)
                self._backends[name] = found
                self._watch(found)
            return found

    def backends(self) -> list[Backend]:
        """The backends this manager has built or been given so far."""
        with self._lock:
            return list(self._backends.values())

    def add_backend(self, backend: Backend) -> None:
        """Use ``backend`` for references of its name (inject a ready-made client this way)."""
        with self._lock:
            self._backends[backend.name] = backend
        self._watch(backend)

    # -- internals ---------------------------------------------------------------------------

    def _watch(self, backend: Backend) -> None:
        if self._watcher is not None:
            self._watcher.attach(backend)  # only backends reading files (env, file) take it

    def _forget_keys(self, keys: list[str]) -> int:
        """Invalidate ``keys`` (the projected-volume watcher's callback); return paths forgotten."""
        count = 0
        for key in keys:
            try:
                count += self.invalidate(key)
            except ConfigurationError:  # a backend's name no longer resolves: nothing cached
                continue
        return count

    def _locate(self, key: str) -> tuple[Backend, Location]:
        if not isinstance(key, str) or not key.strip():
            raise ConfigurationError(f"a secret key must be a non-empty string, got {key!r}")
        scheme, sep, rest = key.partition(":")
        if sep and scheme in BACKEND_OF_SCHEME:
            if not rest:
                raise ConfigurationError(f"secret reference {key!r} names no secret")
            named = BACKEND_OF_SCHEME[scheme]  # None: secret:NAME, the default backend's NAME
            backend = self._default if named is None else self.backend_for(named)
            return backend, backend.locate(rest)
        return self._default, self._default.locate(key)

    def _resolve(
        self,
        key: str,
        located: tuple[Backend, Location] | None = None,
        snapshot: dict[_CacheKey, CacheEntry[Fetched]] | None = None,
    ) -> str:
        backend, location = located if located is not None else self._locate(key)
        ck = (backend.name, location.path)
        try:
            entry = snapshot.get(ck) if snapshot is not None else None
            if entry is None:
                entry = self._read(key, backend, location.path)
                if snapshot is not None:
                    snapshot[ck] = entry  # the other keys of this path read this same entry
        except SecretNotFoundError as exc:
            renamed = not_found_for(key, location, exc)
            if renamed is exc:
                raise
            raise renamed from exc
        except BackendError as exc:
            raise exc.for_key(key) from exc.__cause__
        value = self._finish(key, backend, location, entry.value)
        register_secret_value(value)
        if len(self._resolved) >= self._max_resolved:
            self._forget_resolved()
        # Memoised only while the cache holds this very entry: a read that began before an
        # invalidate() returns its value to its caller, but is never served again.
        if self._cache.peek(ck) is entry:
            old = self._resolved.get(key)
            if old is not None:
                self._audit.fold(key, old)
            self._resolved[key] = _Memo(value, entry)
        return value

    def _read(self, key: str, backend: Backend, path: str) -> CacheEntry[Fetched]:
        """The cache's entry for ``path``, read (and audited) if needed; a hit is counted."""
        fetched = False

        def load() -> Fetched:
            nonlocal fetched
            fetched = True
            return self._audit.fetch(backend, path, key)

        if backend.name in _LOCAL_BACKENDS:
            entry = self._cache.load_unshared((backend.name, path), load)
        else:
            entry = self._cache.get((backend.name, path), load, key)
        if not fetched:
            self._audit.hit(key)  # served by the cache (or by another reader's call)
        return entry

    def _forget_resolved(self) -> None:
        """Drop every memo, keeping their hit counts for the audit summary."""
        for key, memo in list(self._resolved.items()):
            self._audit.fold(key, memo)
        self._resolved.clear()

    def _finish(self, key: str, backend: Backend, location: Location, raw: Fetched) -> str:
        if location.field is None and isinstance(raw, str):
            value = raw  # the common case; the source is described only for an error
        else:
            value = select_field(key, where(backend, location.path), location.field, raw)
        if looks_encrypted(value):
            if self._fernet is None:
                self._fernet = FernetBox.from_environ(self._environ, purpose=f"secret {key!r}")
            value = self._fernet.decrypt(value, name=repr(key))
        return value

    def _prefetch(
        self,
        cold: dict[_CacheKey, Backend],
        max_workers: int,
        snapshot: dict[_CacheKey, CacheEntry[Fetched]],
        names: dict[_CacheKey, list[str]],
    ) -> dict[_CacheKey, ConfigurationError]:
        """Read the cold paths: batched where the backend can, else concurrently.

        Each entry read goes into ``snapshot`` (what the keys of this call resolve from). Returns
        the paths that failed, with their errors, so nobody reads them a second time. ``names``
        gives the keys each path is read for, which its audit event lists.
        """
        failed: dict[_CacheKey, ConfigurationError] = {}
        by_backend: dict[str, list[str]] = {}
        for name, path in cold:
            by_backend.setdefault(name, []).append(path)
        # Remote paths and batches run concurrently, batches of one backend alongside the single
        # reads of another. (Local reads never get here: a thread would cost more than they do.)
        jobs: list[Callable[[], None]] = []
        for name, paths in by_backend.items():
            backend = cold[(name, paths[0])]
            if is_batch(backend) and len(paths) > 1:
                jobs.append(
                    functools.partial(
                        self._load_batch, name, backend, paths, failed, snapshot, names
                    )
                )
            else:
                jobs.extend(
                    functools.partial(
                        self._load_one, (name, path), backend, failed, snapshot, names[name, path]
                    )
                    for path in paths
                )
        _run_jobs(jobs, max_workers)
        return failed

    def _load_one(
        self,
        ck: _CacheKey,
        backend: Backend,
        failed: dict[_CacheKey, ConfigurationError],
        snapshot: dict[_CacheKey, CacheEntry[Fetched]],
        keys: list[str],
    ) -> None:
        try:
            snapshot[ck] = self._cache.get(
                ck, lambda: self._audit.fetch(backend, ck[1], keys), keys[0]
            )
        except ConfigurationError as exc:
            failed[ck] = exc

    def _load_batch(
        self,
        name: str,
        backend: Any,
        paths: list[str],
        failed: dict[_CacheKey, ConfigurationError],
        snapshot: dict[_CacheKey, CacheEntry[Fetched]],
        names: dict[_CacheKey, list[str]],
    ) -> None:
        self._cache.backend_calls += 1
        now = self._clock()
        try:
            results = self._audit.fetch_many(backend, paths)
        except BaseException as exc:
            for path in paths:
                self._audit.record(backend, path, names.get((name, path), [path]), exc)
            raise
        for path, result in results.items():
            self._audit.record(
                backend,
                path,
                names.get((name, path), [path]),
                result if isinstance(result, Exception) else None,
            )
            if isinstance(result, Exception):
                self._cache.errors += 1  # a batch's failure is counted like a single read's
            if isinstance(result, ConfigurationError):
                held = self._cache.peek((name, path))
                if held is None or now >= held.stale_until:
                    failed[(name, path)] = result
                # else: _resolve goes through the cache, which serves the stale value
            elif not isinstance(result, Exception):
                snapshot[(name, path)] = self._cache.put((name, path), result)


def _run_jobs(jobs: list[Callable[[], None]], max_workers: int) -> None:
    """Run the jobs, on a thread pool when there are several."""
    if len(jobs) == 1 or max_workers <= 1:
        for job in jobs:
            job()
    elif jobs:
        # Imported here: concurrent.futures costs start-up time a get_secret() never needs.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(max_workers, len(jobs))) as pool:
            for future in [pool.submit(job) for job in jobs]:
                future.result()


class _Default:
    """Holds the process-wide manager, built on first use (never at import)."""

    def __init__(self) -> None:
        self.manager: SecretManager | None = None
        self.lock = threading.Lock()

    def build(self) -> SecretManager:
        with self.lock:
            if self.manager is None:
                self.manager = SecretManager()
            return self.manager


_DEFAULT: Final = _Default()


def _reset_default_lock() -> None:
    # The lock guarding the first build may be held by another thread at the fork.
    _DEFAULT.lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_default_lock)


def default_manager() -> SecretManager:
    """Return the process-wide manager, building it from the environment on first use."""
    return _DEFAULT.manager or _DEFAULT.build()


def reset_default_manager(manager: SecretManager | None = None) -> None:
    """Drop the process-wide manager (or replace it); the next call builds a fresh one."""
    with _DEFAULT.lock:
        _DEFAULT.manager = manager


def get_secret(key: str, default: str | _Missing = _MISSING) -> str:
    """Return the secret ``key`` from the process-wide manager (cached).

    Args:
        key: a name such as ``DB_PASSWORD``, or a reference such as
            ``vault:secret/data/db#password`` or ``aws-secrets:prod/db_password``.
        default: returned when no source holds the key; without it, that is an error.

    Raises:
        SecretNotFoundError: no source holds the key (the message lists every place looked at).
        ConfigurationError: the backend is misconfigured or failed.
    """
    return (_DEFAULT.manager or _DEFAULT.build()).get(key, default)


def invalidate_secret(key: str | None = None) -> int:
    """Forget the cached ``key`` (or every key) in the process-wide manager.

    The next :func:`get_secret` reads it from its source again. Returns how many cached paths
    were forgotten.
    """
    manager = _DEFAULT.manager
    return 0 if manager is None else manager.invalidate(key)
