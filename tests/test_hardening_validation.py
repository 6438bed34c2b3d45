"""Issue 12, classes 3, 4 and 14: weak fallback keys, low-entropy keys, secrets that are not text.

Every refusal is checked three ways where the rule applies: ``SecureConfigManager`` (what the
service loads), ``yosai-secrets check`` (what an operator runs) and the Flask extension's
``init_app`` (what installs the session keys). Each message must name the setting and never
contain the value.
"""

from __future__ import annotations

import json
import random
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from yosai_secrets.cli import cli
from yosai_secrets.config import SecureConfigManager
from yosai_secrets.config.validate import (
    MAX_RUN_SHARE,
    MIN_DISTINCT_CHARACTERS,
    MIN_ENTROPY_BITS,
    MIN_RUN_LENGTH,
    MIN_SECRET_KEY_BYTES,
    estimated_entropy_bits,
    secret_key_weakness,
)
from yosai_secrets.devsecrets import ensure_dev_secrets
from yosai_secrets.errors import StartupValidationError, ValidationError
from yosai_secrets.flask import YosaiSecrets
from yosai_secrets.manager import SecretManager
from yosai_secrets.rotation.generate import generate_value
from yosai_secrets.testing import MemoryBackend

from .rotation_support import make_manifest, values

REPO_ROOT = Path(__file__).resolve().parent.parent
GOOD = secrets.token_urlsafe(32)
PRODUCTION = {
    "SECRET_KEY": GOOD,
    "DB_USER": "app",
    "DB_PASSWORD": "db-password-" + secrets.token_hex(8),
    "AUTH0_CLIENT_ID": "client-id",
    "AUTH0_CLIENT_SECRET": "client-secret-" + secrets.token_hex(8),
    "AUTH0_DOMAIN": "tenant.auth0.com",
    "AUTH0_AUDIENCE": "https://api",
}

#: Keys of trivially low entropy, each at least 32 bytes: the issue's three and their class.
TRIVIAL_KEYS = [
    "a" * 40,
    "ab" * 20,
    "0123" * 10,
    "abc" * 14,
    "Aa1!" * 10,
    "a" * 39 + "b",
    "ab" * 20 + "c",
    "0123456789" * 4,  # 10 distinct characters, a pattern repeated
    "0123456789" * 4 + "Z",  # not an exact repetition: runs
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF",  # all distinct: one long sequence
    "9876543210zyxwvutsrqponmlkjihgfedcba",  # descending
    "abcdefgh" * 5 + "ab",  # a pattern with a partial tail
    "k3Jq9xZp" * 5,  # a random unit, repeated
    "k3Jq9xZpk3Jq9xZpk3JX9xZpk3Jq9xZpk3Jq9xZp",  # ... with one character changed
    "x" * 30 + "Zq8vN2kP5t",  # one character dominating
    "ab" * 500 + "cdefghij",  # long, but nearly all pattern
    "31415926535897932384626433832795",  # 32 digits: too little entropy per character
]

#: 120 words for passphrases (distinct words, as a person picks them).
WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "maple",
    "tiger",
    "orbit",
    "candle",
    "velvet",
    "harbor",
    "lantern",
    "meadow",
    "copper",
    "falcon",
    "willow",
    "summit",
    "ember",
    "glacier",
    "pepper",
    "violin",
    "canyon",
    "saddle",
    "breeze",
    "marble",
    "thunder",
    "garden",
    "rocket",
    "spruce",
    "parrot",
    "crystal",
    "wander",
    "quartz",
    "hollow",
    "nectar",
    "badger",
    "island",
    "jungle",
    "kettle",
    "lemon",
    "mango",
    "nickel",
    "olive",
    "pirate",
    "quiver",
    "raven",
    "salmon",
    "tulip",
    "umbrella",
    "walnut",
    "yonder",
    "zebra",
    "anchor",
    "bishop",
    "cactus",
    "dragon",
    "eagle",
    "forest",
    "goblin",
    "hammer",
    "igloo",
    "jacket",
    "kiwi",
    "ladder",
    "magnet",
    "needle",
    "oyster",
    "pencil",
    "quill",
    "ribbon",
    "shadow",
    "tunnel",
    "unicorn",
    "vessel",
    "wizard",
    "yellow",
    "zipper",
    "acorn",
    "bubble",
    "cobalt",
    "dolphin",
    "engine",
    "feather",
    "grape",
    "honey",
    "indigo",
    "jasmine",
    "koala",
    "lobster",
    "mirror",
    "noodle",
    "orchid",
    "puzzle",
    "rabbit",
    "sphinx",
    "turtle",
    "whistle",
    "basket",
    "comet",
    "donkey",
    "fabric",
    "helmet",
    "insect",
    "lizard",
    "monkey",
    "napkin",
    "pillow",
    "rhythm",
    "sunset",
    "timber",
    "vacuum",
    "wallet",
    "yogurt",
    "beacon",
]


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"YOSAI_ENV": "production", "SECRETS_DIR": str(tmp_path / "s"), **PRODUCTION, **extra}


def _config_dir(tmp_path: Path, production_yaml: str) -> Path:
    folder = tmp_path / "conf"
    folder.mkdir(exist_ok=True)
    (folder / "production.yaml").write_text(production_yaml, encoding="utf-8")
    return folder


def _problems(exc: ValidationError) -> str:
    return "\n".join(exc.problems)


def _assert_not_shown(text: str, value: str) -> None:
    """Neither the value nor any 8 characters of it in a row appear in ``text``."""
    assert value not in text
    if len(set(value)) >= 4:  # a window of a trivial key ("aaaaaaaa") may be any word's letters
        for start in range(0, max(1, len(value) - 8)):
            window = value[start : start + 8]
            if len(set(window)) >= 4:
                assert window not in text, "a piece of the value is shown"


def _check_json(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> tuple[int, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["check", "--env", "production", "--json"])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run from an empty directory, with a configuration directory that does not exist."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "no-config"
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(folder))
    yield folder


# -- class 4: the SECRET_KEY rule -------------------------------------------------------------


@pytest.mark.parametrize("key", TRIVIAL_KEYS, ids=lambda k: f"{k[:12]}..{len(k)}")
def test_trivially_low_entropy_keys_are_weak(key: str) -> None:
    """Repetitions, runs, sequences and few distinct characters are refused as a class."""
    assert len(key.encode()) >= MIN_SECRET_KEY_BYTES  # not refused for its length alone
    weakness = secret_key_weakness(key)
    assert weakness is not None
    _assert_not_shown(weakness, key)


@pytest.mark.parametrize("key", ["a" * 40, "ab" * 20, "0123" * 10, "k3Jq9xZp" * 5])
def test_a_trivial_production_key_is_refused_everywhere(
    key: str, tmp_path: Path, no_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config, check and init_app each refuse the issue's keys, naming SECRET_KEY only."""
    env = _production_env(tmp_path, SECRET_KEY=key)
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(no_config, environ=env)
    text = _problems(info.value)
    assert "SECRET_KEY (from env SECRET_KEY) is too weak for production" in text
    _assert_not_shown(str(info.value), key)
    code, out = _check_json(monkeypatch, env)
    assert code == 1 and "SECRET_KEY (from env SECRET_KEY) is too weak" in out
    _assert_not_shown(out, key)
    with pytest.raises(StartupValidationError) as started:
        YosaiSecrets(Flask(__name__), environ=env)
    _assert_not_shown(str(started.value), key)


def test_development_stays_permissive(tmp_path: Path, no_config: Path) -> None:
    """Outside production the strength rule does not apply (development keys are local)."""
    for key in ("a" * 40, "ab" * 20, "0123" * 10):
        env = {"YOSAI_ENV": "development", "SECRET_KEY": key, "SECRET_KEY_FALLBACKS": key}
        assert SecureConfigManager(no_config, environ=env).get("security.secret_key") == key


def test_every_generated_key_passes() -> None:
    """Keys from dev-secrets, rotation and secrets.token_urlsafe/token_hex all pass, 1,000 each."""
    generators = {
        "token_urlsafe(32)": lambda: secrets.token_urlsafe(32),
        "token_urlsafe(24)": lambda: secrets.token_urlsafe(24),  # the shortest that is 32 bytes
        "dev-secrets": lambda: secrets.token_urlsafe(48),
        "rotation": generate_value,
        "token_hex(16)": lambda: secrets.token_hex(16),
    }
    for name, generate in generators.items():
        refused = [k for k in (generate() for _ in range(1000)) if secret_key_weakness(k)]
        assert refused == [], f"{name}: {len(refused)} refused"


def test_the_files_dev_secrets_writes_pass(tmp_path: Path) -> None:
    """The very files `yosai-secrets dev-secrets` writes hold keys the production rule accepts."""
    for round_ in range(20):
        for path in ensure_dev_secrets(tmp_path / str(round_)):
            assert secret_key_weakness(path.read_text(encoding="utf-8").strip()) is None


def test_passphrases_of_distinct_words_pass() -> None:
    """5,000 passphrases of distinct words (32+ bytes, any separator, some capitals) pass."""
    rng = random.Random()
    refused = []
    for _ in range(5000):
        separator = rng.choice([" ", "-", "_", ".", ""])
        words = rng.sample(WORDS, 10)
        words = [w.capitalize() if rng.random() < 0.3 else w for w in words]
        count = next(n for n in range(1, 11) if len(separator.join(words[:n])) >= 32)
        phrase = separator.join(words[:count])
        if rng.random() < 0.3:
            phrase += str(rng.randint(0, 9999))
        if secret_key_weakness(phrase) is not None:
            refused.append(phrase)
    assert refused == []


def test_the_estimate_is_bounded_for_long_keys() -> None:
    """A 10,000-character key is judged quickly (the estimate is not quadratic in Python)."""
    import time

    started = time.perf_counter()
    assert secret_key_weakness(secrets.token_urlsafe(7500)) is None
    assert secret_key_weakness("ab" * 5000) is not None
    assert secret_key_weakness("ab" * 5000 + secrets.token_urlsafe(32)) is None  # 256 real bits
    assert time.perf_counter() - started < 5


def test_the_docs_state_the_numbers_the_code_uses() -> None:
    """docs/configuration.md quotes each threshold of the rule exactly as the code defines it."""
    text = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = text[text.index("## Validation") : text.index("## YAML safety")]
    flat = re.sub(r"\s+", " ", section)
    for phrase in (
        f"at least **{MIN_SECRET_KEY_BYTES} bytes**",
        f"at least **{MIN_DISTINCT_CHARACTERS} distinct characters**",
        f"runs of at least **{MIN_RUN_LENGTH}** characters",
        f"at most **{MAX_RUN_SHARE:.0%}** of it",
        f"at least **{MIN_ENTROPY_BITS} bits**",
    ):
        assert phrase in flat, phrase
    # And the figures it gives as examples are what the estimate says.
    assert estimated_entropy_bits("31415926535897932384626433832795") < MIN_ENTROPY_BITS
    assert "(106 bits)" in flat
    assert int(estimated_entropy_bits("31415926535897932384626433832795")) == 106
    assert secret_key_weakness("purple monkey dishwasher rainbow") is None
    assert min(estimated_entropy_bits(secrets.token_urlsafe(24)) for _ in range(500)) > 170


# -- class 3: SECRET_KEY_FALLBACKS --------------------------------------------------------------

WEAK_FALLBACKS = [
    (json.dumps(["changeme"]), 1, 1),
    (json.dumps(["replace-me-secret-key"]), 1, 1),
    (json.dumps(["short-old-key"]), 1, 1),
    (json.dumps(["a" * 40]), 1, 1),
    (json.dumps([GOOD + "x", "ab" * 20]), 2, 2),
    ("changeme", 1, 1),  # the hand-written form
    (f"{GOOD}y,0123012301230123012301230123012301230123", 2, 2),
]


@pytest.mark.parametrize(("raw", "position", "count"), WEAK_FALLBACKS)
def test_weak_fallback_keys_are_refused_everywhere(
    raw: str,
    position: int,
    count: int,
    tmp_path: Path,
    no_config: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A weak fallback key is refused by the config, check and init_app, named by position."""
    env = _production_env(tmp_path, SECRET_KEY_FALLBACKS=raw)
    named = f"SECRET_KEY_FALLBACKS key {position} of {count} (from env SECRET_KEY_FALLBACKS)"
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(no_config, environ=env)
    assert named in _problems(info.value)
    weak = raw.split(",")[-1] if not raw.startswith("[") else json.loads(raw)[-1]
    _assert_not_shown(str(info.value), weak)
    code, out = _check_json(monkeypatch, env)
    assert code == 1 and named in out
    _assert_not_shown(out, weak)
    with pytest.raises(StartupValidationError) as started:
        YosaiSecrets(Flask(__name__), environ=env)
    assert "SECRET_KEY_FALLBACKS key" in str(started.value)
    _assert_not_shown(str(started.value), weak)


@pytest.mark.usefixtures("no_config")
def test_weak_fallbacks_in_the_file_and_the_backend_are_refused(tmp_path: Path) -> None:
    """Fallbacks written in the YAML (a list) or held by the default backend are checked too."""
    folder = _config_dir(tmp_path, "security:\n  secret_key_fallbacks: [changeme, ok]\n")
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(folder, environ=_production_env(tmp_path))
    text = _problems(info.value)
    assert "SECRET_KEY_FALLBACKS key 1 of 2 (from config file production.yaml)" in text
    assert "key 2 of 2" in text
    store = MemoryBackend({"SECRET_KEY_FALLBACKS": json.dumps(["ab" * 20])})
    env = _production_env(tmp_path)
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(tmp_path / "none", environ=env, manager=SecretManager(store))
    assert "SECRET_KEY_FALLBACKS key 1 of 1 (from memory" in _problems(info.value)
    assert "ab" * 5 not in str(info.value)
    app = Flask(__name__)
    with pytest.raises(StartupValidationError, match="SECRET_KEY_FALLBACKS key 1 of 1"):
        YosaiSecrets(app, environ=env, manager=SecretManager(store))


def test_malformed_fallbacks_are_a_problem_not_a_guess(tmp_path: Path, no_config: Path) -> None:
    """Fallbacks that are not a list of keys are reported by name, never shown."""
    for raw in ('["unterminated', '[{"key": "v"}]', "[1, 2]"):
        env = _production_env(tmp_path, SECRET_KEY_FALLBACKS=raw)
        with pytest.raises(ValidationError) as info:
            SecureConfigManager(no_config, environ=env)
        assert "SECRET_KEY_FALLBACKS (from env SECRET_KEY_FALLBACKS) cannot be read" in str(
            info.value
        )
        assert raw not in str(info.value)


def test_strong_fallbacks_and_development_pass(tmp_path: Path, no_config: Path) -> None:
    """Acceptable previous keys load in production; any fallback loads in development."""
    fallbacks = json.dumps([generate_value(), secrets.token_urlsafe(32)])
    env = _production_env(tmp_path, SECRET_KEY_FALLBACKS=fallbacks)
    SecureConfigManager(no_config, environ=env)
    app = Flask(__name__)
    YosaiSecrets(app, environ=env)
    assert app.config["SECRET_KEY_FALLBACKS"] == json.loads(fallbacks)
    dev = {"YOSAI_ENV": "development", "SECRET_KEY": GOOD, "SECRET_KEY_FALLBACKS": '["dev"]'}
    SecureConfigManager(no_config, environ=dev)


def test_a_real_rotation_of_an_acceptable_key_passes(tmp_path: Path, no_config: Path) -> None:
    """After `rotate`, the previous SECRET_KEY (itself acceptable) is a fallback that passes."""
    old_key = generate_value()
    manifest = make_manifest(tmp_path, SECRET_KEY=old_key)
    result = CliRunner().invoke(cli, ["rotate", "--manifest", str(manifest), "--no-apply"])
    assert result.exit_code == 3, result.output  # held: no database connection configured
    rotated = values(manifest)
    assert json.loads(rotated["SECRET_KEY_FALLBACKS"]) == [old_key]
    env = _production_env(
        tmp_path,
        SECRET_KEY=rotated["SECRET_KEY"],
        SECRET_KEY_FALLBACKS=rotated["SECRET_KEY_FALLBACKS"],
    )
    SecureConfigManager(no_config, environ=env)
    app = Flask(__name__)
    YosaiSecrets(app, environ=env)
    assert app.config["SECRET_KEY_FALLBACKS"] == [old_key]


# -- class 14: secrets that are not text ------------------------------------------------------

CANARY_NUMBER = "918273645501"
NOT_TEXT = {
    "int": CANARY_NUMBER,
    "octal": "0755",
    "float": "3.14159265358979",
    "bool": "yes",
    "list": "[canary-list-item-7f3a, b]",
    "mapping": "{canary-map-key-91c2: v}",
    "date": "2026-11-29",
}
SETTINGS = [
    ("security", "secret_key", "SECRET_KEY"),
    ("database", "password", "DB_PASSWORD"),
    ("auth0", "client_secret", "AUTH0_CLIENT_SECRET"),
    ("database", "user", "DB_USER"),
]


@pytest.mark.parametrize("kind", sorted(NOT_TEXT))
@pytest.mark.parametrize(("section", "key", "name"), SETTINGS)
def test_a_secret_that_is_not_text_is_refused(
    kind: str,
    section: str,
    key: str,
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A YAML secret that parses as a number, boolean, date, list or mapping is refused."""
    written = NOT_TEXT[kind]
    folder = _config_dir(tmp_path, f"{section}:\n  {key}: {written}\n")
    env = _production_env(tmp_path)
    del env[name]  # the file's value is the one used
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(folder, environ=env)
    text = str(info.value)
    assert f"{section}.{key} ({name}) in production.yaml" in text
    assert "must be text (a string)" in text
    for shown in (written, CANARY_NUMBER, "canary-list", "canary-map", "493", "3.14159"):
        assert shown not in text
    monkeypatch.setenv("YOSAI_CONFIG_DIR", str(folder))
    code, out = _check_json(monkeypatch, env)
    assert code == 1 and f"{section}.{key} ({name}) in production.yaml" in out
    for shown in (written, CANARY_NUMBER, "canary-list", "canary-map", "493"):
        assert shown not in out


def test_not_text_is_refused_in_every_environment(tmp_path: Path) -> None:
    """A number for security.secret_key is refused in development as well (it is a file bug)."""
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "development.yaml").write_text("security:\n  secret_key: 12345\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"security\.secret_key \(SECRET_KEY\) in develop"):
        SecureConfigManager(folder, environ={"YOSAI_ENV": "development"})


def test_fallbacks_that_are_not_a_list_of_text_are_refused(tmp_path: Path) -> None:
    """security.secret_key_fallbacks as a number or a mapping is named, not shown."""
    for written in (CANARY_NUMBER, "{canary-map-key-91c2: v}", "[1, 2]"):
        folder = _config_dir(tmp_path, f"security:\n  secret_key_fallbacks: {written}\n")
        with pytest.raises(ValidationError) as info:
            SecureConfigManager(folder, environ=_production_env(tmp_path))
        assert "SECRET_KEY_FALLBACKS" in str(info.value)
        assert CANARY_NUMBER not in str(info.value) and "canary-map" not in str(info.value)


def test_an_empty_value_means_not_set(tmp_path: Path) -> None:
    """`secret_key:` / null is "not set here": the backend is read, else it is missing, by name."""
    for written in ("", "null", "~"):
        folder = _config_dir(tmp_path, f"security:\n  secret_key: {written}\n")
        env = _production_env(tmp_path)
        del env["SECRET_KEY"]
        with pytest.raises(ValidationError, match="SECRET_KEY is required in production"):
            SecureConfigManager(folder, environ=env)
        store = SecretManager(MemoryBackend({"SECRET_KEY": GOOD}))
        cfg = SecureConfigManager(folder, environ=env, manager=store)
        assert cfg.get("security.secret_key") == GOOD


def test_a_file_value_that_is_not_text_is_refused_even_when_overridden(tmp_path: Path) -> None:
    """The variable wins over the file, but a file holding a number for a secret is still wrong."""
    folder = _config_dir(tmp_path, f"security:\n  secret_key: !!binary {CANARY_NUMBER}\n")
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(folder, environ=_production_env(tmp_path))  # SECRET_KEY is set
    assert "security.secret_key (SECRET_KEY) in production.yaml" in str(info.value)
    assert CANARY_NUMBER not in str(info.value)


@pytest.mark.parametrize(
    ("written", "scheme"),
    [
        ("vualt:secret/data/db#password", "vault"),
        ("valut:kv/db#password", "vault"),
        ("Vault:secret/data/db#password", "vault"),
        ("aws-secret:prod/db#password", "aws-secrets"),
        ("secert:DB_PASSWORD", "secret"),
        ("fiel:/run/secrets/db_password", "file"),
    ],
)
def test_a_misspelt_reference_is_not_used_as_the_secret(
    tmp_path: Path, written: str, scheme: str
) -> None:
    """A reference with a misspelt scheme is refused (it would be the password itself)."""
    folder = _config_dir(tmp_path, f"database:\n  password: '{written}'\n")
    env = _production_env(tmp_path)
    del env["DB_PASSWORD"]
    with pytest.raises(ValidationError) as info:
        SecureConfigManager(folder, environ=env)
    text = str(info.value)
    assert "database.password (DB_PASSWORD) in production.yaml" in text
    assert f"did you mean {scheme}:?" in text and written not in text


@pytest.mark.parametrize(
    "written", ["envy:some/path", "hunter2:abc", "Tr0ub4dor:&3", "https://db/x#y", "valet:a/b"]
)
def test_a_password_with_a_colon_is_still_a_password(tmp_path: Path, written: str) -> None:
    """Text that only resembles a reference (no scheme within one edit) is used as written."""
    folder = _config_dir(tmp_path, f"database:\n  password: '{written}'\n")
    env = _production_env(tmp_path)
    del env["DB_PASSWORD"]
    assert SecureConfigManager(folder, environ=env).get("database.password") == written


def test_a_weak_fallback_after_a_reload_keeps_the_current_keys(
    tmp_path: Path, no_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGHUP reload that would install a weak fallback keeps the keys already in use."""
    old = generate_value()
    env = _production_env(tmp_path, SECRET_KEY_FALLBACKS=json.dumps([old]))
    app = Flask(__name__)
    extension = YosaiSecrets(app, environ=env)
    env["SECRET_KEY_FALLBACKS"] = json.dumps(["changeme"])
    extension.clear_caches()  # what SIGHUP does; logs a warning, never raises
    assert app.config["SECRET_KEY_FALLBACKS"] == [old]
    assert app.config["SECRET_KEY"] == GOOD
