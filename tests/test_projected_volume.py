"""Secrets mounted by Kubernetes as files update in place: a swap of ``..data`` is noticed.

The kubelet cannot run here, so each test builds its exact on-disk layout in ``tmp_path``: a
timestamped directory holding the files, a ``..data`` link to it, one ``name -> ..data/name`` link
per key, and an update written as a new timestamped directory swapped in with the kubelet's
atomic rename of a temporary link (as its AtomicWriter does). Everything else is the real code.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.fault_support import wait_until
from yosai_secrets.api.signals import clear_every_cache
from yosai_secrets.backends.file import read_secret_file
from yosai_secrets.errors import ConfigurationError, SecretFileError, SecretNotFoundError
from yosai_secrets.manager import SecretManager, get_secret

INTERVAL = 0.2
THREAD = "yosai-secrets-projected-watch"
_STAMPS = itertools.count()


def _stamp() -> str:
    """A kubelet-style timestamped directory name, unique within the test run."""
    return time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + f"{next(_STAMPS):09d}"


def project(directory: Path, files: dict[str, str]) -> None:
    """Write ``files`` into ``directory`` as the kubelet does, swapping ``..data`` atomically."""
    directory.mkdir(exist_ok=True)
    stamp = _stamp()
    (directory / stamp).mkdir(mode=0o755)
    for name, content in files.items():
        path = directory / stamp / name
        path.write_text(content, encoding="utf-8")
        path.chmod(0o400)
    old = os.readlink(directory / "..data") if (directory / "..data").is_symlink() else None
    os.symlink(stamp, directory / "..data_tmp")
    os.rename(directory / "..data_tmp", directory / "..data")  # the one atomic step
    for name in files:
        link = directory / name
        if not link.is_symlink():
            os.symlink(f"..data/{name}", link)
    for link in directory.iterdir():  # keys the new version no longer has
        if link.is_symlink() and not link.name.startswith("..") and link.name not in files:
            link.unlink()
    if old is not None:
        for stale in (directory / old).iterdir():
            stale.chmod(0o600)
            stale.unlink()
        (directory / old).rmdir()


def watch_threads() -> list[threading.Thread]:
    """The projected-volume watcher threads alive in this process."""
    return [t for t in threading.enumerate() if t.name == THREAD and t.is_alive()]


@pytest.fixture
def mounted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SECRETS_DIR as a projected volume holding DB_PASSWORD and API_TOKEN, polled every 0.2 s."""
    directory = tmp_path / "run-secrets"
    project(directory, {"DB_PASSWORD": "canary-db-one", "API_TOKEN": "canary-token-one"})
    monkeypatch.setenv("SECRETS_DIR", str(directory))
    monkeypatch.setenv("SECRETS_WATCH_INTERVAL", str(INTERVAL))
    return directory


@pytest.fixture
def manager() -> Iterator[SecretManager]:
    """A manager with a long TTL (only the watcher can make it read a file again)."""
    made = SecretManager(ttl_seconds=3600)
    yield made
    made.close()


def served_within(manager: SecretManager, key: str, value: str, seconds: float) -> float:
    """Read ``key`` every 5 ms until it returns ``value``; return the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if manager.get(key) == value:
            return time.monotonic() - start
        time.sleep(0.005)
    raise AssertionError(f"{key} still served its old value after {seconds:g} s")


def test_a_swapped_value_is_served_within_the_interval(
    mounted: Path, manager: SecretManager
) -> None:
    """After the kubelet swaps ``..data``, the next read within interval + 1 s is the new value."""
    assert manager.get("DB_PASSWORD") == "canary-db-one"
    project(mounted, {"DB_PASSWORD": "canary-db-two", "API_TOKEN": "canary-token-one"})
    assert served_within(manager, "DB_PASSWORD", "canary-db-two", INTERVAL + 1.0) < INTERVAL + 1


def test_file_variables_and_file_references_in_a_projected_volume_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manager: SecretManager
) -> None:
    """A ``NAME_FILE`` and a ``file:`` reference into a projected volume are read again too."""
    volume = tmp_path / "etc-db"
    project(volume, {"password": "canary-file-one"})
    monkeypatch.setenv("DB_PASSWORD_FILE", str(volume / "password"))
    monkeypatch.setenv("SECRETS_WATCH_INTERVAL", str(INTERVAL))
    watching = SecretManager(ttl_seconds=3600)
    try:
        reference = f"file:{volume / 'password'}"
        assert watching.get("DB_PASSWORD") == watching.get(reference) == "canary-file-one"
        project(volume, {"password": "canary-file-two"})
        served_within(watching, "DB_PASSWORD", "canary-file-two", INTERVAL + 1.0)
        served_within(watching, reference, "canary-file-two", INTERVAL + 1.0)
    finally:
        watching.close()


def test_keys_from_other_sources_are_not_invalidated(
    mounted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manager: SecretManager
) -> None:
    """An environment variable and a file outside the volume keep their cached values."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "key").write_text("canary-plain-one", encoding="utf-8")
    monkeypatch.setenv("SIGNING_KEY", "canary-env-one")
    monkeypatch.setenv("PLAIN_KEY_FILE", str(plain / "key"))
    assert manager.get("SIGNING_KEY") == "canary-env-one"
    assert manager.get("PLAIN_KEY") == "canary-plain-one"
    manager.get("DB_PASSWORD")
    # Both change at their source; only the projected key may be read again.
    monkeypatch.setenv("SIGNING_KEY", "canary-env-two")
    (plain / "key").write_text("canary-plain-two", encoding="utf-8")
    project(mounted, {"DB_PASSWORD": "canary-db-two", "API_TOKEN": "canary-token-one"})
    served_within(manager, "DB_PASSWORD", "canary-db-two", INTERVAL + 1.0)
    assert manager.get("SIGNING_KEY") == "canary-env-one"
    assert manager.get("PLAIN_KEY") == "canary-plain-one"


def test_only_the_keys_of_the_changed_directory_are_forgotten(
    mounted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manager: SecretManager
) -> None:
    """Of two projected volumes, a swap in one leaves the other's keys cached."""
    other = tmp_path / "etc-other"
    project(other, {"value": "canary-other-one"})
    monkeypatch.setenv("OTHER_FILE", str(other / "value"))
    assert manager.get("OTHER") == "canary-other-one"
    manager.get("DB_PASSWORD")
    calls = manager.stats().backend_calls
    project(mounted, {"DB_PASSWORD": "canary-db-two", "API_TOKEN": "canary-token-one"})
    served_within(manager, "DB_PASSWORD", "canary-db-two", INTERVAL + 1.0)
    assert manager.get("OTHER") == "canary-other-one"
    assert manager.stats().backend_calls == calls + 1  # DB_PASSWORD only


def test_no_thread_without_a_projected_volume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manager: SecretManager
) -> None:
    """Secrets read from a plain directory and the environment start no watcher thread."""
    plain = tmp_path / "run-secrets"
    plain.mkdir()
    (plain / "db_password").write_text("canary-plain", encoding="utf-8")
    monkeypatch.setenv("SIGNING_KEY", "canary-env")
    before = watch_threads()
    assert manager.get("DB_PASSWORD") == "canary-plain"
    assert manager.get("SIGNING_KEY") == "canary-env"
    assert manager.get("MISSING", "fallback") == "fallback"
    assert watch_threads() == before


def test_the_thread_starts_on_first_read_and_stops_on_close(mounted: Path) -> None:
    """No thread at construction; one after a read from the volume; none after close()."""
    before = len(watch_threads())
    manager = SecretManager(ttl_seconds=3600)
    assert len(watch_threads()) == before
    manager.get("DB_PASSWORD")
    assert len(watch_threads()) == before + 1
    manager.close()
    assert len(watch_threads()) == before


def test_an_interval_of_zero_turns_watching_off_and_invalidation_still_works(
    mounted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SECRETS_WATCH_INTERVAL=0 no thread runs; SIGHUP's invalidation reads the new value."""
    monkeypatch.setenv("SECRETS_WATCH_INTERVAL", "0")
    before = watch_threads()
    assert get_secret("DB_PASSWORD") == "canary-db-one"
    project(mounted, {"DB_PASSWORD": "canary-db-two", "API_TOKEN": "canary-token-one"})
    time.sleep(INTERVAL * 3)
    assert get_secret("DB_PASSWORD") == "canary-db-one"
    assert watch_threads() == before
    assert clear_every_cache() >= 1  # what the API's SIGHUP handler runs
    assert get_secret("DB_PASSWORD") == "canary-db-two"


def test_a_malformed_interval_is_refused_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    """SECRETS_WATCH_INTERVAL must be a number of seconds; the message names the variable."""
    monkeypatch.setenv("SECRETS_WATCH_INTERVAL", "soon")
    with pytest.raises(ConfigurationError, match="SECRETS_WATCH_INTERVAL"):
        SecretManager()


def test_a_swap_to_a_version_without_the_key_gives_the_not_found_error(
    mounted: Path, manager: SecretManager
) -> None:
    """A key removed from the Secret is not found, and the message names where it was looked."""
    assert manager.get("API_TOKEN") == "canary-token-one"
    project(mounted, {"DB_PASSWORD": "canary-db-one"})
    deadline = time.monotonic() + INTERVAL + 1.0
    with pytest.raises(SecretNotFoundError) as caught:
        while time.monotonic() < deadline:
            manager.get("API_TOKEN")
            time.sleep(0.01)
    message = str(caught.value)
    assert "API_TOKEN" in message and str(mounted) in message
    assert "canary" not in message


def test_the_projected_links_stay_within_the_secrets_directory(mounted: Path) -> None:
    """``name -> ..data/name -> ..<stamp>/name`` is read under the ``within`` link rule."""
    assert read_secret_file(mounted / "DB_PASSWORD", within=str(mounted)) == "canary-db-one"


def test_a_link_leaving_the_directory_is_still_refused(
    mounted: Path, tmp_path: Path, manager: SecretManager
) -> None:
    """A key linked to a file outside SECRETS_DIR is refused, even in a projected volume."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "stolen").write_text("canary-outside", encoding="utf-8")
    os.symlink(outside / "stolen", mounted / "stolen_key")
    with pytest.raises(SecretFileError, match="outside") as caught:
        manager.get("STOLEN_KEY")
    assert "canary-outside" not in str(caught.value)


def test_a_data_link_swapped_to_outside_the_directory_is_refused(
    mounted: Path, tmp_path: Path, manager: SecretManager
) -> None:
    """A ``..data`` pointed outside the directory makes its keys unreadable, not read."""
    assert manager.get("DB_PASSWORD") == "canary-db-one"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "DB_PASSWORD").write_text("canary-elsewhere", encoding="utf-8")
    os.symlink(elsewhere, mounted / "..data_tmp")
    os.rename(mounted / "..data_tmp", mounted / "..data")
    wait_until(lambda: _refused(manager), INTERVAL + 1.0, "the outside link to be refused")


def _refused(manager: SecretManager) -> bool:
    try:
        manager.get("DB_PASSWORD")
    except SecretFileError as exc:
        assert "canary" not in str(exc)
        return True
    return False


def test_the_log_names_the_directory_and_a_count_never_a_value(
    mounted: Path, manager: SecretManager, caplog: pytest.LogCaptureFixture
) -> None:
    """The watcher logs which directory changed and how many keys it forgot; no value."""
    caplog.set_level(logging.DEBUG)
    manager.get("DB_PASSWORD")
    manager.get("API_TOKEN")
    project(mounted, {"DB_PASSWORD": "canary-db-two", "API_TOKEN": "canary-token-two"})
    served_within(manager, "API_TOKEN", "canary-token-two", INTERVAL + 1.0)
    changed = [r.getMessage() for r in caplog.records if "changed" in r.getMessage()]
    assert changed and str(mounted) in changed[0] and "forgot 2 key(s)" in changed[0]
    assert not [r for r in caplog.records if "canary" in r.getMessage()]


def test_a_forked_child_runs_its_own_watcher(mounted: Path, manager: SecretManager) -> None:
    """After fork the child has a live watcher thread of its own and sees a later swap."""
    assert manager.get("DB_PASSWORD") == "canary-db-one"
    read_end, write_end = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, wait for the swap, report again; skip pytest's teardown
        code = 0
        try:
            os.close(read_end)
            threads = [t.native_id for t in watch_threads()]
            os.read(go_read, 1)
            value = served_value(manager)
            os.write(write_end, json.dumps({"threads": threads, "value": value}).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    parent_threads = [t.native_id for t in watch_threads()]
    project(mounted, {"DB_PASSWORD": "canary-db-two", "API_TOKEN": "canary-token-one"})
    os.write(go_write, b"x")
    report = json.loads(os.read(read_end, 4096) or b"{}")
    _, status = os.waitpid(pid, 0)
    os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(report["threads"]) == 1 and report["threads"] != parent_threads
    assert report["value"] == "canary-db-two"


def served_value(manager: SecretManager) -> str:
    """Wait up to interval + 1 s for the swapped value; return what is served then."""
    deadline = time.monotonic() + INTERVAL + 1.0
    while time.monotonic() < deadline and manager.get("DB_PASSWORD") == "canary-db-one":
        time.sleep(0.01)
    return manager.get("DB_PASSWORD")


def test_the_file_mounted_deployment_differs_from_the_shipped_one_only_in_its_secrets() -> None:
    """deployment-files.yaml mounts the Secret 0400 at SECRETS_DIR, no secret in env; else same."""
    k8s = Path(__file__).resolve().parent.parent / "k8s"
    shipped = yaml.safe_load((k8s / "deployment.yaml").read_text(encoding="utf-8"))
    files = yaml.safe_load((k8s / "deployment-files.yaml").read_text(encoding="utf-8"))
    pod, container = (
        files["spec"]["template"]["spec"],
        files["spec"]["template"]["spec"]["containers"][0],
    )
    volume = next(v for v in pod["volumes"] if "secret" in v)
    assert volume["secret"] == {"secretName": "yosai-api-secrets", "defaultMode": 0o400}
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert mount == {"name": volume["name"], "mountPath": env["SECRETS_DIR"], "readOnly": True}
    assert float(env["SECRETS_WATCH_INTERVAL"]) > 0
    assert container["envFrom"] == [{"configMapRef": {"name": "yosai-api-config"}}]
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    # Everything else (name, probes, security context, resources) is the shipped Deployment's.
    for spec in (pod, shipped["spec"]["template"]["spec"]):
        spec["securityContext"].pop("fsGroup", None)
        spec["volumes"] = [v for v in spec["volumes"] if "secret" not in v]
        for each in spec["containers"]:
            each.pop("env", None)
            each.pop("envFrom")
            each["volumeMounts"] = [m for m in each["volumeMounts"] if m["name"] == "tmp"]
    assert files == shipped
