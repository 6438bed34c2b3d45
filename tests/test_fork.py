"""Fork safety: after os.fork() no process gets another key's value or another process's answer.

A manager reads from OpenBao (a static token, and AppRole) and from the AWS emulator in the
parent, so its pools hold live keep-alive connections; then 4 children are forked and read 20
keys each, concurrently with the parent, with the cache off (every read goes to the server) and
on. Each read is checked against the value that key must have. The children report over pipes.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from typing import Any

import pytest

from tests.servers.moto import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, MotoServer
from tests.servers.openbao import OpenBaoServer
from yosai_secrets.errors import ConfigurationError
from yosai_secrets.manager import SecretManager
from yosai_secrets.testing import MemoryBackend

pytestmark = pytest.mark.integration

CHILDREN = 4
KEYS = 20
READ_SECONDS = 1.5


def unique() -> str:
    """A name no other test uses."""
    return "f" + uuid.uuid4().hex[:10]


def read_loop(manager: SecretManager, expected: dict[str, str], seconds: float) -> dict[str, int]:
    """Read every key in turn for ``seconds``; count reads, errors and wrong values."""
    counts = {"reads": 0, "errors": 0, "wrong": 0}
    deadline = time.monotonic() + seconds
    keys = list(expected)
    offset = os.getpid() % len(keys)  # each process walks the keys in its own order
    keys = keys[offset:] + keys[:offset]
    while time.monotonic() < deadline:
        for key in keys:
            counts["reads"] += 1
            try:
                value = manager.get(key)
            except ConfigurationError:
                counts["errors"] += 1
                continue
            if value != expected[key]:
                counts["wrong"] += 1
    return counts


def fork_and_read(
    manager: SecretManager, expected: dict[str, str], seconds: float = READ_SECONDS
) -> dict[str, dict[str, int]]:
    """Fork CHILDREN children that read beside the parent; return each process's counts."""
    children: list[tuple[int, int]] = []
    for _ in range(CHILDREN):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: read, report, and leave without running pytest's teardown
            code = 0
            try:
                os.close(read_end)
                counts = read_loop(manager, expected, seconds)
                os.write(write_end, json.dumps(counts).encode())
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(write_end)
        children.append((pid, read_end))
    results = {"parent": read_loop(manager, expected, seconds)}
    for number, (pid, read_end) in enumerate(children):
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, f"child {number} failed"
        results[f"child {number}"] = json.loads(data)
    return results


def assert_clean(results: dict[str, dict[str, int]]) -> None:
    """Every process read something, with no error and no wrong value."""
    print("\n" + "\n".join(f"  {name}: {counts}" for name, counts in results.items()))
    for name, counts in results.items():
        assert counts["reads"] > 0, name
        assert (counts["errors"], counts["wrong"]) == (0, 0), (name, counts)


@pytest.fixture
def vault_keys(openbao: OpenBaoServer) -> dict[str, str]:
    """KEYS paths in OpenBao, each with a value naming it; key -> expected value."""
    expected = {}
    for index in range(KEYS):
        path = f"secret/data/{unique()}"
        value = f"value-of-{index}-{uuid.uuid4().hex}"
        openbao.api("PUT", path, {"data": {"v": value}})
        expected[f"vault:{path}#v"] = value
    return expected


@pytest.fixture
def aws_keys(moto_server: MotoServer) -> tuple[dict[str, str], dict[str, str]]:
    """KEYS secrets in the emulator; (the environment for them, key -> expected value)."""
    prefix = unique() + "/"
    client = moto_server.client()
    expected = {}
    for index in range(KEYS):
        value = f"aws-value-{index}-{uuid.uuid4().hex}"
        client.create_secret(Name=f"{prefix}K{index}", SecretString=value)
        expected[f"K{index}"] = value
    environ = {
        "SECRET_BACKEND": "aws",
        "SECRET_NAME_PREFIX": prefix,
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": moto_server.region,
    }
    return environ, expected


def approle_environ(openbao: OpenBaoServer) -> dict[str, str]:
    """An AppRole that may read secret/: VAULT_ROLE_ID and VAULT_SECRET_ID."""
    if "approle/" not in openbao.api("GET", "sys/auth")[1]:
        openbao.api("POST", "sys/auth/approle", {"type": "approle"})
    openbao.api(
        "PUT", "sys/policy/fork-read", {"policy": 'path "secret/*" {capabilities=["read"]}'}
    )
    role = unique()
    openbao.api("POST", f"auth/approle/role/{role}", {"token_policies": ["fork-read"]})
    role_id = openbao.api("GET", f"auth/approle/role/{role}/role-id")[1]["data"]["role_id"]
    secret_id = openbao.api("POST", f"auth/approle/role/{role}/secret-id", {})[1]["data"]
    return {
        "VAULT_ADDR": openbao.addr,
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id["secret_id"],
    }


@pytest.mark.parametrize("ttl_seconds", [0.0, 300.0], ids=["cache-off", "cache-on"])
def test_vault_token_reads_after_fork_are_each_processes_own(
    openbao: OpenBaoServer, vault_keys: dict[str, str], ttl_seconds: float
) -> None:
    """A static-token Vault manager used before the fork: 0 errors, 0 wrong values anywhere."""
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.token}
    manager = SecretManager("env", environ=environ, ttl_seconds=ttl_seconds)
    assert [manager.get(k) for k in vault_keys] == list(vault_keys.values())  # warm pools
    assert_clean(fork_and_read(manager, vault_keys))


@pytest.mark.parametrize("ttl_seconds", [0.0, 300.0], ids=["cache-off", "cache-on"])
def test_vault_approle_reads_after_fork_are_each_processes_own(
    openbao: OpenBaoServer, vault_keys: dict[str, str], ttl_seconds: float
) -> None:
    """An AppRole Vault manager (renewer started) used before the fork: 0 errors, 0 wrong."""
    manager = SecretManager("env", environ=approle_environ(openbao), ttl_seconds=ttl_seconds)
    assert [manager.get(k) for k in vault_keys] == list(vault_keys.values())
    assert_clean(fork_and_read(manager, vault_keys))


@pytest.mark.parametrize("ttl_seconds", [0.0, 300.0], ids=["cache-off", "cache-on"])
def test_aws_reads_after_fork_are_each_processes_own(
    aws_keys: tuple[dict[str, str], dict[str, str]], ttl_seconds: float
) -> None:
    """An AWS manager (boto3 client built) used before the fork: 0 errors, 0 wrong values."""
    environ, expected = aws_keys
    manager = SecretManager(environ=environ, ttl_seconds=ttl_seconds)
    assert [manager.get(k) for k in expected] == list(expected.values())
    assert_clean(fork_and_read(manager, expected))


def test_get_many_after_fork(openbao: OpenBaoServer, vault_keys: dict[str, str]) -> None:
    """Batched reads (fetch_many's thread pool) in the children too: 0 errors, 0 wrong."""
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.token}
    manager = SecretManager("env", environ=environ, ttl_seconds=0)
    assert manager.get_many(vault_keys) == vault_keys
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            ok = all(manager.get_many(vault_keys) == vault_keys for _ in range(5))
        finally:
            os._exit(0 if ok else 1)
    assert all(manager.get_many(vault_keys) == vault_keys for _ in range(5))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


class _StuckInParent(MemoryBackend):
    """A backend whose reads block in the parent (until released) and answer at once in a child."""

    def __init__(self, parent: int, release: threading.Event, entered: threading.Event) -> None:
        super().__init__({"K": "v"})
        self._parent = parent
        self._release = release
        self._entered = entered

    def fetch(self, path: str) -> Any:
        if os.getpid() == self._parent:
            self._entered.set()
            self._release.wait(30)
        return super().fetch(path)


def _child_exit_code(pid: int, timeout_seconds: float) -> int | None:
    """The child's exit code, or None (after killing it) when it did not end in time."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_fork_during_a_read_in_flight_does_not_deadlock() -> None:
    """A child forked while the parent's single-flight read is in flight reads by itself."""
    release, entered = threading.Event(), threading.Event()
    manager = SecretManager(_StuckInParent(os.getpid(), release, entered), ttl_seconds=60)
    reader = threading.Thread(target=manager.get, args=("K",), daemon=True)
    reader.start()
    assert entered.wait(10)  # the parent's flight holds the key now
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if manager.get("K") == "v" else 1
        finally:
            os._exit(code)
    try:
        assert _child_exit_code(pid, timeout_seconds=10) == 0
    finally:
        release.set()
        reader.join(10)
    assert manager.get("K") == "v"


def test_fork_while_the_token_renewer_runs(openbao: OpenBaoServer) -> None:
    """The renewer thread is not in the child; the child renews by itself and reads."""
    path = f"secret/data/{unique()}"
    openbao.api("PUT", path, {"data": {"v": "renewed"}})
    token = openbao.api("POST", "auth/token/create", {"ttl": "30s", "policies": ["root"]})[1]
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": token["auth"]["client_token"]}
    manager = SecretManager("vault", environ=environ, ttl_seconds=0)
    assert manager.get(f"{path}#v") == "renewed"
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if all(manager.get(f"{path}#v") == "renewed" for _ in range(20)) else 1
        finally:
            os._exit(code)
    assert _child_exit_code(pid, timeout_seconds=15) == 0


def test_an_aws_answer_for_another_secret_is_refused(
    aws_keys: tuple[dict[str, str], dict[str, str]],
) -> None:
    """A GetSecretValue answer naming another secret is an error, never that secret's value."""
    from yosai_secrets.backends.aws import AwsBackend
    from yosai_secrets.errors import BackendError

    environ, expected = aws_keys
    backend = AwsBackend.from_environ(environ)
    prefix = environ["SECRET_NAME_PREFIX"]

    def swap(parsed: dict[str, Any], **_: Any) -> None:
        parsed["Name"] = prefix + "K1"
        parsed["ARN"] = parsed.get("ARN", "").replace("/K0", "/K1")

    backend.client.meta.events.register("after-call.secrets-manager.GetSecretValue", swap)
    with pytest.raises(BackendError, match="another secret") as info:
        backend.fetch(prefix + "K0")
    assert expected["K0"] not in str(info.value) and expected["K1"] not in str(info.value)


def test_a_vault_mount_answer_for_another_path_is_ignored(openbao: OpenBaoServer) -> None:
    """A mount look-up answered for another mount is not remembered for the asked path."""
    from yosai_secrets.backends.vault import VaultBackend
    from yosai_secrets.backends.vault_settings import VaultSettings

    backend = VaultBackend(
        settings=VaultSettings.from_environ({"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": "root"})
    )
    original = backend.transport.send

    def lying(method: str, path: str, body: Any, token: str | None) -> dict[str, Any]:
        answer = original(method, path, body, token)
        if path.startswith("sys/internal/ui/mounts/"):
            answer = {"data": {"path": "elsewhere/", "type": "kv", "options": {"version": "2"}}}
        return answer

    backend.transport.send = lying  # type: ignore[method-assign]
    path = f"kv/{unique()}"
    openbao.api("PUT", path, {"v": "one"})
    assert backend.fetch(backend.locate(f"{path}#v").path) == {"v": "one"}
    assert "elsewhere/" not in backend.mounts.mount_paths()


_PRELOADED_APP = '''
"""The API under gunicorn --preload: secrets are read in the master, before the workers fork."""
import hashlib
import json
import os

from yosai_secrets import get_secret
from yosai_secrets.api import create_app

KEYS = json.loads(os.environ["FORK_TEST_KEYS"])
for key in KEYS:
    get_secret(key)  # the master's pool now holds keep-alive connections the workers inherit

app = create_app({"YOSAI_DASHBOARD": False})


@app.get("/digests")
def digests():
    values = {k: hashlib.sha256(get_secret(k).encode()).hexdigest() for k in KEYS}
    return {"pid": os.getpid(), "digests": values}
'''


def test_gunicorn_preload_with_two_workers(
    openbao: OpenBaoServer, vault_keys: dict[str, str], tmp_path: Any
) -> None:
    """gunicorn preload_app with 2 workers: every answer holds the right values, none fails."""
    import hashlib
    import subprocess
    import sys
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from tests.auth0_helpers import new_tenant
    from tests.servers.openbao import free_port

    tenant = new_tenant()
    (tmp_path / "preloaded_app.py").write_text(_PRELOADED_APP)
    port = free_port()
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("SECRET", "YOSAI_", "AUTH0_"))
    }
    environ.update(
        YOSAI_ENV="test",
        YOSAI_CONFIG_DIR=str(tmp_path / "no-config"),
        SECRET_KEY="p" * 20 + os.urandom(16).hex(),
        SECRET_CACHE_TTL="0",
        VAULT_ADDR=openbao.addr,
        VAULT_TOKEN=openbao.token,
        AUTH0_DOMAIN=tenant.domain,
        AUTH0_AUDIENCE=tenant.audience,
        AUTH0_JWKS_URL=tenant.server.url,
        FORK_TEST_KEYS=json.dumps(list(vault_keys)),
        PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]),
    )
    command = [sys.executable, "-m", "gunicorn", "--preload", "-w", "2", "--threads", "4"]
    command += ["-b", f"127.0.0.1:{port}", "--log-level", "warning", "preloaded_app:app"]
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=environ, stdout=subprocess.DEVNULL, stderr=sink
        )
    want = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in vault_keys.items()}
    bearer = {"Authorization": f"Bearer {tenant.token()}"}

    def get(path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())

    def hammer(_: int) -> dict[str, Any]:
        counts: dict[str, Any] = {"reads": 0, "errors": 0, "wrong": 0, "pids": set()}
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                status, body = get("/digests")
                secrets_status, _ = get("/api/secrets", bearer)
            except OSError:
                counts["errors"] += 1
                continue
            counts["reads"] += len(want)
            counts["errors"] += (status != 200) + (secrets_status != 200)
            counts["wrong"] += sum(body["digests"][k] != v for k, v in want.items())
            counts["pids"].add(body["pid"])
        return counts

    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                get("/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(hammer, range(4)))
    finally:
        process.terminate()
        process.wait(timeout=30)
        tenant.server.close()
    total = {key: sum(r[key] for r in results) for key in ("reads", "errors", "wrong")}
    pids = set().union(*(r["pids"] for r in results))
    print(f"\n  gunicorn --preload -w 2: {total}, workers answering: {len(pids)}")
    assert total["reads"] > 0 and (total["errors"], total["wrong"]) == (0, 0), log.read_text()
    assert len(pids) == 2
