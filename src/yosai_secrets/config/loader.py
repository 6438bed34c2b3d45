"""Find the configuration files, load each one safely, and deep-merge them.

Only plain YAML is accepted (``yaml.safe_load`` semantics): no Python tags. On top of that the
loader refuses what ``safe_load`` lets through but a configuration file never needs: duplicate
keys (the later one silently wins in PyYAML), a top level that is not a mapping, and alias bombs
("billion laughs": a few lines whose aliases expand to billions of nodes once walked). Errors name
the file, the line and the problem, never the text around it (which may hold a secret).
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

from ..errors import ConfigurationError

__all__ = [
    "MAX_ALIASES",
    "MAX_CONFIG_FILE_BYTES",
    "MAX_EXPANDED_NODES",
    "Layer",
    "deep_merge",
    "find_config_files",
    "load_yaml_file",
    "load_yaml_text",
]

MAX_CONFIG_FILE_BYTES: Final = 1024 * 1024
#: Real configuration files use a handful of anchors (``<<: *defaults``); a bomb needs many.
MAX_ALIASES: Final = 100
#: Nodes the document would have with every alias expanded; a big configuration has a few thousand.
MAX_EXPANDED_NODES: Final = 100_000

_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class Layer:
    """One loaded configuration file: where it is, and its top-level mapping."""

    path: Path
    data: dict[str, Any]


# libyaml's parser and composer when PyYAML was built with it (ten times faster), else PyYAML's.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader (libyaml's when available) that refuses duplicate keys."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Checked before SafeLoader flattens `<<` merges, whose keys may legitimately repeat.
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable: SafeLoader reports it
            if duplicate:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _check_aliases(root: Node, source: str) -> None:
    """Refuse alias bombs: too many aliases, too many nodes once expanded, or a cycle.

    Both composers represent an alias as the very node object it refers to, so a node reached a
    second time is an alias; sizes are memoised per node, so the walk itself never expands.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    aliases = 0

    def size(node: Node) -> int:
        nonlocal aliases
        known = sizes.get(id(node))
        if known is not None:
            aliases += 1
            if aliases > MAX_ALIASES:
                raise ConfigurationError(
                    f"configuration file {source} uses more than {MAX_ALIASES} aliases "
                    "(a YAML alias bomb?); refused"
                )
            return known
        if id(node) in active:
            raise ConfigurationError(
                f"configuration file {source} has a recursive alias (a node that contains itself)"
            )
        active.add(id(node))
        total = 1
        if isinstance(node, SequenceNode):
            for child in node.value:
                total += size(child)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                total += size(key) + size(value)
        active.discard(id(node))
        sizes[id(node)] = total
        return total

    if size(root) > MAX_EXPANDED_NODES:
        raise ConfigurationError(
            f"configuration file {source} expands to more than {MAX_EXPANDED_NODES} nodes "
            "through its aliases (a YAML alias bomb?); refused"
        )


def load_yaml_text(text: str, *, source: str) -> dict[str, Any]:
    """Parse one configuration document; ``source`` names it in errors.

    Raises:
        ConfigurationError: the text is not plain YAML holding a mapping, has duplicate keys, a
            Python tag, or too many aliases; the message names ``source`` and the line.
    """
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}
        _check_top_level(node, source)
        if "&" in text:  # without an anchor there can be no alias, so nothing to expand
            _check_aliases(node, source)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _marked_error(exc, source) from None
    except yaml.YAMLError:
        raise ConfigurationError(
            f"configuration file {source} is not valid YAML (it holds a character YAML does not "
            "allow); check its encoding"
        ) from None
    except RecursionError:
        raise ConfigurationError(
            f"configuration file {source} is nested too deeply to be a configuration file"
        ) from None
    finally:
        loader.dispose()
    _check_section_names(data, source)
    return dict(data)


def _check_top_level(node: Node, source: str) -> None:
    if not isinstance(node, MappingNode):
        kind = "a list" if isinstance(node, SequenceNode) else "a single value"
        raise ConfigurationError(
            f"configuration file {source} must hold a mapping of sections at the top level "
            f"(e.g. 'database:'), not {kind}"
        )


def _marked_error(exc: yaml.MarkedYAMLError, source: str) -> ConfigurationError:
    """The error for YAML that does not parse: the file, the line and the problem."""
    # Never str(exc): PyYAML quotes the offending source line, which may hold a secret.
    mark = exc.problem_mark or exc.context_mark
    where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = exc.problem or exc.context or "invalid YAML"
    hint = ""
    if "constructor for the tag" in problem:
        hint = "; only plain YAML is allowed (safe_load): Python and custom tags are refused"
    return ConfigurationError(f"configuration file {source}{where}: {problem}{hint}")


def _check_section_names(data: Mapping[Any, Any], source: str) -> None:
    for key in data:
        if not isinstance(key, str):
            raise ConfigurationError(
                f"configuration file {source}: top-level key {key!r} is not a string; "
                "section names must be text"
            )


def load_yaml_file(path: Path) -> Layer:
    """Read and parse the configuration file at ``path``.

    A file unchanged since it was last parsed (same inode, size, modification and change times)
    is not parsed again: its tree is copied from a small cache. Configuration files rarely change
    while a process runs, and parsing is a quarter of a configuration load's cost. Only a regular
    file is read, and at most :data:`MAX_CONFIG_FILE_BYTES` of it: a FIFO or a device is refused
    at once (never waited on, never read without end).

    Raises:
        ConfigurationError: the file is missing, not a regular file, unreadable, too large, not
            UTF-8 or not safe YAML.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigurationError(f"configuration file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None
    try:
        info = os.fstat(fd)
        _check_kind_and_size(path, info.st_mode, info.st_size)
        stamp = (str(path), info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        parsed = _PARSED.get(stamp)
        if parsed is not None:
            return Layer(path, _copy_tree(parsed))
        raw = os.read(fd, MAX_CONFIG_FILE_BYTES + 1)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    finally:
        os.close(fd)
    _check_kind_and_size(path, stat.S_IFREG, len(raw))  # it may have grown since fstat
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"configuration file {path} is not UTF-8 text") from None
    data = load_yaml_text(text, source=str(path))
    _PARSED.put(stamp, data)
    return Layer(path, _copy_tree(data))


def _check_kind_and_size(path: Path, mode: int, size: int) -> None:
    if not stat.S_ISREG(mode):
        raise ConfigurationError(
            f"configuration file {path} is not a regular file (a directory, a FIFO or a "
            "device); point it at the YAML file"
        )
    if size > MAX_CONFIG_FILE_BYTES:
        raise ConfigurationError(
            f"configuration file {path} is {size} bytes or more, more than the "
            f"{MAX_CONFIG_FILE_BYTES}-byte limit; is this the right file?"
        )


def _unreadable(path: Path, exc: OSError | ValueError) -> ConfigurationError:
    reason = getattr(exc, "strerror", None) or "its name holds a NUL byte"
    return ConfigurationError(
        f"configuration file {path} cannot be read ({reason}); check its permissions"
    )


class _ParsedFiles:
    """The last few parsed files, by their stat stamp (bounded; thread-safe)."""

    _MAX: Final = 32

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trees: dict[tuple[Any, ...], dict[str, Any]] = {}

    def get(self, stamp: tuple[Any, ...]) -> dict[str, Any] | None:
        return self._trees.get(stamp)

    def put(self, stamp: tuple[Any, ...], tree: dict[str, Any]) -> None:
        with self._lock:
            stale = [k for k in self._trees if k[0] == stamp[0]]  # older versions of the file
            for key in stale:
                del self._trees[key]
            while len(self._trees) >= self._MAX:
                del self._trees[next(iter(self._trees))]
            self._trees[stamp] = tree


_PARSED: Final = _ParsedFiles()


def _copy_tree(value: Any) -> Any:
    """A copy of a parsed tree's mappings and lists (scalars are immutable and shared)."""
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_tree(v) for v in value]
    return value


def _first_existing(directory: Path, stem: str) -> Path | None:
    for suffix in (".yaml", ".yml"):
        candidate = directory / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
        if candidate.is_symlink() or candidate.exists():
            # Skipping it would load the environment without its own file, silently.
            raise ConfigurationError(
                f"configuration file {candidate} is not a regular file (a directory, a FIFO, a "
                "device or a broken link); make it the YAML file or remove it"
            )
    return None


def find_config_files(
    path: str | os.PathLike[str] | None, env: str, environ: Mapping[str, str]
) -> list[Path]:
    """Return the files to load, lowest precedence first.

    ``path`` (a file or a directory), else ``YOSAI_CONFIG_FILE``, else the directory
    ``YOSAI_CONFIG_DIR``, else ``./config``. A directory gives ``base.yaml`` (optional) and then
    ``<env>.yaml`` (optional: secrets may all come from the environment); a missing directory gives
    no file at all, and validation then says what is missing.

    Raises:
        ConfigurationError: a file named explicitly does not exist.
    """
    if path is not None:
        target = Path(path)
        if target.is_dir() and target.suffix not in (".yaml", ".yml"):
            directory = target
        elif target.exists() or target.suffix in (".yaml", ".yml"):
            if not target.exists():
                raise ConfigurationError(f"configuration file {target} does not exist")
            return [target]  # not a regular file: load_yaml_file says so
        else:
            directory = target
    elif environ.get("YOSAI_CONFIG_FILE", "").strip():
        target = Path(environ["YOSAI_CONFIG_FILE"].strip())
        if not target.exists():
            raise ConfigurationError(
                f"YOSAI_CONFIG_FILE names {target}, which does not exist; fix it or unset it"
            )
        return [target]
    else:
        directory = Path(environ.get("YOSAI_CONFIG_DIR", "").strip() or "config")
    if not directory.is_dir():
        return []
    files = [_first_existing(directory, "base"), _first_existing(directory, env)]
    return [f for f in files if f is not None]


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``: mappings recursively, anything else replaced."""
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(below, value)
        else:
            merged[key] = value
    return merged
