"""Parsed configuration files are reused only while the file is unchanged, and never shared."""

from __future__ import annotations

import os
from pathlib import Path

from yosai_secrets.config.loader import load_yaml_file


def test_an_edited_file_is_parsed_again_even_at_the_same_size(tmp_path: Path) -> None:
    """A rewrite of the same length (and even the same mtime) is seen on the next load."""
    path = tmp_path / "base.yaml"
    path.write_text("app: {name: aaaa}\n")
    assert load_yaml_file(path).data == {"app": {"name": "aaaa"}}
    before = path.stat()
    path.write_text("app: {name: bbbb}\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same mtime
    assert load_yaml_file(path).data == {"app": {"name": "bbbb"}}


def test_a_changed_tree_does_not_change_the_next_load(tmp_path: Path) -> None:
    """Each load returns its own copy: writing into one never reaches the cache."""
    path = tmp_path / "base.yaml"
    path.write_text("app: {name: x, hosts: [a, b]}\n")
    first = load_yaml_file(path).data
    first["app"]["name"] = "changed"
    first["app"]["hosts"].append("c")
    assert load_yaml_file(path).data == {"app": {"name": "x", "hosts": ["a", "b"]}}
