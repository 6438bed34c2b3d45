"""The Secret manifest, generated values and the SECRET_KEY_FALLBACKS format."""

from __future__ import annotations

import base64
import difflib
import stat
from pathlib import Path

import pytest

from yosai_secrets.errors import ConfigurationError
from yosai_secrets.rotation import (
    RotationEngine,
    RotationOptions,
    format_fallbacks,
    generate_value,
    parse_fallbacks,
)
from yosai_secrets.rotation.manifest import SecretManifest

from .rotation_support import EXAMPLE

MULTI = """\
# leading comment stays
apiVersion: v1
kind: ConfigMap
metadata:
  name: other   # not a Secret
data:
  SECRET_KEY: not-this-one
---
apiVersion: v1
kind: Secret
metadata:
  name: api
type: Opaque
stringData:
  # the signing key
  SECRET_KEY: 'old-signing-key'
  DB_USER: app
  DB_PASSWORD: "old-db-password"   # trailing comment
  AUTH0_DOMAIN: tenant.example
data:
  REDIS_PASSWORD: {redis}
  TLS_NOTE: {note}
---
apiVersion: v1
kind: Service
metadata:
  name: api
"""


def _multi(tmp_path: Path) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(
        MULTI.format(
            redis=base64.b64encode(b"old-redis").decode(),
            note=base64.b64encode(b"keep me").decode(),
        ),
        encoding="utf-8",
    )
    return path


def _options(path: Path, **kw: object) -> RotationOptions:
    return RotationOptions(manifest=path, apply=False, environ={}, **kw)  # type: ignore[arg-type]


def test_only_rotated_keys_change_in_a_multi_document_file(tmp_path: Path) -> None:
    """Comments, order, quoting, other documents and other keys survive a rotation unchanged."""
    path = _multi(tmp_path)
    before = path.read_text(encoding="utf-8").splitlines()
    RotationEngine(_options(path)).rotate()
    after = path.read_text(encoding="utf-8").splitlines()
    diff = [line for line in difflib.ndiff(before, after) if line[:2] in ("- ", "+ ")]
    allowed = (
        "SECRET_KEY:",
        "SECRET_KEY_FALLBACKS:",
        "DB_PASSWORD:",
        "REDIS_PASSWORD:",
        "annotations:",
        "rotation.yosai.io/",
    )
    assert all(line[2:].strip().startswith(allowed) for line in diff), diff
    assert sum(line.startswith("- ") for line in diff) == 3  # exactly the three rotated values
    text = "\n".join(after)
    for kept in (
        "# leading comment stays",
        "# the signing key",
        "# trailing comment",
        "SECRET_KEY: not-this-one",
        "kind: Service",
        "AUTH0_DOMAIN: tenant.example",
    ):
        assert kept in text
    assert 'DB_PASSWORD: "' in text and "SECRET_KEY: '" in text  # quoting style kept


def test_base64_data_stays_base64_and_annotations_record_the_time(tmp_path: Path) -> None:
    """A key under data: gets a base64 value; each rotated key gets a rotation-time annotation."""
    path = _multi(tmp_path)
    RotationEngine(_options(path)).rotate()
    manifest = SecretManifest(path)
    new_redis = manifest.get("REDIS_PASSWORD")
    assert new_redis != "old-redis" and len(new_redis) >= 43
    assert manifest.get("TLS_NOTE") == "keep me"
    for key in ("SECRET_KEY", "DB_PASSWORD", "REDIS_PASSWORD"):
        stamp = manifest.annotation(key)
        assert stamp and stamp.endswith("Z") and stamp.startswith("20")
    assert manifest.get("SECRET_KEY_FALLBACKS") == '["old-signing-key"]'


def test_saved_manifest_is_private(tmp_path: Path) -> None:
    """The rotated manifest and its journal are written with mode 0600."""
    path = _multi(tmp_path)
    path.chmod(0o644)
    RotationEngine(_options(path)).rotate()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    journal = path.with_name(path.name + ".journal.json")
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600


def test_fallbacks_never_become_characters() -> None:
    """A bare string is one key, a JSON list is a list, and Flask's parser reads our format."""
    from yosai_secrets.flask import parse_fallbacks as flask_parse

    assert parse_fallbacks("single-old-key") == ["single-old-key"]
    assert parse_fallbacks('["a", "b"]') == ["a", "b"]
    assert parse_fallbacks("a, b") == ["a", "b"]
    assert parse_fallbacks("") == [] and parse_fallbacks(None) == []
    stored = format_fallbacks(["k1", "k2", "k1"])
    assert parse_fallbacks(stored) == ["k1", "k2"]
    assert flask_parse(stored) == ["k1", "k2"]
    with pytest.raises(ConfigurationError):
        parse_fallbacks("[not json")


def test_generated_values_have_at_least_256_bits() -> None:
    """Generated values come from secrets with at least 256 bits, and never repeat."""
    values = {generate_value() for _ in range(200)}
    assert len(values) == 200
    assert all(len(base64.urlsafe_b64decode(v + "==")) >= 32 for v in values)
    with pytest.raises(ValueError):
        generate_value(16)


def test_example_manifest_has_the_documented_keys() -> None:
    """The shipped example is a Secret with placeholders for every documented key."""
    manifest = SecretManifest(EXAMPLE)
    keys = manifest.keys()
    for key in (
        "SECRET_KEY",
        "SECRET_KEY_FALLBACKS",
        "DB_USER",
        "DB_PASSWORD",
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "AUTH0_DOMAIN",
        "AUTH0_AUDIENCE",
    ):
        assert key in keys
    assert parse_fallbacks(manifest.get("SECRET_KEY_FALLBACKS")) == []


def test_repr_never_shows_values(tmp_path: Path) -> None:
    """Neither the manifest nor the journal shows a value in its repr."""
    path = _multi(tmp_path)
    manifest = SecretManifest(path)
    assert "old-signing-key" not in repr(manifest)
    RotationEngine(_options(path)).rotate()
    from yosai_secrets.rotation.journal import Journal

    journal = Journal.load(path.with_name(path.name + ".journal.json"))
    assert journal is not None
    text = repr(journal)
    assert "old-signing-key" not in text
    assert all(v not in text for v in journal.data["new"].values())
