"""The in-place text edits of a Secret manifest: splice, replace, insert, remove, read back.

:class:`ManifestText` holds the file's text and its composed Secrets; :class:`~.manifest.
SecretManifest` builds its reading and writing on these edits. Each edit is kept only if the
file still parses to the same Secrets and the change reads back as intended.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .yaml_text import (
    block_pairs,
    candidates,
    child,
    flow_entry,
    is_mapping,
    is_null,
    key_text,
    nodes,
    pair_of,
    scalar_style,
    scalar_text,
)


class ManifestText:
    """The text of a manifest and the edits that keep every other byte as it was."""

    path: Path
    _text: str
    _newline: str
    _secrets: list[Any]

    def _load(self, text: str) -> None:
        raise NotImplementedError

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
        if not isinstance(vnode, nodes().ScalarNode):
            raise ConfigurationError(f"{what} in {self.path} is not a string")
        style = scalar_style(vnode)
        start, end = vnode.start_mark.index, vnode.end_mark.index
        lead = ""
        if is_null(vnode) and vnode.value == "":  # ``KEY:`` and nothing: write after the colon
            start = end = self._after_colon(knode)
            lead, style = " ", None
        tail = self._newline if style in ("|", ">") and self._text[end - 1 : end] == "\n" else ""
        indent = self._block_indent(knode, vnode) if style in ("|", ">") else ""
        for text in candidates(raw, style, indent, self._newline):
            block = text[:1] in ("|", ">")
            if self._edit(start, end, lead + text + ("" if block else tail), check):
                return
        raise ConfigurationError(f"cannot write {what} into {self.path} so that it reads back")

    def _set_annotation(self, index: int, name: str, value: str | None) -> None:
        meta = child(self._secrets[index], "metadata")
        annotations = child(meta, "annotations")
        pair = pair_of(annotations, name)
        others = {
            k.value: scalar_text(v)
            for k, v in (annotations.value if is_mapping(annotations) else [])
            if k.value != name
        }

        def check() -> bool:
            now = child(child(self._secrets[index], "metadata"), "annotations")
            rest = {k.value: scalar_text(v) for k, v in (now.value if is_mapping(now) else [])}
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
            pair = pair_of(mapping, path[depth])
            if pair is None:
                break
            depth += 1
            if is_mapping(pair[1]) and pair[1].value:
                mapping = pair[1]
            elif is_null(pair[1]) or is_mapping(pair[1]):
                hollow = pair
                break
            else:
                raise ConfigurationError(f"{path[depth - 1]} in {self.path} is not a mapping")
        missing = path[depth:]
        if style in ("|", ">"):
            style = '"'
        for text in candidates(raw, style, "", self._newline):
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
            entry = flow_entry([*missing, leaf], value)
            if not pairs:
                close = mapping.end_mark.index - 1
                return close, close, entry
            at = self._entry_end(*pairs[-1], line=False)
            return at, at, ", " + entry
        knode, vnode = (pair_of(mapping, after) if after else None) or pairs[-1]
        at = self._entry_end(knode, vnode)
        return self._lines(at, self._indent_of(knode), missing, leaf, value)

    def _fill(
        self, pair: Any, in_flow: bool, missing: list[str], leaf: str, value: str
    ) -> tuple[int, int, str]:
        knode, vnode = pair
        entry = "{" + flow_entry([*missing, leaf], value) + "}"
        if is_mapping(vnode):  # ``{}``
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
        lines = [f"{indent}{step * i}{key_text(k)}:" for i, k in enumerate(missing)]
        lines.append(f"{indent}{step * len(missing)}{key_text(leaf)}: {value}")
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
            knode, vnode = pair_of(*owner)  # type: ignore[misc]
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
        while isinstance(vnode, nodes().CollectionNode) and not vnode.flow_style and vnode.value:
            last = vnode.value[-1]
            knode, vnode = last if isinstance(last, tuple) else (None, last)
        at: int
        if is_null(vnode) and vnode.value == "" and knode is not None:
            at = self._after_colon(knode)
        else:
            at = vnode.end_mark.index
            if scalar_style(vnode) in ("|", ">") and self._text[at - 1 : at] == "\n":
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
            for knode, vnode in block_pairs(doc):
                if is_mapping(vnode) and not vnode.flow_style and vnode.value:
                    step = int(vnode.value[0][0].start_mark.column - knode.start_mark.column)
                    if step > 0:
                        return step
        return 2


# -- nodes ----------------------------------------------------------------------------------------
