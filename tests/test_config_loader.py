"""The configuration loader: safe YAML only, layering, file discovery and clean rejections."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from yosai_secrets.config import ConfigManager
from yosai_secrets.config.loader import deep_merge, find_config_files, load_yaml_text
from yosai_secrets.errors import ConfigurationError

STRONG = "Zq8vN2kP5tR7wY1aB4cD6eF9gH3jK0mLxQ"

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    target.write_text(text, encoding="utf-8")
    return target


def test_python_tag_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    """A !!python/object tag is refused with the file and line, and nothing is constructed."""
    bad = _write(
        tmp_path,
        "production.yaml",
        "database:\n  host: db\n  password: !!python/object/apply:os.system ['touch pwned']\n",
    )
    with pytest.raises(ConfigurationError) as info:
        ConfigManager(bad, env="test", environ={"SECRET_KEY": STRONG})
    message = str(info.value)
    assert "production.yaml" in message
    assert "line 3" in message
    assert "python/object" in message
    assert not (tmp_path / "pwned").exists()


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    """Two equal keys in one mapping are an error naming the key and file, not a silent override."""
    bad = _write(tmp_path, "test.yaml", "database:\n  host: a\n  port: 1\n  host: b\n")
    with pytest.raises(ConfigurationError) as info:
        ConfigManager(bad, env="test", environ={"SECRET_KEY": STRONG})
    assert "duplicate key 'host'" in str(info.value)
    assert "test.yaml" in str(info.value)
    assert "line 4" in str(info.value)


def test_merge_keys_may_repeat_merged_names() -> None:
    """A '<<' merge followed by an explicit override is normal YAML, not a duplicate."""
    data = load_yaml_text(
        "defaults: &d {host: a, port: 1}\ndatabase:\n  <<: *d\n  host: b\n", source="x.yaml"
    )
    assert data["database"] == {"host": "b", "port": 1}


@pytest.mark.parametrize(
    ("text", "kind"), [("- a\n- b\n", "a list"), ("just text\n", "a single value")]
)
def test_non_mapping_top_level_is_refused(tmp_path: Path, text: str, kind: str) -> None:
    """A file whose top level is a list or a scalar is refused, saying what it holds."""
    bad = _write(tmp_path, "test.yaml", text)
    with pytest.raises(ConfigurationError) as info:
        ConfigManager(bad, env="test", environ={"SECRET_KEY": STRONG})
    assert "test.yaml" in str(info.value)
    assert kind in str(info.value)


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    """An alias bomb is refused in well under a second of CPU, naming the file."""
    bad = _write(tmp_path, "test.yaml", BILLION_LAUGHS)
    # This thread's CPU time, which a loaded machine does not stretch (it takes milliseconds;
    # walking the expansion would take minutes).
    start = time.thread_time()
    with pytest.raises(ConfigurationError) as info:
        ConfigManager(bad, env="test", environ={"SECRET_KEY": STRONG})
    assert time.thread_time() - start < 1.0
    assert "test.yaml" in str(info.value)
    assert "alias" in str(info.value)


def test_many_aliases_are_refused() -> None:
    """More aliases than any configuration needs are refused even if each expands little."""
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * 150) + "]\n"
    with pytest.raises(ConfigurationError, match="aliases"):
        load_yaml_text(text, source="many.yaml")


def test_recursive_alias_is_refused() -> None:
    """A node that contains itself through an alias is refused, not walked forever."""
    with pytest.raises(ConfigurationError, match="recursive"):
        load_yaml_text("a: &a [1, *a]\n", source="loop.yaml")


def test_syntax_error_does_not_quote_the_line() -> None:
    """A YAML syntax error names the line but does not echo the text (it may hold a secret)."""
    with pytest.raises(ConfigurationError) as info:
        load_yaml_text("database:\n  password: 'canary-abc123\n  x: [\n", source="bad.yaml")
    assert "bad.yaml" in str(info.value)
    assert "canary-abc123" not in str(info.value)
    assert info.value.__cause__ is None


def test_empty_file_is_an_empty_configuration() -> None:
    """An empty file (or only comments) is an empty mapping."""
    assert load_yaml_text("# nothing yet\n", source="e.yaml") == {}


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    """Mappings merge key by key; lists and scalars of the later layer replace the earlier."""
    merged = deep_merge(
        {"db": {"host": "a", "port": 1}, "list": [1, 2]},
        {"db": {"host": "b"}, "list": [3]},
    )
    assert merged == {"db": {"host": "b", "port": 1}, "list": [3]}


def test_layers_base_then_environment(tmp_path: Path) -> None:
    """base.yaml is loaded first and <env>.yaml merged over it."""
    _write(tmp_path, "base.yaml", "app: {name: y, port: 1}\ndatabase: {host: base}\n")
    _write(tmp_path, "staging.yaml", "database: {host: staging}\n")
    cfg = ConfigManager(tmp_path, env="staging", environ={"SECRET_KEY": STRONG})
    assert cfg.get("database.host") == "staging"
    assert cfg.get("app.port") == 1
    assert [f.name for f in cfg.files] == ["base.yaml", "staging.yaml"]


def test_config_dir_and_file_from_environment(tmp_path: Path) -> None:
    """YOSAI_CONFIG_DIR picks the directory; YOSAI_CONFIG_FILE one file, and wins."""
    _write(tmp_path / "d", "test.yaml", "app: {name: from-dir}\n")
    single = _write(tmp_path, "one.yaml", "app: {name: from-file}\n")
    env = {"SECRET_KEY": STRONG, "YOSAI_CONFIG_DIR": str(tmp_path / "d")}
    assert ConfigManager(env="test", environ=env).get("app.name") == "from-dir"
    env["YOSAI_CONFIG_FILE"] = str(single)
    assert ConfigManager(env="test", environ=env).get("app.name") == "from-file"


def test_missing_named_file_is_an_error(tmp_path: Path) -> None:
    """A configuration file named explicitly that does not exist is an error naming it."""
    with pytest.raises(ConfigurationError, match=r"nope\.yaml"):
        find_config_files(None, "test", {"YOSAI_CONFIG_FILE": str(tmp_path / "nope.yaml")})
    with pytest.raises(ConfigurationError, match=r"other\.yaml"):
        find_config_files(tmp_path / "other.yaml", "test", {})


def test_missing_directory_gives_no_files(tmp_path: Path) -> None:
    """A configuration directory that does not exist gives no files (secrets come from env)."""
    assert find_config_files(None, "test", {"YOSAI_CONFIG_DIR": str(tmp_path / "none")}) == []
