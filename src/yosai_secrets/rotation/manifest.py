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
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from ..errors import ConfigurationError, MissingDependencyError
from ..fileio import atomic_write_text

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
_STR: Final = "tag:yaml.org,2002:str"
_NULL: Final = "tag:yaml.org,2002:null"
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


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


class SecretManifest:
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
        node = _pair(mapping, key)[1]  # type: ignore[index]
        text = _scalar_text(node)
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
            meta = _child(doc, "metadata")
            name = _scalar_text(_child(meta, "name"))
            if name:
                out.append((name, _scalar_text(_child(meta, "namespace")) or None))
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
            if name is None or _scalar_text(_child(_child(doc, "metadata"), "name")) == name:
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
            knode, vnode = _pair(mapping, key)  # type: ignore[misc]
            self._replace(knode, vnode, _raw(section, value), check, key)
            return
        if near is not None and near in keys:
            doc, section, mapping = self._find(near)
            style = _style(_pair(mapping, near)[1])  # type: ignore[index]
        else:
            doc, style, near = self._secrets[0], '"', None
            data_only = _child(doc, "stringData") is None and _is_mapping(_child(doc, "data"))
            section = "data" if data_only else "stringData"
        index = self._secrets.index(doc)
        self._insert(index, [section], key, _raw(section, value), style, check, after=near)

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
        """Write the file atomically, mode 0600 or the file's stricter one (symlinks followed)."""
        atomic_write_text(self.path, self._text, mode=0o600)

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
            d for d in docs if _is_mapping(d) and _scalar_text(_child(d, "kind")) == "Secret"
        ]

    def _sections(self) -> Iterator[tuple[Any, str, Any]]:
        for doc in self._secrets:
            for section in ("stringData", "data"):
                mapping = _child(doc, section)
                if _is_mapping(mapping):
                    yield doc, section, mapping

    def _find(self, key: str) -> tuple[Any, str, Any]:
        # Kubernetes lets stringData win over data for the same key; so do we.
        found = sorted(
            (t for t in self._sections() if _pair(t[2], key) is not None),
            key=lambda t: t[1] != "stringData",
        )
        if not found:
            raise ConfigurationError(f"no Secret in {self.path} holds the key {key!r}")
        return found[0]

    def _doc_for(self, key: str) -> Any:
        return self._find(key)[0] if self.has(key) else self._secrets[0]

    def _annotation(self, doc: Any, name: str) -> str | None:
        node = _child(_child(_child(doc, "metadata"), "annotations"), name)
        return None if node is None or _is_null(node) else _scalar_text(node)

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

    # -- internals: text edits -------------------------------------------------------------------

    def _edit(self, start: int, end: int, new: str, check: Callable[[], bool]) -> bool:
        """Splice ``new`` over ``[start, end)``; keep it only if the file parses and ``check()``."""
        old_text, old_count = self._text, len(self._secrets)
        try:
            self._load(old_text[:start] + new + old_text[end:])
            kept = len(self._secrets) == old_count and check()
        except ConfigurationError:
            kept = False
        if not kept:
            self._load(old_text)
        return kept

    def _replace(
        self, knode: Any, vnode: Any, raw: str, check: Callable[[], bool], what: str
    ) -> None:
        """Replace the scalar ``vnode`` (the value of ``knode``) with ``raw``, in its style."""
        if not isinstance(vnode, _nodes().ScalarNode):
            raise ConfigurationError(f"{what} in {self.path} is not a string")
        style = _style(vnode)
        start, end = vnode.start_mark.index, vnode.end_mark.index
        lead = ""
        if _is_null(vnode) and vnode.value == "":  # ``KEY:`` and nothing: write after the colon
            start = end = self._after_colon(knode)
            lead, style = " ", None
        tail = self._newline if style in ("|", ">") and self._text[end - 1 : end] == "\n" else ""
        indent = self._block_indent(knode, vnode) if style in ("|", ">") else ""
        for text in _candidates(raw, style, indent, self._newline):
            block = text[:1] in ("|", ">")
            if self._edit(start, end, lead + text + ("" if block else tail), check):
                return
        raise ConfigurationError(f"cannot write {what} into {self.path} so that it reads back")

    def _set_annotation(self, index: int, name: str, value: str | None) -> None:
        meta = _child(self._secrets[index], "metadata")
        annotations = _child(meta, "annotations")
        pair = _pair(annotations, name)
        others = {
            k.value: _scalar_text(v)
            for k, v in (annotations.value if _is_mapping(annotations) else [])
            if k.value != name
        }

        def check() -> bool:
            now = _child(_child(self._secrets[index], "metadata"), "annotations")
            rest = {k.value: _scalar_text(v) for k, v in (now.value if _is_mapping(now) else [])}
            found = rest.pop(name, None)
            return rest == others and found == value

        if value is None:
            if pair is not None:
                self._remove(annotations, name, check, (meta, "annotations"))
        elif pair is not None:
            self._replace(pair[0], pair[1], value, check, name)
        else:
            # Quoted, so that no YAML 1.1 reader (kubectl) takes a time for a timestamp.
            self._insert(index, ["metadata", "annotations"], name, value, '"', check)

    def _insert(
        self,
        index: int,
        path: list[str],
        leaf: str,
        raw: str,
        style: str | None,
        check: Callable[[], bool],
        *,
        after: str | None = None,
    ) -> None:
        """Add ``leaf: raw`` under ``path`` in Secret ``index``, creating the missing levels."""
        mapping: Any = self._secrets[index]
        depth, hollow = 0, None  # hollow: a ``key:`` on the path whose value is null or ``{}``
        while depth < len(path):
            pair = _pair(mapping, path[depth])
            if pair is None:
                break
            depth += 1
            if _is_mapping(pair[1]) and pair[1].value:
                mapping = pair[1]
            elif _is_null(pair[1]) or _is_mapping(pair[1]):
                hollow = pair
                break
            else:
                raise ConfigurationError(f"{path[depth - 1]} in {self.path} is not a mapping")
        missing = path[depth:]
        if style in ("|", ">"):
            style = '"'
        for text in _candidates(raw, style, "", self._newline):
            if hollow is not None:
                spot = self._fill(hollow, mapping.flow_style, missing, leaf, text)
            else:
                spot = self._append(mapping, missing, leaf, text, after)
            if self._edit(*spot, check):
                return
        raise ConfigurationError(f"cannot add {leaf} to {self.path} so that it reads back")

    def _append(
        self, mapping: Any, missing: list[str], leaf: str, value: str, after: str | None
    ) -> tuple[int, int, str]:
        pairs = mapping.value
        if mapping.flow_style:
            entry = _flow_entry([*missing, leaf], value)
            if not pairs:
                close = mapping.end_mark.index - 1
                return close, close, entry
            at = self._entry_end(*pairs[-1], line=False)
            return at, at, ", " + entry
        knode, vnode = (_pair(mapping, after) if after else None) or pairs[-1]
        at = self._entry_end(knode, vnode)
        return self._lines(at, self._indent_of(knode), missing, leaf, value)

    def _fill(
        self, pair: Any, in_flow: bool, missing: list[str], leaf: str, value: str
    ) -> tuple[int, int, str]:
        knode, vnode = pair
        entry = "{" + _flow_entry([*missing, leaf], value) + "}"
        if _is_mapping(vnode):  # ``{}``
            return vnode.start_mark.index, vnode.end_mark.index, entry
        start = self._after_colon(knode)
        end = start if vnode.value == "" else vnode.end_mark.index
        if in_flow:  # a null inside a flow mapping
            return start, end, " " + entry
        # ``annotations:`` or ``annotations: ~``: drop the null, the block goes on the next lines.
        line_end = self._text.find("\n", end)
        stop = len(self._text) if line_end < 0 else line_end + 1
        indent = self._indent_of(knode) + " " * self._step()
        _at, _same, block = self._lines(stop, indent, missing, leaf, value)
        return start, stop, self._text[end:stop] + block

    def _lines(
        self, at: int, indent: str, missing: list[str], leaf: str, value: str
    ) -> tuple[int, int, str]:
        step = " " * self._step()
        lines = [f"{indent}{step * i}{_key_text(k)}:" for i, k in enumerate(missing)]
        lines.append(f"{indent}{step * len(missing)}{_key_text(leaf)}: {value}")
        nl = self._newline
        if at >= len(self._text) and not self._text.endswith("\n"):
            return at, at, nl + nl.join(lines)  # the file keeps having no final newline
        return at, at, nl.join(lines) + nl

    def _remove(
        self, mapping: Any, key: str, check: Callable[[], bool], owner: tuple[Any, str] | None
    ) -> None:
        """Remove ``key`` from ``mapping``; an emptied block ``owner`` entry goes too."""
        pairs = mapping.value
        i = max(j for j, (k, _v) in enumerate(pairs) if k.value == key)
        knode, vnode = pairs[i]
        if mapping.flow_style:
            if i + 1 < len(pairs):
                start, end = knode.start_mark.index, pairs[i + 1][0].start_mark.index
            elif i > 0:
                start = self._entry_end(*pairs[i - 1], line=False)
                end = self._entry_end(knode, vnode, line=False)
            else:
                start, end = knode.start_mark.index, self._entry_end(knode, vnode, line=False)
        elif len(pairs) == 1 and owner is not None:
            knode, vnode = _pair(*owner)  # type: ignore[misc]
            start, end = self._line_range(knode, vnode)
        else:
            start, end = self._line_range(knode, vnode)
        if not self._edit(start, end, "", check):
            raise ConfigurationError(f"cannot remove {key} from {self.path}")

    def _line_range(self, knode: Any, vnode: Any) -> tuple[int, int]:
        """The whole lines of the entry ``knode: vnode``."""
        start = self._text.rfind("\n", 0, knode.start_mark.index) + 1
        if self._text[start : knode.start_mark.index].strip(" \ufeff"):
            raise ConfigurationError(f"{knode.value} in {self.path} does not start its line")
        end = self._entry_end(knode, vnode)
        if end >= len(self._text) and not self._text.endswith("\n") and start > 0:
            start -= len(self._newline)  # the last line goes: the one before it becomes last
        return start, end

    def _entry_end(self, knode: Any, vnode: Any, *, line: bool = True) -> int:
        """Where the entry ``knode: vnode`` ends: after its last line's break (``line``)."""
        while isinstance(vnode, _nodes().CollectionNode) and not vnode.flow_style and vnode.value:
            last = vnode.value[-1]
            knode, vnode = last if isinstance(last, tuple) else (None, last)
        at: int
        if _is_null(vnode) and vnode.value == "" and knode is not None:
            at = self._after_colon(knode)
        else:
            at = vnode.end_mark.index
            if _style(vnode) in ("|", ">") and self._text[at - 1 : at] == "\n":
                return at
        if not line:
            return at
        line_end = self._text.find("\n", at)
        return len(self._text) if line_end < 0 else line_end + 1

    def _after_colon(self, knode: Any) -> int:
        colon = self._text.find(":", knode.end_mark.index)
        return colon + 1 if colon >= 0 else int(knode.end_mark.index)

    def _indent_of(self, knode: Any) -> str:
        """The indentation of the line a new sibling of the key ``knode`` starts with."""
        index = knode.start_mark.index
        prefix = self._text[self._text.rfind("\n", 0, index) + 1 : index].lstrip("\ufeff")
        return prefix if not prefix.strip(" ") else " " * len(prefix)

    def _block_indent(self, knode: Any, vnode: Any) -> str:
        """A block scalar's content indentation (as written, else one step in)."""
        body = self._text[vnode.start_mark.index : vnode.end_mark.index].split("\n")[1:]
        lines = [ln for ln in body if ln.strip()]
        if lines:
            return lines[0][: len(lines[0]) - len(lines[0].lstrip(" "))]
        return self._indent_of(knode) + " " * self._step()

    def _step(self) -> int:
        """The document's indentation step: how far a nested mapping's keys are indented."""
        for doc in self._secrets:
            for knode, vnode in _block_pairs(doc):
                if _is_mapping(vnode) and not vnode.flow_style and vnode.value:
                    step = int(vnode.value[0][0].start_mark.column - knode.start_mark.column)
                    if step > 0:
                        return step
        return 2


# -- nodes ----------------------------------------------------------------------------------------


def _nodes() -> Any:
    from ruamel.yaml import nodes

    return nodes


def _is_mapping(node: Any) -> bool:
    return isinstance(node, _nodes().MappingNode)


def _is_null(node: Any) -> bool:
    return isinstance(node, _nodes().ScalarNode) and str(node.tag) == _NULL


def _style(node: Any) -> str | None:
    return getattr(node, "style", None) or None


def _pair(mapping: Any, key: str) -> tuple[Any, Any] | None:
    """The last ``(key node, value node)`` of ``key`` in ``mapping`` (as JSON readers keep)."""
    if not _is_mapping(mapping):
        return None
    found = None
    for knode, vnode in mapping.value:
        if isinstance(knode, _nodes().ScalarNode) and knode.value == key:
            found = (knode, vnode)
    return found


def _child(mapping: Any, key: str) -> Any:
    pair = _pair(mapping, key)
    return pair[1] if pair is not None else None


def _scalar_text(node: Any) -> str | None:
    """A scalar's text ("" for null), or None for anything else."""
    if not isinstance(node, _nodes().ScalarNode):
        return None
    if str(node.tag) == _NULL:
        return ""
    # ruamel marks where a folded scalar was folded with BEL; the value has none.
    return str(node.value).replace("\a", "") if node.style == ">" else str(node.value)


def _block_pairs(node: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(node, _nodes().MappingNode) and not node.flow_style:
        for knode, vnode in node.value:
            yield knode, vnode
            yield from _block_pairs(vnode)
    elif isinstance(node, _nodes().SequenceNode) and not node.flow_style:
        for item in node.value:
            yield from _block_pairs(item)


# -- scalars --------------------------------------------------------------------------------------


def _raw(section: str, value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii") if section == "data" else value


def _printable(char: str) -> bool:
    """Whether YAML lets ``char`` stand as itself in a quoted scalar (and no reader breaks it)."""
    o = ord(char)
    return (
        0x20 <= o <= 0x7E
        or (0xA0 <= o <= 0xD7FF and o not in (0x2028, 0x2029))
        or (0xE000 <= o <= 0xFFFD and o != 0xFEFF)
        or o >= 0x10000
    )


def _double(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif _printable(char):
            out.append(char)
        elif char in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[char])
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02X}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(f"\\U{ord(char):08X}")
    return '"' + "".join(out) + '"'


def _single(text: str) -> str | None:
    return "'" + text.replace("'", "''") + "'" if all(map(_printable, text)) else None


def _plain(text: str) -> str | None:
    """``text`` unquoted, when every YAML reader (1.1 as kubectl, 1.2) takes it as that string."""
    if (
        not text
        or text != text.strip()
        or not all(map(_printable, text))
        or text[0] in "-?:,[]{}#&*!|>'\"%@`"
        or any(c in text for c in ",[]{}")
        or ": " in text
        or " #" in text
        or text.endswith(":")
    ):
        return None
    from ruamel.yaml.nodes import ScalarNode
    from ruamel.yaml.resolver import VersionedResolver

    for version in ((1, 1), (1, 2)):
        tag = VersionedResolver(version=version).resolve(ScalarNode, text, (True, False))
        if str(tag) != _STR:
            return None
    return text


def _block(text: str, style: str, indent: str, newline: str) -> str | None:
    body = text.rstrip("\n")
    trailing = len(text) - len(body)
    lines = body.split("\n")
    if (
        not body
        or not all(_printable(c) or c == "\n" for c in text)
        or any(ln[:1] in (" ", "\t") for ln in lines)
        or (style == ">" and len(lines) > 1)
    ):
        return None
    chomp = "-" if trailing == 0 else ("" if trailing == 1 else "+")
    content = "".join((indent + ln if ln else "") + newline for ln in lines)
    return style + chomp + newline + content + newline * max(0, trailing - 1)


def _candidates(raw: str, style: str | None, indent: str, newline: str) -> list[str]:
    """Ways to write ``raw``, the old style first; double quotes (always exact) last."""
    first: str | None = None
    if style == "'":
        first = _single(raw)
    elif style in ("|", ">"):
        first = _block(raw, style, indent, newline)
    elif style is None:
        first = _plain(raw)
    return [c for c in (first, _double(raw)) if c is not None]


def _key_text(key: str) -> str:
    return key if _PLAIN_KEY.fullmatch(key) and _plain(key) == key else _double(key)


def _flow_entry(path: list[str], value: str) -> str:
    text = f"{_key_text(path[-1])}: {value}"
    for key in reversed(path[:-1]):
        text = f"{_key_text(key)}: {{{text}}}"
    return text
