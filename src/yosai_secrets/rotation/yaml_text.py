"""YAML as text: how a string is written so that every reader reads it back the same, and
small helpers over the nodes ruamel.yaml composes (positions, styles, pairs).

Used by :mod:`.manifest` to edit a Secret manifest in place; nothing here reads or writes files.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any, Final

__all__ = [
    "block",
    "block_pairs",
    "candidates",
    "child",
    "double",
    "flow_entry",
    "is_mapping",
    "is_null",
    "key_text",
    "nodes",
    "pair_of",
    "plain",
    "printable",
    "raw",
    "scalar_style",
    "scalar_text",
    "single",
]

STR_TAG: Final = "tag:yaml.org,2002:str"
NULL_TAG: Final = "tag:yaml.org,2002:null"
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


def nodes() -> Any:
    """The ruamel.yaml node classes (imported when first needed)."""
    from ruamel.yaml import nodes

    return nodes


def is_mapping(node: Any) -> bool:
    """Whether ``node`` is a mapping node."""
    return isinstance(node, nodes().MappingNode)


def is_null(node: Any) -> bool:
    """Whether ``node`` is a null scalar (``~``, ``null`` or nothing)."""
    return isinstance(node, nodes().ScalarNode) and str(node.tag) == NULL_TAG


def scalar_style(node: Any) -> str | None:
    """A scalar's style: ``'``, ``"``, ``|``, ``>``, or None for plain."""
    return getattr(node, "style", None) or None


def pair_of(mapping: Any, key: str) -> tuple[Any, Any] | None:
    """The last ``(key node, value node)`` of ``key`` in ``mapping`` (as JSON readers keep)."""
    if not is_mapping(mapping):
        return None
    found = None
    for knode, vnode in mapping.value:
        if isinstance(knode, nodes().ScalarNode) and knode.value == key:
            found = (knode, vnode)
    return found


def child(mapping: Any, key: str) -> Any:
    """The value node of ``key`` in ``mapping``, or None."""
    pair = pair_of(mapping, key)
    return pair[1] if pair is not None else None


def scalar_text(node: Any) -> str | None:
    """A scalar's text ("" for null), or None for anything else."""
    if not isinstance(node, nodes().ScalarNode):
        return None
    if str(node.tag) == NULL_TAG:
        return ""
    # ruamel marks where a folded scalar was folded with BEL; the value has none.
    return str(node.value).replace("\a", "") if node.style == ">" else str(node.value)


def block_pairs(node: Any) -> Iterator[tuple[Any, Any]]:
    """A block mapping's (key node, value node) pairs, in order."""
    if isinstance(node, nodes().MappingNode) and not node.flow_style:
        for knode, vnode in node.value:
            yield knode, vnode
            yield from block_pairs(vnode)
    elif isinstance(node, nodes().SequenceNode) and not node.flow_style:
        for item in node.value:
            yield from block_pairs(item)


# -- scalars --------------------------------------------------------------------------------------


def raw(section: str, value: str) -> str:
    """``value`` as stored in ``section``: base64 under ``data``, as is under ``stringData``."""
    return base64.b64encode(value.encode("utf-8")).decode("ascii") if section == "data" else value


def printable(char: str) -> bool:
    """Whether YAML lets ``char`` stand as itself in a quoted scalar (and no reader breaks it)."""
    o = ord(char)
    return (
        0x20 <= o <= 0x7E
        or (0xA0 <= o <= 0xD7FF and o not in (0x2028, 0x2029))
        or (0xE000 <= o <= 0xFFFD and o != 0xFEFF)
        or o >= 0x10000
    )


def double(text: str) -> str:
    """``text`` double-quoted, escaped so that every reader reads it back exactly."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif printable(char):
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


def single(text: str) -> str | None:
    """``text`` single-quoted, when it has nothing single quotes cannot hold."""
    return "'" + text.replace("'", "''") + "'" if all(map(printable, text)) else None


def plain(text: str) -> str | None:
    """``text`` unquoted, when every YAML reader (1.1 as kubectl, 1.2) takes it as that string."""
    if (
        not text
        or text != text.strip()
        or not all(map(printable, text))
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
        if str(tag) != STR_TAG:
            return None
    return text


def block(text: str, style: str, indent: str, newline: str) -> str | None:
    """``text`` as a literal or folded block scalar, when it can be one exactly."""
    body = text.rstrip("\n")
    trailing = len(text) - len(body)
    lines = body.split("\n")
    if (
        not body
        or not all(printable(c) or c == "\n" for c in text)
        or any(ln[:1] in (" ", "\t") for ln in lines)
        or (style == ">" and len(lines) > 1)
    ):
        return None
    chomp = "-" if trailing == 0 else ("" if trailing == 1 else "+")
    content = "".join((indent + ln if ln else "") + newline for ln in lines)
    return style + chomp + newline + content + newline * max(0, trailing - 1)


def candidates(raw: str, style: str | None, indent: str, newline: str) -> list[str]:
    """Ways to write ``raw``, the old style first; double quotes (always exact) last."""
    first: str | None = None
    if style == "'":
        first = single(raw)
    elif style in ("|", ">"):
        first = block(raw, style, indent, newline)
    elif style is None:
        first = plain(raw)
    return [c for c in (first, double(raw)) if c is not None]


def key_text(key: str) -> str:
    """A mapping key as written: plain when safe, else double-quoted."""
    return key if _PLAIN_KEY.fullmatch(key) and plain(key) == key else double(key)


def flow_entry(path: list[str], value: str) -> str:
    """``a: {b: value}`` for the key path ``[a, b]``, in flow style."""
    text = f"{key_text(path[-1])}: {value}"
    for key in reversed(path[:-1]):
        text = f"{key_text(key)}: {{{text}}}"
    return text
