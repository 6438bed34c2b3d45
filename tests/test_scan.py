"""``yosai-secrets scan``: our values in every encoding and in git history, shapes, and no leaks."""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import string
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from yosai_secrets.audit.encodings import ValueMatcher, encoded_forms
from yosai_secrets.audit.scan import (
    Finding,
    SecretValues,
    known_values,
    scan_bytes,
    scan_paths,
)
from yosai_secrets.audit.shapes import find_shapes
from yosai_secrets.cli.scan import scan
from yosai_secrets.rotation import RotationEngine, RotationOptions
from yosai_secrets.rotation.journal import journal_path

from .rotation_support import REPO_ROOT, make_manifest

# Characters that make every encoding differ from the plain text: base64's + and / ("~~~" is
# "fn5+", "???" is "Pz8/"), URL escapes, JSON escapes (quote, backslash, non-ASCII).
_AWKWARD = '~~~???~~~???+/"\\é%&'


def _value(canary: str) -> str:
    return canary + _AWKWARD


def _scan(tmp_path: Path, text: str | bytes, secrets: dict[str, SecretValues]) -> list[Finding]:
    target = tmp_path / "scanned"
    target.mkdir(exist_ok=True)
    file = target / "leak.txt"
    file.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return scan_paths([target], secrets)


def _b64(raw: bytes, *, urlsafe: bool = False, padded: bool = True) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode("ascii")
    return text if padded else text.rstrip("=")


def _encodings(value: str) -> list[tuple[str, str, str]]:
    """(case, text holding the value, expected encoding), built independently of the scanner."""
    raw = value.encode("utf-8")
    cases = [("plain", f"DB_PASSWORD={value}", "plain")]
    for prefix in (b"", b"u", b"us", b"user:"):
        for padded in (True, False):
            cases.append((f"base64+{len(prefix)}", _b64(prefix + raw, padded=padded), "base64"))
            url = _b64(prefix + raw, urlsafe=True, padded=padded)
            cases.append((f"base64url+{len(prefix)}", url, "base64url"))
    cases += [
        ("base64-newline", _b64(raw + b"\n"), "base64"),  # echo "$value" | base64
        ("url", "postgresql://app:" + urllib.parse.quote(value, safe="") + "@db/app", "url"),
        ("url-plus", urllib.parse.quote_plus(value), "url"),
        ("hex", raw.hex(), "hex"),
        ("HEX", raw.hex().upper(), "hex"),
        ("json", json.dumps({"password": value}), "json-escaped"),
        ("json-utf8", json.dumps({"password": value}, ensure_ascii=False), "json-escaped"),
    ]
    return cases


@pytest.mark.parametrize("case", [c[0] for c in _encodings("x" * 20)])
def test_a_value_is_found_in_every_encoding(tmp_path: Path, canary: str, case: str) -> None:
    """Each encoding of a configured value, inside other text, is found with its name and line."""
    value = _value(canary)
    _, text, expected = next(c for c in _encodings(value) if c[0] == case)
    findings = _scan(
        tmp_path, f"first line\n  {text} trailing\n", {"DB_PASSWORD": SecretValues.of(value)}
    )
    assert [(f.secret, f.line, f.encoding, f.live) for f in findings] == [
        ("DB_PASSWORD", 2, expected, True)
    ]


def test_a_value_inside_a_large_base64_blob_is_found_at_every_offset(canary: str) -> None:
    """A value at any byte offset within a base64 blob (a Kubernetes data: field) is found."""
    value = _value(canary)
    matcher = ValueMatcher({"SECRET_KEY": [(value, True)]})
    for offset in range(9):
        blob = _b64(os.urandom(offset) + value.encode() + os.urandom(7))
        found = scan_bytes(blob.encode(), "blob", matcher, shapes=False)
        assert [f.encoding for f in found] == ["base64"], offset


def test_short_values_and_placeholders_are_not_searched_for(tmp_path: Path) -> None:
    """Values under 8 characters would match everywhere by chance: they are skipped."""
    assert not _scan(
        tmp_path, "root token: root\nport 5432\n", {"VAULT_TOKEN": SecretValues.of("root")}
    )
    forms = encoded_forms("abcdefgh")
    assert all(len(form) >= 8 for _, form in forms)


def test_a_previous_value_is_found_but_not_live(tmp_path: Path, canary: str) -> None:
    """After a rotation the old value (a fallback) is reported as a leak, not as live."""
    old, new = canary + "-old-key", canary + "-new-key"
    secrets = {"SECRET_KEY": SecretValues.of(new, [old])}
    findings = _scan(tmp_path, f"a = {old}\nb = {new}\n", secrets)
    assert [(f.line, f.live) for f in findings] == [(1, False), (2, True)]


def test_a_value_that_is_both_current_and_previous_is_live(canary: str) -> None:
    """A value held as current by one source and previous by another is live."""
    both = SecretValues.of(canary).merged(SecretValues.of(None, [canary]))
    assert [v.reveal() for v in both.current] == [canary] and both.previous == ()


# -- shapes ---------------------------------------------------------------------------------------

_RNG = random.Random(1318)  # fixed: a shape's checks are statistical, the test is not
_ALNUM = string.ascii_letters + string.digits


def _token(n: int, alphabet: str = _ALNUM + "-_") -> str:
    return "Ab1" + "".join(_RNG.choice(alphabet) for _ in range(n - 3))


def _jwt() -> str:
    def part(obj: dict[str, Any]) -> str:
        return _b64(json.dumps(obj).encode(), urlsafe=True, padded=False)

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'sub': 'user-1'})}.{_token(43)}"


def _pem(kind: str, after_header: str) -> str:
    body = _b64(bytes(_RNG.randrange(256) for _ in range(48)))
    return f"-----BEGIN {kind}-----{after_header}{body}\n-----END {kind}-----"


def _fernet_key() -> str:
    return _b64(bytes(_RNG.randrange(256) for _ in range(32)), urlsafe=True)


SHAPES = {
    "private-key": _pem("RSA PRIVATE KEY", "\n"),
    "private-key-openssh": _pem("OPENSSH PRIVATE KEY", "\n"),
    "private-key-encrypted": _pem("RSA PRIVATE KEY", "\nProc-Type: 4,ENCRYPTED\nDEK-Info: x\n\n"),
    "private-key-in-json": json.dumps({"key": _pem("EC PRIVATE KEY", "\n")}),
    "aws-access-key": "aws_access_key_id = AKIA"
    + "".join(_RNG.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
    "vault-token": "VAULT_TOKEN=hvs." + _token(90),
    "vault-token-legacy": "token s." + _token(24, _ALNUM),
    "fernet-key": "FERNET_KEY=" + _fernet_key(),
    "jwt": "Authorization: Bearer " + _jwt(),
    "high-entropy-assignment": 'api_key = "' + _token(32) + '"',
}


@pytest.mark.parametrize("case", sorted(SHAPES))
def test_each_credential_shape_is_found(tmp_path: Path, case: str) -> None:
    """A private key, AWS key id, Vault token, Fernet key, JWT and random assignment are found."""
    findings = _scan(tmp_path, "x\n" + SHAPES[case] + "\n", {})
    shape = next(s for s in sorted(SHAPES, key=len) if case.startswith(s))
    assert [(f.shape, f.secret, f.line, f.live) for f in findings] == [(shape, None, 2, False)]


@pytest.mark.parametrize(
    "text",
    [
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",  # AWS's documented example
        "password = bench-value-1234-abcd",  # words and digits
        "secret_key: secret:SECRET_KEY",  # a reference
        'password: "vault:secret/data/db#password"',
        "token = self.settings.vault_token_value",  # code
        "client_secret = os.environ.get(name)",
        "SECRET_KEY = ${SECRET_KEY}",
        '"hashed_secret": "778d07643116af8287219b9019bb64ab3b7b2f5a"',  # detect-secrets baseline
        "password = replace-me-db-password-XYZ123",  # the example's placeholder
        "secret = secretsmanager:BatchGetSecretValue",
        "fernet = " + "A" * 43 + "=",  # not random
        'if line == "-----BEGIN RSA PRIVATE KEY-----":',  # a header without a body
        'token: "VAULT_TOKEN=hvs.abc"',  # another assignment inside the value
    ],
)
def test_what_only_looks_like_a_credential_is_not_reported(tmp_path: Path, text: str) -> None:
    """Examples, references, code, hashes, placeholders and low-entropy text are no findings."""
    assert _scan(tmp_path, text + "\n", {}) == []


def test_an_allow_marker_silences_a_shape_but_never_a_value(tmp_path: Path, canary: str) -> None:
    """``pragma: allowlist secret`` hides a shape on its line, never a configured value."""
    text = (
        SHAPES["vault-token"]
        + "  # pragma: allowlist secret\n"
        + canary
        + "  # yosai-secrets: allow\n"
    )
    findings = _scan(tmp_path, text, {"DB_PASSWORD": SecretValues.of(canary)})
    assert [(f.secret, f.line) for f in findings] == [("DB_PASSWORD", 2)]


def test_a_value_of_ours_is_reported_once_not_again_as_its_shape(tmp_path: Path) -> None:
    """A configured Fernet key is reported by name, not a second time as a fernet-key shape."""
    key = _fernet_key()
    findings = _scan(tmp_path, f"FERNET_KEY={key}\n", {"FERNET_KEY": SecretValues.of(key)})
    assert [(f.secret, f.shape) for f in findings] == [("FERNET_KEY", None)]


def test_shapes_can_be_turned_off(tmp_path: Path) -> None:
    """``shapes=False`` reports our values only."""
    target = tmp_path / "t"
    target.mkdir()
    (target / "f").write_text(SHAPES["jwt"])
    assert scan_paths([target], {}, shapes=False) == []
    assert list(find_shapes(SHAPES["jwt"].encode()))


# -- what is skipped ------------------------------------------------------------------------------


def test_binary_large_and_tool_files_are_skipped(tmp_path: Path, canary: str) -> None:
    """Binary files, files over the limit, .git, virtualenvs, node_modules, caches: not read."""
    root = tmp_path / "tree"
    for rel in (".git/config", "node_modules/x/index.js", "__pycache__/a.txt", "env/lib/x.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(canary)
    (root / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / "image.png").write_bytes(b"\x89PNG\0\0" + canary.encode())
    (root / "big.txt").write_text("x" * 2000 + canary)
    (root / "small.txt").write_text(canary)
    secrets = {"SECRET_KEY": SecretValues.of(canary)}
    found = scan_paths([root], secrets, max_bytes=1000)
    assert [Path(f.path).name for f in found] == ["small.txt"]
    assert len(scan_paths([root], secrets, max_bytes=10_000)) == 2  # big.txt is read now


def test_an_excluded_source_file_is_not_reported(tmp_path: Path, canary: str) -> None:
    """The file the values come from (the manifest) is not a leak of them."""
    (tmp_path / "manifest.yaml").write_text(canary)
    secrets = {"SECRET_KEY": SecretValues.of(canary)}
    assert scan_paths([tmp_path], secrets, exclude=[tmp_path / "manifest.yaml"]) == []


def test_the_files_values_are_read_from_are_not_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, canary: str
) -> None:
    """A NAME_FILE and the Docker secrets directory hold values by design; a copy is a leak."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run-secrets").mkdir()
    (tmp_path / "run-secrets" / "secret_key").write_text(canary + "-key")
    (tmp_path / "db_password.txt").write_text(canary + "-db")
    (tmp_path / "copy.txt").write_text(canary + "-db")
    monkeypatch.setenv("DB_PASSWORD_FILE", str(tmp_path / "db_password.txt"))
    result = CliRunner().invoke(scan, [str(tmp_path), "--json"])
    found = json.loads(result.output)["findings"]
    assert [(Path(f["path"]).name, f["secret"]) for f in found] == [("copy.txt", "DB_PASSWORD")]
    assert sorted(json.loads(result.output)["searched_secrets"]) == ["DB_PASSWORD", "SECRET_KEY"]


# -- git history ----------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def leaked_repo(tmp_path: Path, canary: str) -> tuple[Path, str]:
    """A repository where a value was committed in config.env, then removed; and that commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("hello\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "start")
    (repo / "config.env").write_text(f"APP=1\nDB_PASSWORD={canary}\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "oops")
    leak = _git(repo, "rev-parse", "HEAD")
    (repo / "config.env").write_text("APP=1\n")
    _git(repo, "commit", "-qam", "remove it")
    return repo, leak


def test_a_value_removed_from_the_tree_is_found_in_history_with_git(
    leaked_repo: tuple[Path, str], canary: str
) -> None:
    """With git=True the commit that added the value is named; without, nothing is found."""
    repo, leak = leaked_repo
    secrets = {"DB_PASSWORD": SecretValues.of(canary)}
    assert scan_paths([repo], secrets) == []
    found = scan_paths([repo], secrets, git=True)
    assert [(f.path, f.line, f.secret, f.commit) for f in found] == [
        (f"{leak[:12]}:config.env", 2, "DB_PASSWORD", leak)
    ]


def test_history_covers_every_branch(leaked_repo: tuple[Path, str], canary: str) -> None:
    """A value only on another branch, never merged, is found by --git."""
    repo, _ = leaked_repo
    _git(repo, "checkout", "-qb", "feature")
    (repo / "notes.txt").write_text(f"token {canary}-feature\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "feature")
    _git(repo, "checkout", "-q", "main")
    found = scan_paths([repo], {"X": SecretValues.of(canary + "-feature")}, git=True, shapes=False)
    assert [f.path.partition(":")[2] for f in found] == ["notes.txt"]


def test_history_gives_the_line_in_the_file_as_committed(tmp_path: Path, canary: str) -> None:
    """A line added among kept, removed and other added lines is numbered as in that commit's file
    (in a file whose name has a space)."""
    repo = tmp_path / "numbers"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    original = [f"line {n}" for n in range(1, 11)]
    (repo / "my notes.txt").write_text("\n".join(original) + "\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "start")
    changed = [*original[:3], "new a", "new b", *original[5:7], f"k={canary}-x", *original[8:]]
    (repo / "my notes.txt").write_text("\n".join(changed) + "\n")
    _git(repo, "commit", "-qam", "change")
    commit = _git(repo, "rev-parse", "HEAD")
    (repo / "my notes.txt").write_text("gone\n")
    _git(repo, "commit", "-qam", "remove")
    found = scan_paths([repo], {"A": SecretValues.of(canary + "-x")}, git=True, shapes=False)
    expected = f"{commit[:12]}:my notes.txt", changed.index(f"k={canary}-x") + 1, commit
    assert [(f.path, f.line, f.commit) for f in found] == [expected]


def test_the_command_scans_history_and_exits_1(
    leaked_repo: tuple[Path, str], canary: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``scan --git`` reports the historic leak (exit 1); ``scan`` alone is clean (exit 0)."""
    repo, leak = leaked_repo
    monkeypatch.chdir(repo)
    monkeypatch.setenv("DB_PASSWORD", canary)
    clean = CliRunner().invoke(scan, [str(repo)])
    assert clean.exit_code == 0, clean.output
    found = CliRunner().invoke(scan, [str(repo), "--git", "--json"])
    assert found.exit_code == 1, found.output
    report = json.loads(found.output)
    assert report["searched_secrets"] == ["DB_PASSWORD"]
    assert [(f["commit"], f["secret"], f["live"]) for f in report["findings"]] == [
        (leak, "DB_PASSWORD", True)
    ]
    assert canary not in found.output and canary not in clean.output


def test_git_outside_a_repository_is_an_error_exit_2(tmp_path: Path) -> None:
    """``--git`` on a directory outside any repository exits 2 with a clear message."""
    (tmp_path / "plain").mkdir()
    result = CliRunner().invoke(scan, [str(tmp_path / "plain"), "--git", "--no-values"])
    assert result.exit_code == 2
    assert "not inside a git repository" in result.output


# -- the command's outputs ------------------------------------------------------------------------


def _leaky_tree(root: Path, canary: str) -> Path:
    tree = root / "tree"
    tree.mkdir()
    value = _value(canary)
    (tree / "app-output.txt").write_text(f"connecting with {value}\n{json.dumps({'k': value})}\n")
    (tree / "k8s.yaml").write_text("data:\n  SECRET_KEY: " + _b64(value.encode()) + "\n")
    (tree / "old.txt").write_text(canary + "-previous\n")
    (tree / "key.pem").write_text(SHAPES["private-key"])
    return tree


def test_no_value_in_any_output(
    tmp_path: Path,
    canary: str,
    monkeypatch: pytest.MonkeyPatch,
    root_logger_capture: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Table, JSON, SARIF, logs and reprs name files and secrets, never a value or its encoding."""
    monkeypatch.chdir(tmp_path)
    value = _value(canary)
    monkeypatch.setenv("SECRET_KEY", value)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", json.dumps([canary + "-previous"]))
    tree = _leaky_tree(tmp_path, canary)
    caplog.set_level(logging.DEBUG, logger="yosai_secrets")  # restored after the test
    sarif_file = tmp_path / "out.sarif"
    outputs = []
    for args in ([], ["--json"], ["--sarif", str(sarif_file)]):
        result = CliRunner().invoke(scan, [str(tree), "--max-bytes", "1000000", *args])
        assert result.exit_code == 1, result.output
        outputs.append(result.output)
    outputs.append(sarif_file.read_text())
    secrets = known_values(os.environ)
    found = scan_paths([tree], secrets)
    outputs += [
        repr(found),
        repr(secrets),
        repr(ValueMatcher({"K": [(value, True)]})),
        *root_logger_capture,
    ]
    assert "SECRET_KEY" in outputs[0] and "app-output.txt" in outputs[0]
    forbidden = {canary, *(form.decode("utf-8", "replace") for _, form in encoded_forms(value))}
    for text in outputs:
        for secret in forbidden:
            assert secret not in text
    assert {(Path(f.path).name, f.live) for f in found if f.secret} == {
        ("app-output.txt", True),
        ("k8s.yaml", True),
        ("old.txt", False),
    }


def test_sarif_has_the_required_structure(
    tmp_path: Path, canary: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SARIF file has version 2.1.0, a driver with rules, and results with locations."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SECRET_KEY", _value(canary))
    tree = _leaky_tree(tmp_path, canary)
    out = tmp_path / "scan.sarif"
    result = CliRunner().invoke(scan, [str(tree), "--sarif", str(out)])
    assert result.exit_code == 1
    assert out.stat().st_mode & 0o777 == 0o600
    log = json.loads(out.read_text())
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "yosai-secrets"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert "secret-value/SECRET_KEY" in rule_ids and "shape/private-key" in rule_ids
    assert run["results"]
    for res in run["results"]:
        assert res["ruleId"] in rule_ids and rule_ids[res["ruleIndex"]] == res["ruleId"]
        assert res["message"]["text"]
        (location,) = res["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] and physical["region"]["startLine"] >= 1


def test_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """0 when clean, 1 on a finding, 2 when a configured source cannot be read."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clean.txt").write_text("nothing here\n")
    (tmp_path / "dirty.txt").write_text(SHAPES["aws-access-key"] + "\n")
    runner = CliRunner()
    assert runner.invoke(scan, [str(tmp_path / "clean.txt")]).exit_code == 0
    dirty = runner.invoke(scan, [str(tmp_path / "dirty.txt")])
    assert dirty.exit_code == 1 and "aws-access-key" in dirty.output
    assert runner.invoke(scan, [str(tmp_path / "missing")]).exit_code == 2
    monkeypatch.setenv("SECRET_BACKEND", "vault")
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("VAULT_TOKEN", "a-token-that-is-long-enough")
    monkeypatch.setenv("SECRET_READ_TIMEOUT", "2")
    failed = runner.invoke(scan, [str(tmp_path / "clean.txt")])
    assert failed.exit_code == 2 and "error:" in failed.output and "vault" in failed.output
    assert "a-token-that-is-long-enough" not in failed.output
    assert runner.invoke(scan, [str(tmp_path / "clean.txt"), "--no-values"]).exit_code == 0


def test_a_file_name_is_shown_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that looks like rich markup is printed as it is, not interpreted."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "[red]x[bold].txt").write_text(SHAPES["jwt"] + "\n")
    result = CliRunner().invoke(scan, ["."])
    assert result.exit_code == 1 and "[red]x[bold].txt" in result.output


# -- known_values ---------------------------------------------------------------------------------


def test_known_values_from_the_env_backend(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, canary: str
) -> None:
    """The env backend gives current values, the fallbacks previous ones; no identifiers."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SECRET_KEY", canary + "-key")
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", json.dumps([canary + "-old1", canary + "-old2"]))
    monkeypatch.setenv("DB_PASSWORD", canary + "-db")
    monkeypatch.setenv("AUTH0_DOMAIN", "tenant.eu.auth0.com")
    monkeypatch.setenv("FERNET_KEY", "k1-" + canary + "," + "k2-" + canary)
    found = known_values(os.environ)
    assert _revealed(found) == {
        "SECRET_KEY": ([canary + "-key"], [canary + "-old1", canary + "-old2"]),
        "DB_PASSWORD": ([canary + "-db"], []),
        "FERNET_KEY": (["k1-" + canary, "k2-" + canary], []),
    }


def _revealed(found: dict[str, SecretValues]) -> dict[str, tuple[list[str], list[str]]]:
    return {
        k: ([v.reveal() for v in s.current], [v.reveal() for v in s.previous])
        for k, s in found.items()
    }


def test_known_values_from_the_manifest_its_fallbacks_and_the_rotation_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, canary: str
) -> None:
    """A real rotation's manifest and journal: new values current, old ones and fallbacks not."""
    monkeypatch.chdir(tmp_path)
    path = make_manifest(
        tmp_path,
        SECRET_KEY=canary + "-key",
        SECRET_KEY_FALLBACKS=json.dumps([canary + "-older"]),
        DB_PASSWORD=canary + "-db",
    )
    before = _revealed(known_values({}))
    assert before["SECRET_KEY"] == ([canary + "-key"], [canary + "-older"])
    assert before["DB_PASSWORD"] == ([canary + "-db"], [])
    assert "AUTH0_CLIENT_SECRET" not in before  # the example's placeholder is no value
    RotationEngine(RotationOptions(manifest=path, apply=False, environ={})).rotate()
    assert journal_path(path).exists()
    after = _revealed(known_values({}, manifest=path))
    new_key = after["SECRET_KEY"][0]
    assert len(new_key) == 1 and new_key[0] != canary + "-key"
    assert set(after["SECRET_KEY"][1]) == {canary + "-key", canary + "-older"}
    assert canary + "-db" in after["DB_PASSWORD"][1]
    leak = tmp_path / "leak.txt"
    leak.write_text(f"{canary}-key\n{new_key[0]}\n")
    found = scan_paths([leak], known_values({}))
    assert [(f.secret, f.line, f.live) for f in found] == [
        ("SECRET_KEY", 1, False),
        ("SECRET_KEY", 2, True),
    ]


def test_an_explicit_manifest_that_is_missing_is_an_error(tmp_path: Path) -> None:
    """``--manifest`` naming no file exits 2 naming it."""
    result = CliRunner().invoke(scan, [str(tmp_path), "--manifest", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "nope.yaml" in result.output


def test_known_values_from_openbao_include_earlier_versions(
    vault_env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, canary: str
) -> None:
    """With the real OpenBao, the current KV v2 version is live and earlier ones are previous."""
    monkeypatch.chdir(tmp_path)
    path = "scan-" + os.urandom(6).hex()  # a path is no secret: it is logged
    monkeypatch.setenv("VAULT_SECRETS_PATH", f"secret/data/{path}")
    for n in (1, 2, 3):
        status, _ = vault_env.api(
            "POST",
            f"secret/data/{path}",
            {"data": {"SECRET_KEY": f"v{n}-{canary}", "DB_PASSWORD": f"{canary}-db"}},
        )
        assert status == 200
    found = _revealed(known_values(os.environ))
    assert found["SECRET_KEY"] == ([f"v3-{canary}"], [f"v2-{canary}", f"v1-{canary}"])
    assert found["DB_PASSWORD"] == ([f"{canary}-db"], [])
    leak = tmp_path / "leak-copy.txt"
    leak.write_text(base64.b64encode(f"v1-{canary}".encode()).decode())
    (finding,) = scan_paths([leak], known_values(os.environ))
    assert (finding.secret, finding.encoding, finding.live) == ("SECRET_KEY", "base64", False)


# -- the pre-commit hook --------------------------------------------------------------------------

# The keys pre-commit's documented hook schema accepts (https://pre-commit.com/#new-hooks).
_HOOK_KEYS = {
    "id",
    "name",
    "entry",
    "language",
    "files",
    "exclude",
    "types",
    "types_or",
    "exclude_types",
    "always_run",
    "fail_fast",
    "verbose",
    "pass_filenames",
    "require_serial",
    "description",
    "language_version",
    "minimum_pre_commit_version",
    "args",
    "stages",
    "additional_dependencies",
}


def test_the_pre_commit_hook_definition() -> None:
    """``.pre-commit-hooks.yaml`` defines yosai-secrets-scan with the documented keys only."""
    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert set(hook) <= _HOOK_KEYS and {"id", "name", "entry", "language"} <= set(hook)
    assert hook["id"] == "yosai-secrets-scan"
    assert hook["entry"] == "yosai-secrets scan" and hook["language"] == "python"
    assert hook["pass_filenames"] is True
