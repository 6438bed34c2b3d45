"""Editing a Kubernetes ``Secret`` manifest in place, byte for byte.

The file's text is the source of truth: a change replaces exactly the characters of one value (or
inserts or removes the lines of one entry), found through the YAML parser's positions, and leaves
every other byte alone: comments, quoting styles, indentation (2 or 4 spaces, indented or not
sequences), CRLF line endings, a missing final newline, key order and the other documents. A new
entry is written in the document's own indentation and line endings, and every change is read
back before it is kept. Values live under ``stringData`` (plain text) or ``data`` (base64); a file
may hold several documents, of which any ``Secret`` may hold a key. Each key's rotation time is an
annotation ``rotation.yosai.io/KEY`` on its Secret.

The annotation ``rotation.yosai.io/values-sha256`` holds ``sha256:`` and the hex SHA-256 of the
rotated values, canonically encoded (a JSON object, sorted keys, no spaces, UTF-8), so that the
live Secret can be checked to hold the manifest's values without reading them. A digest, never a
value: the annotation is metadata, visible to anyone who may read the Secret's metadata (and to
``kubectl get`` output, events and tools that never see ``data``); a SHA-256 of values generated
with at least 256 bits of entropy cannot be inverted or guessed, while the value itself must never
be there. Saving is atomic (:func:`yosai_secrets.fileio.atomic_write_text`): mode 0600 or the
file's stricter one, and a symlinked manifest's target is replaced, not the link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from ..errors import ConfigurationError, MissingDependencyError
from ..fileio import atomic_write_text
from .manifest_text import ManifestText
from .yaml_text import (
    child,
    is_mapping,
    is_null,
    pair_of,
    raw,
    scalar_style,
    scalar_text,
)

__all__ = [
    "ANNOTATION_PREFIX",
    "DIGEST_ANNOTATION",
    "DIGEST_KEY",
    "SecretManifest",
    "annotation_key",
    "digest_of",
]

ANNOTATION_PREFIX: Final = "rotation.yosai.io/"
#: ``annotation_key(DIGEST_KEY)`` holds the digest of the rotated values.
DIGEST_KEY: Final = "values-sha256"
DIGEST_ANNOTATION: Final = ANNOTATION_PREFIX + DIGEST_KEY
#: Keys a rotation changes together with another: the fallbacks with SECRET_KEY, the user
#: (alternating users) with DB_PASSWORD.
_COMPANIONS: Final = {"SECRET_KEY": "SECRET_KEY_FALLBACKS", "DB_PASSWORD": "DB_USER"}


def annotation_key(key: str) -> str:
    """The annotation that records when ``key`` was last rotated."""
    return ANNOTATION_PREFIX + key


def digest_of(values: Mapping[str, str]) -> str:
    """``sha256:<hex>`` over ``values`` as canonical JSON (sorted keys, no spaces, UTF-8)."""
    canonical = json.dumps(dict(values), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _yaml() -> Any:
    try:
        from ruamel.yaml import YAML
    except ImportError:
        raise MissingDependencyError(
            "ruamel.yaml", "rotation", "editing the Kubernetes Secret manifest"
        ) from None
    # The pure-Python safe composer: positions of every node, no comment gathering (faster).
    return YAML(typ="safe", pure=True)


class SecretManifest(ManifestText):
    """A Kubernetes Secret manifest file, loaded for in-place editing.

    Values are never shown: ``repr`` names the file only, and no message holds a value.

    Raises:
        ConfigurationError: the file is missing, not UTF-8 YAML, or holds no ``Secret``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._yaml = _yaml()
        try:
            raw = self.path.read_bytes()  # bytes: CRLF line endings must survive
        except FileNotFoundError:
            raise ConfigurationError(
                f"the Secret manifest {self.path} does not exist; create it from "
                f"{self.path.with_name(self.path.name.replace('.yaml', '.example.yaml'))}"
            ) from None
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the Secret manifest {self.path}: {exc.strerror}"
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigurationError(f"the Secret manifest {self.path} is not UTF-8") from None
        self._load(text)
        if not self._secrets:
            raise ConfigurationError(f"the manifest {self.path} holds no Kubernetes Secret")

    def __repr__(self) -> str:
        return f"SecretManifest({str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------------

    def keys(self) -> list[str]:
        """Every key of every Secret in the file, in file order."""
        out: list[str] = []
        for _doc, _section, mapping in self._sections():
            for key, _value in mapping.value:
                if str(key.value) not in out:
                    out.append(str(key.value))
        return out

    def has(self, key: str) -> bool:
        """Whether some Secret in the file holds ``key``."""
        return key in self.keys()

    def get(self, key: str) -> str:
        """Return the plain-text value of ``key`` (base64 ``data`` is decoded).

        Raises:
            ConfigurationError: no Secret holds the key, or its value is not text.
        """
        _doc, section, mapping = self._find(key)
        node = pair_of(mapping, key)[1]  # type: ignore[index]
        text = scalar_text(node)
        if text is None:
            raise ConfigurationError(f"{key} under {section}: in {self.path} is not a string")
        if section == "data":
            try:
                return base64.b64decode(text, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise ConfigurationError(
                    f"{key} under data: in {self.path} is not base64-encoded UTF-8 text"
                ) from None
        return text

    def values(self) -> dict[str, str]:
        """Every key's plain-text value."""
        return {key: self.get(key) for key in self.keys()}

    def namespace(self) -> str | None:
        """The namespace of the first Secret, if the file sets one."""
        return self.secret_names()[0][1] if self.secret_names() else None

    def secret_names(self) -> list[tuple[str, str | None]]:
        """Each named Secret's name and namespace (None when the file sets none), in file order."""
        out: list[tuple[str, str | None]] = []
        for doc in self._secrets:
            meta = child(doc, "metadata")
            name = scalar_text(child(meta, "name"))
            if name:
                out.append((name, scalar_text(child(meta, "namespace")) or None))
        return out

    def annotation(self, key: str) -> str | None:
        """The rotation-time annotation of ``key``, if any."""
        return self._annotation(self._doc_for(key), annotation_key(key))

    def values_digest(self, keys: Iterable[str] | None = None) -> str:
        """The digest of the current values of ``keys`` (see :func:`digest_of`).

        Args:
            keys: the rotated keys; by default every key that carries a rotation-time annotation
                on its Secret, with what a rotation changes along with it (``SECRET_KEY_FALLBACKS``
                with ``SECRET_KEY``, ``DB_USER`` with ``DB_PASSWORD``).

        Raises:
            ConfigurationError: no such key, or a key the file does not hold.
        """
        chosen = self._digest_keys(keys)
        return digest_of({key: self.get(key) for key in chosen})

    def recorded_digest(self, name: str | None = None) -> str | None:
        """The digest annotation of the Secret ``name`` (default: the first that has one)."""
        for doc in self._secrets:
            if name is None or scalar_text(child(child(doc, "metadata"), "name")) == name:
                found = self._annotation(doc, DIGEST_ANNOTATION)
                if found is not None or name is not None:
                    return found
        return None

    # -- writing ---------------------------------------------------------------------------------

    def set(self, key: str, value: str, *, near: str | None = None) -> None:
        """Set ``key`` to ``value`` where it lives, keeping its section and quoting style.

        A key not yet in the file is added to the Secret and section of ``near`` (just after it,
        quoted as it is), else to the first Secret's ``stringData`` (double-quoted).

        Raises:
            ConfigurationError: the value cannot be written so that it reads back the same.
        """
        keys = self.keys()

        def check() -> bool:
            return self.get(key) == value and [k for k in self.keys() if k != key] == [
                k for k in keys if k != key
            ]

        if key in keys:
            doc, section, mapping = self._find(key)
            knode, vnode = pair_of(mapping, key)  # type: ignore[misc]
            self._replace(knode, vnode, raw(section, value), check, key)
            return
        if near is not None and near in keys:
            doc, section, mapping = self._find(near)
            style = scalar_style(pair_of(mapping, near)[1])  # type: ignore[index]
        else:
            doc, style, near = self._secrets[0], '"', None
            data_only = child(doc, "stringData") is None and is_mapping(child(doc, "data"))
            section = "data" if data_only else "stringData"
        index = self._secrets.index(doc)
        self._insert(index, [section], key, raw(section, value), style, check, after=near)

    def remove(self, key: str) -> None:
        """Remove ``key`` from its Secret (no-op when absent)."""
        if not self.has(key):
            return
        mapping = self._find(key)[2]
        keys = [k for k in self.keys() if k != key]
        self._remove(mapping, key, lambda: self.keys() == keys, None)

    def set_annotation(self, key: str, value: str | None) -> None:
        """Set (or, with None, remove) the rotation-time annotation of ``key``."""
        self._set_annotation(self._secrets.index(self._doc_for(key)), annotation_key(key), value)

    def set_values_digest(self, keys: Iterable[str] | None = None) -> str:
        """Record :meth:`values_digest` on each Secret holding one of ``keys``; return it."""
        chosen = self._digest_keys(keys)
        digest = digest_of({key: self.get(key) for key in chosen})
        self.set_recorded_digest(digest, keys=chosen)
        return digest

    def set_recorded_digest(self, digest: str | None, *, keys: Iterable[str] | None = None) -> None:
        """Write ``digest`` as :meth:`set_values_digest` would; None removes it everywhere.

        For an abort: put back what :meth:`recorded_digest` returned before the rotation.
        """
        every = list(range(len(self._secrets)))
        if digest is not None:
            # Indexes, not nodes: each edit parses the file again.
            holders = {id(self._doc_for(k)) for k in self._digest_keys(keys)}
            every = [i for i in every if id(self._secrets[i]) in holders]
        for index in every:
            self._set_annotation(index, DIGEST_ANNOTATION, digest)

    def render(self) -> str:
        """The file's text as it would be saved."""
        return self._text

    def save(self) -> None:
        """Write the file atomically, mode 0600 or the file's stricter one (symlinks followed).

        Raises:
            ConfigurationError: the file cannot be written (an immutable file or directory, a
                read-only file system); the message names it and what to do, and the file on
                disk is left as it was (a rotation's journal keeps the new values: run again).
        """
        atomic_write_text(self.path, self._text, mode=0o600, what="the Secret manifest")

    # -- internals: the parsed view --------------------------------------------------------------

    def _load(self, text: str) -> None:
        try:
            docs = [d for d in self._yaml.compose_all(text) if d is not None]
        except Exception as exc:  # ruamel raises many types; the file name and line are enough.
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigurationError(
                f"the Secret manifest {self.path} is not valid YAML{where}"
            ) from None
        self._text = text
        first = text.find("\n")
        self._newline = "\r\n" if first > 0 and text[first - 1] == "\r" else "\n"
        self._secrets: list[Any] = [
            d for d in docs if is_mapping(d) and scalar_text(child(d, "kind")) == "Secret"
        ]

    def _sections(self) -> Iterator[tuple[Any, str, Any]]:
        for doc in self._secrets:
            for section in ("stringData", "data"):
                mapping = child(doc, section)
                if is_mapping(mapping):
                    yield doc, section, mapping

    def _find(self, key: str) -> tuple[Any, str, Any]:
        # Kubernetes lets stringData win over data for the same key; so do we.
        found = sorted(
            (t for t in self._sections() if pair_of(t[2], key) is not None),
            key=lambda t: t[1] != "stringData",
        )
        if not found:
            raise ConfigurationError(f"no Secret in {self.path} holds the key {key!r}")
        return found[0]

    def _doc_for(self, key: str) -> Any:
        return self._find(key)[0] if self.has(key) else self._secrets[0]

    def _annotation(self, doc: Any, name: str) -> str | None:
        node = child(child(child(doc, "metadata"), "annotations"), name)
        return None if node is None or is_null(node) else scalar_text(node)

    def _digest_keys(self, keys: Iterable[str] | None) -> list[str]:
        if keys is not None:
            chosen = list(dict.fromkeys(keys))
            missing = [k for k in chosen if not self.has(k)]
            if missing:
                raise ConfigurationError(f"{self.path} does not hold {', '.join(missing)}")
        else:
            stamped = {k for k in self.keys() if self.annotation(k) is not None}
            companions = {_COMPANIONS[k] for k in stamped if k in _COMPANIONS}
            chosen = [k for k in self.keys() if k in stamped | companions]
        if not chosen:
            raise ConfigurationError(f"{self.path} records no rotated key to digest")
        return chosen
