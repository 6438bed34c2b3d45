"""Manifest fidelity: a rotation changes the rotated values and annotations, not a byte more."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yosai_secrets.errors import ConfigurationError
from yosai_secrets.rotation.manifest import (
    DIGEST_ANNOTATION,
    SecretManifest,
    annotation_key,
    digest_of,
)

KEYS = ["SECRET_KEY", "DB_USER", "DB_PASSWORD", "AUTH0_DOMAIN", "REDIS_PASSWORD", "API_TOKEN"]
STAMP = "2026-11-29T10:00:00Z"


@dataclass
class Generated:
    """A generated manifest and what the generator knows about it."""

    text: str
    newline: str
    secret_doc: str  # the Secret document's text, exactly as in the file
    other_docs: list[str] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)  # key -> "stringData" | "data"
    values: dict[str, str] = field(default_factory=dict)
    had_annotations: bool = False
    null_annotations: bool = False  # ``annotations:`` with nothing under it
    stamped: list[str] = field(default_factory=list)


def _quote(value: str, style: str) -> str:
    return {"plain": value, "single": f"'{value}'", "double": f'"{value}"'}[style]


@st.composite
def manifests(draw: st.DrawFn) -> Generated:
    """Secret manifests in many shapes: indentation, line endings, comments, blocks, documents."""
    step = " " * draw(st.sampled_from([2, 3, 4]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    comments = draw(st.booleans())
    indented_sequences = draw(st.booleans())
    keys = draw(st.permutations(KEYS))
    keys = keys[: draw(st.integers(min_value=3, max_value=len(keys)))]
    if "SECRET_KEY" not in keys:
        keys = ["SECRET_KEY", *keys]
    in_data = draw(st.sets(st.sampled_from(keys)))
    styles = {k: draw(st.sampled_from(["plain", "single", "double"])) for k in keys}
    annotations = draw(st.sampled_from(["absent", "other", "stamped", "null"]))
    stamped = [k for k in keys if annotations == "stamped" and draw(st.booleans())]
    lines = ["apiVersion: v1", "kind: Secret"]
    if comments:
        lines.insert(0, "# The API's secrets (generated)")
    lines += ["metadata:", f"{step}name: api-secrets   # the name"]
    if draw(st.booleans()):
        lines.append(f"{step}namespace: yosai")
    if draw(st.booleans()):
        lines += [f"{step}labels:", f"{step * 2}app: yosai-api"]
    if draw(st.booleans()):
        dash = f"{step * 2}- " if indented_sequences else f"{step}- "
        lines += [f"{step}finalizers:", f"{dash}example.com/keep"]
    if annotations == "null":
        lines.append(f"{step}annotations:")
    elif annotations != "absent":
        lines += [f"{step}annotations:", f"{step * 2}team: core"]
        lines += [f'{step * 2}{annotation_key(k)}: "never"' for k in stamped]
    lines.append("type: Opaque")
    values = {k: f"old-{k.lower().replace('_', '-')}-value" for k in keys}
    for section in ("stringData", "data"):
        chosen = [k for k in keys if (k in in_data) == (section == "data")]
        if not chosen:
            continue
        lines.append(f"{section}:")
        for key in chosen:
            if comments and draw(st.booleans()):
                lines.append(f"{step}# about {key}")
            raw = values[key]
            if section == "data":
                raw = base64.b64encode(raw.encode()).decode()
            trailing = "   # keep this comment" if comments and draw(st.booleans()) else ""
            lines.append(f"{step}{key}: {_quote(raw, styles[key])}{trailing}")
    secret = newline.join(lines)
    config_map = newline.join(
        [
            "apiVersion: v1",
            "kind: ConfigMap",
            "metadata:",
            f"{step}name: other",
            "data:",
            f"{step}SECRET_KEY: not-a-secret   # same key name, other document",
            f"{step}list: |",
            f"{step * 2}first",
            f"{step * 2}second",
        ]
    )
    deployment = newline.join(
        [
            "apiVersion: apps/v1",
            "kind: Deployment",
            "metadata:",
            f"{step}name: yosai-api",
            "spec:",
            f"{step}template:",
            f"{step * 2}spec:",
            f"{step * 3}containers:",
            f"{step * (4 if indented_sequences else 3)}- name: api",
            f"{step * (4 if indented_sequences else 3)}  image: yosai-secrets:0.1.0",
        ]
    )
    before = draw(st.sampled_from([[], [config_map]]))
    after = draw(st.sampled_from([[], [deployment], [config_map, deployment]]))
    docs = [*before, secret, *after]
    start = "---" + newline if draw(st.booleans()) else ""
    text = start + (newline + "---" + newline).join(docs)
    if draw(st.booleans()):
        text += newline
    return Generated(
        text=text,
        newline=newline,
        secret_doc=secret,
        other_docs=[*before, *after],
        sections={k: ("data" if k in in_data else "stringData") for k in keys},
        values=values,
        had_annotations=annotations in ("other", "stamped"),
        null_annotations=annotations == "null",
        stamped=stamped,
    )


NEW_VALUES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=24
) | st.from_regex(r"[A-Za-z0-9_-]{43,64}", fullmatch=True)


def _owned(line: str, changed: set[str]) -> bool:
    """Whether a rotation may have written ``line``: a changed value or a rotation annotation."""
    text = line.strip()
    return text.startswith(
        (*(f"{k}:" for k in changed), "rotation.yosai.io/", '"rotation.yosai.io/')
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=manifests(), data=st.data())
def test_only_values_and_annotations_change(
    tmp_path_factory: pytest.TempPathFactory, generated: Generated, data: st.DataObject
) -> None:
    """Every line but the set values and the rotation annotations survives, in every shape."""
    path = tmp_path_factory.mktemp("fidelity") / "api-secrets.yaml"
    path.write_bytes(generated.text.encode("utf-8"))
    keys = list(generated.sections)
    changed = data.draw(st.lists(st.sampled_from(keys), min_size=1, unique=True))
    new = {k: data.draw(NEW_VALUES) for k in changed}
    add_fallbacks = "SECRET_KEY" in changed and data.draw(st.booleans())
    if add_fallbacks:
        new["SECRET_KEY_FALLBACKS"] = '["' + generated.values["SECRET_KEY"] + '"]'

    manifest = SecretManifest(path)
    for key, value in new.items():
        manifest.set(key, value, near="SECRET_KEY")
    for key in changed:
        manifest.set_annotation(key, STAMP)
    digest = manifest.set_values_digest(new)
    manifest.save()

    after = path.read_bytes().decode("utf-8")
    nl = generated.newline
    # Line endings and the final newline are the file's own.
    assert after.count("\n") == after.count(nl)
    assert after.endswith(nl) == generated.text.endswith(nl)
    # Every other line is byte for byte what it was.
    owned = set(new)
    kept_before = [ln for ln in generated.text.split(nl) if not _owned(ln, owned)]
    kept_after = [ln for ln in after.split(nl) if not _owned(ln, owned)]
    if not generated.had_annotations:
        kept_after = [ln for ln in kept_after if ln.strip() != "annotations:"]
        kept_before = [ln for ln in kept_before if ln.strip() != "annotations:"]
    assert kept_after == kept_before
    for other in generated.other_docs:
        assert other in after
    if nl == "\n":
        assert "\r" not in after
    # Exactly the changed values' lines (and their old stamps) went; exactly ours came.
    old_lines, new_lines = Counter(generated.text.split(nl)), Counter(after.split(nl))
    secret_lines = generated.secret_doc.split(nl)
    prefixes = (*(f"{k}:" for k in changed), *(annotation_key(k) for k in changed))
    assert old_lines - new_lines == Counter(
        ln for ln in secret_lines if ln.strip().startswith(prefixes)
    )
    added = new_lines - old_lines
    assert all(_owned(ln, owned) or ln.strip() == "annotations:" for ln in added)
    block = 0 if generated.had_annotations or generated.null_annotations else 1
    assert sum(added.values()) == len(changed) * 2 + add_fallbacks + 1 + block

    again = SecretManifest(path)
    for key, value in new.items():
        assert again.get(key) == value
    for key in keys:
        if key not in new:
            assert again.get(key) == generated.values[key]
        assert (again.annotation(key) == STAMP) == (key in changed)
    assert again.recorded_digest() == digest == digest_of(new)
    assert again.values_digest(new) == digest
    # kubectl reads YAML 1.1 (go-yaml): an independent 1.1 reader sees the same strings.
    (secret,) = [d for d in yaml.safe_load_all(after) if d and d.get("kind") == "Secret"]
    for key, value in new.items():
        section = generated.sections.get(key, "stringData")
        if key == "SECRET_KEY_FALLBACKS":
            section = generated.sections["SECRET_KEY"]
        raw = secret[section][key]
        assert (base64.b64decode(raw).decode() if section == "data" else raw) == value
    assert secret["metadata"]["annotations"][DIGEST_ANNOTATION] == digest


@settings(max_examples=40, deadline=None)
@given(generated=manifests())
def test_set_then_restore_is_byte_for_byte(
    tmp_path_factory: pytest.TempPathFactory, generated: Generated
) -> None:
    """Rotating then putting every old value and annotation back gives the original bytes.

    (An empty ``annotations:`` that the rotation filled comes back absent, the same object.)
    """
    expected = generated.text
    if generated.null_annotations:
        lines = expected.split(generated.newline)
        expected = generated.newline.join(ln for ln in lines if ln.strip() != "annotations:")
    path = tmp_path_factory.mktemp("restore") / "api-secrets.yaml"
    path.write_bytes(generated.text.encode("utf-8"))
    manifest = SecretManifest(path)
    old_digest = manifest.recorded_digest()
    stamps = {k: manifest.annotation(k) for k in generated.sections}
    for key in generated.sections:
        manifest.set(key, "n3w-" + key, near="SECRET_KEY")
        manifest.set_annotation(key, STAMP)
    manifest.set("SECRET_KEY_FALLBACKS", '["x"]', near="SECRET_KEY")
    manifest.set_values_digest()
    manifest.save()
    restored = SecretManifest(path)
    restored.remove("SECRET_KEY_FALLBACKS")
    for key, value in generated.values.items():
        restored.set(key, value)
        restored.set_annotation(key, stamps[key])
    restored.set_recorded_digest(old_digest)
    assert restored.render() == expected


def _write(tmp_path: Path, text: str, name: str = "api-secrets.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


SIMPLE = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  SECRET_KEY: old\n"


def test_a_stricter_mode_is_kept(tmp_path: Path) -> None:
    """A 0400 manifest stays 0400 after a save; a looser one becomes 0600."""
    strict = _write(tmp_path, SIMPLE)
    strict.chmod(0o400)
    manifest = SecretManifest(strict)
    manifest.set("SECRET_KEY", "new")
    manifest.save()
    assert stat.S_IMODE(strict.stat().st_mode) == 0o400
    loose = _write(tmp_path, SIMPLE, "loose.yaml")
    loose.chmod(0o644)
    manifest = SecretManifest(loose)
    manifest.set("SECRET_KEY", "new")
    manifest.save()
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


def test_a_symlinked_manifest_is_followed(tmp_path: Path) -> None:
    """Saving through a symlink replaces the target's contents; the link stays a link."""
    target = _write(tmp_path, SIMPLE, "real.yaml")
    target.chmod(0o600)
    link = tmp_path / "api-secrets.yaml"
    link.symlink_to(target.name)
    manifest = SecretManifest(link)
    manifest.set("SECRET_KEY", "new")
    manifest.save()
    assert link.is_symlink() and os.readlink(link) == target.name
    assert SecretManifest(target).get("SECRET_KEY") == "new"
    assert not list(tmp_path.glob(".*yosai-tmp"))


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ("  annotations:\n", '  annotations:\n    rotation.yosai.io/SECRET_KEY: "T"\n'),
        (
            "  annotations: ~  # none yet\n",
            '  annotations:  # none yet\n    rotation.yosai.io/SECRET_KEY: "T"\n',
        ),
        ("  annotations: {}\n", '  annotations: {rotation.yosai.io/SECRET_KEY: "T"}\n'),
        ("  annotations: {a: b}\n", '  annotations: {a: b, rotation.yosai.io/SECRET_KEY: "T"}\n'),
    ],
)
def test_empty_or_flow_annotations_are_filled_in_place(
    tmp_path: Path, annotations: str, expected: str
) -> None:
    """An empty, null or flow-style annotations entry gets the annotation where it stands."""
    text = SIMPLE.replace("  name: s\n", "  name: s\n" + annotations)
    path = _write(tmp_path, text)
    manifest = SecretManifest(path)
    manifest.set_annotation("SECRET_KEY", "T")
    assert manifest.render() == text.replace(annotations, expected)
    assert SecretManifest(path).annotation("SECRET_KEY") is None  # not saved yet
    manifest.save()
    assert SecretManifest(path).annotation("SECRET_KEY") == "T"


def test_removing_the_last_annotation_removes_the_block_it_needed(tmp_path: Path) -> None:
    """An annotations block the rotation added goes away with its last annotation."""
    path = _write(tmp_path, SIMPLE)
    manifest = SecretManifest(path)
    manifest.set_annotation("SECRET_KEY", "T")
    manifest.set_values_digest(["SECRET_KEY"])
    assert "  annotations:\n" in manifest.render()
    manifest.set_annotation("SECRET_KEY", None)
    manifest.set_recorded_digest(None)
    assert manifest.render() == SIMPLE


def test_values_need_quotes_get_them(tmp_path: Path) -> None:
    """A plain value that YAML would read otherwise (a bool, a number, a comment) is quoted."""
    path = _write(tmp_path, SIMPLE)
    manifest = SecretManifest(path)
    for value in (
        "yes",
        "0755",
        "1e3",
        "a #b",
        "x: y",
        "- z",
        "",
        " padded ",
        "tab\there",
        "é\u2028",
    ):
        manifest.set("SECRET_KEY", value)
        assert manifest.get("SECRET_KEY") == value
        loaded = yaml.safe_load(manifest.render())
        assert loaded["stringData"]["SECRET_KEY"] == value


def test_block_scalar_values_keep_their_style(tmp_path: Path) -> None:
    """A literal block value stays a literal block, in its own indentation."""
    text = SIMPLE.replace("  SECRET_KEY: old\n", "  SECRET_KEY: |-\n      old\n  OTHER: x\n")
    path = _write(tmp_path, text)
    manifest = SecretManifest(path)
    manifest.set("SECRET_KEY", "new-value")
    assert manifest.render() == text.replace("      old\n", "      new-value\n")


def test_digest_is_sha256_of_canonical_json() -> None:
    """The digest is sha256 over the values as JSON with sorted keys and no spaces."""
    expected = hashlib.sha256(b'{"A":"1","B":"\xc3\xa9"}').hexdigest()
    assert digest_of({"B": "é", "A": "1"}) == "sha256:" + expected


def test_default_digest_covers_stamped_keys_and_their_companions(tmp_path: Path) -> None:
    """Without keys, the digest covers every stamped key, its fallbacks and the database user."""
    text = SIMPLE.replace(
        "  SECRET_KEY: old\n",
        "  SECRET_KEY: old\n  SECRET_KEY_FALLBACKS: '[]'\n  DB_USER: app\n"
        "  DB_PASSWORD: pw\n  AUTH0_DOMAIN: tenant\n",
    )
    manifest = SecretManifest(_write(tmp_path, text))
    with pytest.raises(ConfigurationError, match="no rotated key"):
        manifest.values_digest()
    manifest.set_annotation("SECRET_KEY", STAMP)
    manifest.set_annotation("DB_PASSWORD", STAMP)
    covered = {
        "SECRET_KEY": "old",
        "SECRET_KEY_FALLBACKS": "[]",
        "DB_USER": "app",
        "DB_PASSWORD": "pw",
    }
    assert manifest.values_digest() == digest_of(covered)
    digest = manifest.set_values_digest()
    assert digest == digest_of(covered) and "pw" not in digest
    assert manifest.recorded_digest("s") == digest and manifest.recorded_digest("t") is None


def test_no_message_holds_a_value(tmp_path: Path) -> None:
    """A value that cannot be read is named by its key, never shown."""
    text = SIMPLE + "data:\n  BROKEN: not-base64-canary!\n"
    manifest = SecretManifest(_write(tmp_path, text))
    with pytest.raises(ConfigurationError) as caught:
        manifest.get("BROKEN")
    assert "canary" not in str(caught.value) and "BROKEN" in str(caught.value)
    assert "canary" not in repr(manifest)


def test_crlf_without_final_newline_gets_a_new_key(tmp_path: Path) -> None:
    """A key added at the end of a CRLF file without a final newline keeps both properties."""
    text = SIMPLE.rstrip("\n").replace("\n", "\r\n")
    manifest = SecretManifest(_write(tmp_path, text))
    manifest.set("SECRET_KEY_FALLBACKS", "[]", near="SECRET_KEY")
    assert manifest.render() == text + '\r\n  SECRET_KEY_FALLBACKS: "[]"'
    manifest.remove("SECRET_KEY_FALLBACKS")
    assert manifest.render() == text
