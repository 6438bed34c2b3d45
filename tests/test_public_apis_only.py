"""The library uses the public API of its dependencies only: no ``_private`` attribute anywhere.

A dependency's private attribute (hvac's ``adapter._kwargs``, urllib3's ``pool._get_conn``) can
change in any release, and the breakage shows up as a slowdown or a wrong answer, not an error.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "yosai_secrets"

# Private attributes of our own objects, reached from outside ``self`` on purpose.
OWN = {("secret.py", "other._value")}


def test_no_private_attribute_of_another_object_is_used() -> None:
    """Every ``x._name`` in src/ is on self/cls or listed as one of our own objects."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                continue
            if node.attr.startswith("__") and node.attr.endswith("__"):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if (path.name, ast.unparse(node)) not in OWN:
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []
