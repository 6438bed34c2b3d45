"""Round-trip editing of a Kubernetes ``Secret`` manifest.

Only the keys being rotated change: every other key, comment, quoting style, order and document of
the file is kept (ruamel.yaml's round-trip mode). Values live under ``stringData`` (plain text) or
``data`` (base64); a file may hold several documents, of which any ``Secret`` may hold a key. Each
key's rotation time is an annotation ``rotation.yosai.io/KEY`` on its Secret. Saving is atomic and
leaves the file mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from ..errors import ConfigurationError, MissingDependencyError
from ..fileio import atomic_write_text

__all__ = ["ANNOTATION_PREFIX", "SecretManifest", "annotation_key"]

ANNOTATION_PREFIX: Final = "rotation.yosai.io/"


def annotation_key(key: str) -> str:
    """The annotation that records when ``key`` was last rotated."""
    return ANNOTATION_PREFIX + key


def _yaml() -> Any:
    try:
        from ruamel.yaml import YAML
    except ImportError:
        raise MissingDependencyError(
            "ruamel.yaml", "rotation", "editing the Kubernetes Secret manifest"
        ) from None
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    # Never fold a long generated value over two lines.
    yaml.width = 4096
    yaml.explicit_start = False
    return yaml


class SecretManifest:
    """A Kubernetes Secret manifest file, loaded for round-trip editing.

    Values are never shown: ``repr`` names the file only.

    Raises:
        ConfigurationError: the file is missing, not YAML, or holds no ``Secret``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._yaml = _yaml()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigurationError(
                f"the Secret manifest {self.path} does not exist; create it from "
                f"{self.path.with_name(self.path.name.replace('.yaml', '.example.yaml'))}"
            ) from None
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the Secret manifest {self.path}: {exc.strerror}"
            ) from None
        self._explicit_start = text.lstrip().startswith("---")
        try:
            self._docs: list[Any] = list(self._yaml.load_all(text))
        except Exception as exc:  # ruamel raises many types; the file name and line are enough.
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigurationError(
                f"the Secret manifest {self.path} is not valid YAML{where}"
            ) from None
        self._secrets = [d for d in self._docs if _is_secret(d)]
        if not self._secrets:
            raise ConfigurationError(f"the manifest {self.path} holds no Kubernetes Secret")

    def __repr__(self) -> str:
        return f"SecretManifest({str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------------

    def keys(self) -> list[str]:
        """Every key of every Secret in the file, in file order."""
        out: list[str] = []
        for doc in self._secrets:
            for section in ("stringData", "data"):
                for key in doc.get(section) or {}:
                    if str(key) not in out:
                        out.append(str(key))
        return out

    def has(self, key: str) -> bool:
        """Whether some Secret in the file holds ``key``."""
        return key in self.keys()

    def get(self, key: str) -> str:
        """Return the plain-text value of ``key`` (base64 ``data`` is decoded).

        Raises:
            ConfigurationError: no Secret holds the key, or its ``data`` is not base64 text.
        """
        doc, section = self._find(key)
        raw = doc[section][key]
        if raw is None:
            return ""
        if section == "data":
            try:
                return base64.b64decode(str(raw), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise ConfigurationError(
                    f"{key} under data: in {self.path} is not base64-encoded UTF-8 text"
                ) from None
        return str(raw)

    def values(self) -> dict[str, str]:
        """Every key's plain-text value."""
        return {key: self.get(key) for key in self.keys()}

    def namespace(self) -> str | None:
        """The namespace of the first Secret, if the file sets one."""
        meta = self._secrets[0].get("metadata") or {}
        ns = meta.get("namespace")
        return str(ns) if ns else None

    def secret_names(self) -> list[tuple[str, str | None]]:
        """Each Secret's name and namespace (None when the file sets none), in file order."""
        out: list[tuple[str, str | None]] = []
        for doc in self._secrets:
            meta = doc.get("metadata") or {}
            if meta.get("name"):
                out.append(
                    (str(meta["name"]), str(meta["namespace"]) if meta.get("namespace") else None)
                )
        return out

    def annotation(self, key: str) -> str | None:
        """The rotation-time annotation of ``key``, if any."""
        doc = self._doc_for_annotation(key)
        annotations = (doc.get("metadata") or {}).get("annotations") or {}
        value = annotations.get(annotation_key(key))
        return str(value) if value is not None else None

    # -- writing ---------------------------------------------------------------------------------

    def set(self, key: str, value: str, *, near: str | None = None) -> None:
        """Set ``key`` to ``value`` where it lives, keeping its section and quoting style.

        A key not yet in the file is added to the Secret and section of ``near`` (just after it),
        else to the first Secret's ``stringData``.
        """
        try:
            doc, section = self._find(key)
        except ConfigurationError:
            doc, section = self._find(near) if near and self.has(near) else self._first_section()
            mapping = doc[section]
            position = list(mapping).index(near) + 1 if near in mapping else len(mapping)
            mapping.insert(position, key, _encode(section, value, None))
            return
        mapping = doc[section]
        mapping[key] = _encode(section, value, mapping[key])

    def remove(self, key: str) -> None:
        """Remove ``key`` from its Secret (no-op when absent)."""
        try:
            doc, section = self._find(key)
        except ConfigurationError:
            return
        del doc[section][key]

    def set_annotation(self, key: str, value: str | None) -> None:
        """Set (or, with None, remove) the rotation-time annotation of ``key``."""
        from ruamel.yaml.comments import CommentedMap

        doc = self._doc_for_annotation(key)
        meta = doc.get("metadata")
        if meta is None:
            meta = doc["metadata"] = CommentedMap()
        annotations = meta.get("annotations")
        if annotations is None:
            if value is None:
                return
            annotations = meta["annotations"] = CommentedMap()
        if value is None:
            annotations.pop(annotation_key(key), None)
        else:
            from ruamel.yaml.scalarstring import DoubleQuotedScalarString

            # Quoted, so that no YAML 1.1 reader (kubectl) takes the time for a timestamp.
            annotations[annotation_key(key)] = DoubleQuotedScalarString(value)

    def render(self) -> str:
        """The file's text as it would be saved."""
        stream = io.StringIO()
        self._yaml.explicit_start = self._explicit_start
        self._yaml.dump_all(self._docs, stream)
        return stream.getvalue()

    def save(self) -> None:
        """Write the file atomically, mode 0600."""
        atomic_write_text(self.path, self.render(), mode=0o600)

    # -- internals -------------------------------------------------------------------------------

    def _find(self, key: str) -> tuple[Any, str]:
        found = [
            (doc, section) for doc, section in self._sections() if key in (doc.get(section) or {})
        ]
        if not found:
            raise ConfigurationError(f"no Secret in {self.path} holds the key {key!r}")
        # Kubernetes lets stringData win over data for the same key; so do we.
        found.sort(key=lambda pair: pair[1] != "stringData")
        return found[0]

    def _sections(self) -> Iterator[tuple[Any, str]]:
        for doc in self._secrets:
            for section in ("stringData", "data"):
                if doc.get(section) is not None:
                    yield doc, section

    def _first_section(self) -> tuple[Any, str]:
        from ruamel.yaml.comments import CommentedMap

        for doc, section in self._sections():
            return doc, section
        doc = self._secrets[0]
        doc["stringData"] = CommentedMap()
        return doc, "stringData"

    def _doc_for_annotation(self, key: str) -> Any:
        try:
            return self._find(key)[0]
        except ConfigurationError:
            return self._secrets[0]


def _is_secret(doc: Any) -> bool:
    return hasattr(doc, "get") and str(doc.get("kind", "")) == "Secret"


def _encode(section: str, value: str, old: Any) -> Any:
    text = base64.b64encode(value.encode("utf-8")).decode("ascii") if section == "data" else value
    from ruamel.yaml.scalarstring import ScalarString

    # Keep the author's quoting style: a quoted value stays quoted the same way.
    if isinstance(old, ScalarString):
        return type(old)(text)
    return text
