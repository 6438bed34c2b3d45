"""Vault/OpenBao authentication against a real server: AppRole, Kubernetes, renewal, re-login."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.openbao import OpenBaoServer, api
from yosai_secrets import get_secret
from yosai_secrets.backends.vault import VaultBackend
from yosai_secrets.backends.vault_auth import (
    AppRoleAuth,
    KubernetesAuth,
    Login,
    StaticTokenAuth,
)
from yosai_secrets.backends.vault_settings import VaultSettings
from yosai_secrets.backends.vault_token import TokenKeeper
from yosai_secrets.errors import BackendAuthError, BackendPermissionError, BackendUnavailableError
from yosai_secrets.manager import SecretManager
from yosai_secrets.testing import FakeClock

pytestmark = pytest.mark.integration

_POLICY = (
    'path "secret/data/*" { capabilities = ["read"] }\npath "kv/*" { capabilities = ["read"] }'
)


def unique() -> str:
    """A name no other test uses."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def approle(openbao: OpenBaoServer) -> Callable[..., tuple[str, str]]:
    """Make an AppRole with the given token settings; return (role_id, secret_id)."""
    mounts = openbao.api("GET", "sys/auth")[1]
    if "approle/" not in mounts:
        openbao.api("POST", "sys/auth/approle", {"type": "approle"})
    openbao.api("PUT", "sys/policy/yosai-read", {"policy": _POLICY})

    def make(**token_settings: Any) -> tuple[str, str]:
        name = unique()
        settings = {"token_policies": ["yosai-read"], **token_settings}
        assert openbao.api("POST", f"auth/approle/role/{name}", settings)[0] == 204
        role_id = openbao.api("GET", f"auth/approle/role/{name}/role-id")[1]["data"]["role_id"]
        secret_id = openbao.api("POST", f"auth/approle/role/{name}/secret-id", {})[1]["data"][
            "secret_id"
        ]
        return role_id, secret_id

    return make


def put(server: OpenBaoServer, name: str, **fields: str) -> None:
    """Write fields to KV v1 at kv/<name>."""
    server.api("PUT", f"kv/{name}", fields)


def approle_backend(
    server: OpenBaoServer, role_id: str, secret_id: str, **kwargs: Any
) -> VaultBackend:
    """A backend that logs in with AppRole."""
    settings = VaultSettings(addresses=(server.addr,))
    return VaultBackend(settings=settings, auth=AppRoleAuth(role_id, secret_id=secret_id), **kwargs)


def token_alive(server: OpenBaoServer, token: str) -> bool:
    """Ask the server (as root) whether ``token`` is still valid."""
    return server.api("POST", "auth/token/lookup", {"token": token})[0] == 200


def test_approle_login_from_environment(
    openbao: OpenBaoServer, approle: Callable[..., tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """VAULT_ROLE_ID and VAULT_SECRET_ID (no VAULT_TOKEN) log in and read."""
    role_id, secret_id = approle(token_ttl="60s")
    name = unique()
    put(openbao, name, k="approle")
    monkeypatch.setenv("SECRET_BACKEND", "vault")
    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
    assert get_secret(f"kv/{name}#k") == "approle"


def test_approle_secret_id_file(
    openbao: OpenBaoServer, approle: Callable[..., tuple[str, str]], tmp_path: Path
) -> None:
    """VAULT_SECRET_ID_FILE is read at login."""
    role_id, secret_id = approle(token_ttl="60s")
    secret_file = tmp_path / "secret-id"
    secret_file.write_text(secret_id + "\n")
    name = unique()
    put(openbao, name, k="file")
    settings = VaultSettings.from_environ(
        {
            "VAULT_ADDR": openbao.addr,
            "VAULT_ROLE_ID": role_id,
            "VAULT_SECRET_ID_FILE": str(secret_file),
        }
    )
    backend = VaultBackend(settings=settings)
    assert backend.fetch(f"kv/{name}") == {"k": "file"}
    assert backend.keeper.logins == 1


def test_renewal_is_due_two_thirds_into_the_ttl(
    openbao: OpenBaoServer, approle: Callable[..., tuple[str, str]]
) -> None:
    """With a 60 s token, a read at 39 s does not renew, one at 41 s does (same token)."""
    role_id, secret_id = approle(token_ttl="60s", token_max_ttl="1h")
    name = unique()
    put(openbao, name, k="v")
    clock = FakeClock()
    backend = approle_backend(openbao, role_id, secret_id, clock=clock)
    backend.fetch(f"kv/{name}")
    token = backend.keeper.token
    clock.advance(39)
    backend.fetch(f"kv/{name}")
    assert backend.keeper.renewals == 0
    clock.advance(2)
    backend.fetch(f"kv/{name}")
    assert (backend.keeper.renewals, backend.keeper.logins) == (1, 1)
    assert backend.keeper.token == token
    assert 39 < (backend.keeper.seconds_until_due() or 0) <= 40


def test_short_ttl_token_outlives_its_first_ttl(
    openbao: OpenBaoServer, approle: Callable[..., tuple[str, str]]
) -> None:
    """A 2 s AppRole token is renewed in-process and still valid well past 2 s."""
    role_id, secret_id = approle(token_ttl="2s", token_max_ttl="60s")
    name = unique()
    put(openbao, name, k="v")
    backend = approle_backend(openbao, role_id, secret_id)
    started = time.monotonic()
    while time.monotonic() - started < 3.5:
        assert backend.fetch(f"kv/{name}") == {"k": "v"}
        time.sleep(0.25)
    token = backend.keeper.token
    assert token is not None and token_alive(openbao, token)
    assert backend.keeper.logins == 1 and backend.keeper.renewals >= 2


def test_login_again_when_max_ttl_is_reached(
    openbao: OpenBaoServer, approle: Callable[..., tuple[str, str]]
) -> None:
    """When renewal can no longer extend the token (explicit max TTL), it logs in again."""
    role_id, secret_id = approle(token_ttl="2s", token_explicit_max_ttl="3s", secret_id_num_uses=0)
    name = unique()
    put(openbao, name, k="v")
    backend = approle_backend(openbao, role_id, secret_id)
    started = time.monotonic()
    failures = 0
    while time.monotonic() - started < 5:
        try:
            backend.fetch(f"kv/{name}")
        except BackendAuthError:
            failures += 1
        time.sleep(0.2)
    assert failures == 0
    assert backend.keeper.logins >= 2


def test_background_renewer_keeps_an_idle_periodic_token_alive(openbao: OpenBaoServer) -> None:
    """A periodic VAULT_TOKEN (period 2 s) outlives 3.5 s of idleness thanks to the renewer."""
    client = openbao.client()
    openbao.api("PUT", "sys/policy/yosai-read", {"policy": _POLICY})
    token = client.auth.token.create(policies=["yosai-read"], period="2s")["auth"]["client_token"]
    name = unique()
    put(openbao, name, k="v")
    settings = VaultSettings.from_environ({"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": token})
    backend = VaultBackend(settings=settings, renew_in_background=True)
    try:
        backend.fetch(f"kv/{name}")
        time.sleep(3.5)
        assert token_alive(openbao, token)
        assert backend.fetch(f"kv/{name}") == {"k": "v"}
        assert backend.keeper.renewals >= 1
    finally:
        backend.close()


def test_revoked_token_is_replaced_by_a_new_login(
    openbao: OpenBaoServer, approle: Callable[..., tuple[str, str]]
) -> None:
    """A 403 with an AppRole token (revoked behind our back) logs in again and retries once."""
    role_id, secret_id = approle(token_ttl="1h")
    name = unique()
    put(openbao, name, k="v")
    backend = approle_backend(openbao, role_id, secret_id)
    backend.fetch(f"kv/{name}")
    assert openbao.api("POST", "auth/token/revoke", {"token": backend.keeper.token})[0] == 204
    assert backend.fetch(f"kv/{name}") == {"k": "v"}
    assert backend.keeper.logins == 2


def test_permission_denied_does_not_spend_a_login(
    openbao: OpenBaoServer, approle: Callable[..., tuple[str, str]]
) -> None:
    """A path the policy forbids is BackendPermissionError, without logging in again."""
    role_id, secret_id = approle(token_ttl="1h")
    backend = approle_backend(openbao, role_id, secret_id)
    locked = unique()
    openbao.api("POST", f"sys/mounts/{locked}", {"type": "kv", "options": {"version": "1"}})
    for _ in range(3):
        with pytest.raises(BackendPermissionError, match=f"{locked}/app"):
            backend.fetch(f"{locked}/app")
    assert backend.keeper.logins == 1


def test_refused_approle_login_is_an_auth_error_without_the_secret_id(
    openbao: OpenBaoServer, approle: Callable[..., tuple[str, str]]
) -> None:
    """A wrong secret id raises BackendAuthError that names the method, not the secret id."""
    role_id, _ = approle(token_ttl="60s")
    wrong = str(uuid.uuid4())
    backend = approle_backend(openbao, role_id, wrong)
    with pytest.raises(BackendAuthError) as info:
        SecretManager(backend).get("kv/x#y")
    assert "AppRole login at auth/approle was refused" in str(info.value)
    assert wrong not in str(info.value) and role_id not in str(info.value)


# -- Kubernetes auth (the Kubernetes TokenReview API cannot run here: an in-process fake) -------


class _TokenReview(http.server.BaseHTTPRequestHandler):
    """Answers TokenReview as the API server would for system:serviceaccount:default:app."""

    reviewed: list[str] = []  # noqa: RUF012 - shared record, written by the server thread

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        review = json.loads(self.rfile.read(length))
        self.reviewed.append(review["spec"]["token"])
        body = json.dumps(
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "status": {
                    "authenticated": True,
                    "user": {
                        "username": "system:serviceaccount:default:app",
                        "uid": "uid-app",
                        "groups": ["system:serviceaccounts"],
                    },
                },
            }
        ).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Stay quiet."""


@pytest.fixture
def kubernetes_auth(openbao: OpenBaoServer, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Kubernetes auth at a unique mount backed by a fake TokenReview API; (mount, jwt file)."""
    import certifi
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenReview)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    mount = "k8s-" + unique()
    bundle = Path(certifi.where()).read_text()
    ca = bundle[bundle.index("-----BEGIN CERTIFICATE-----") :]
    ca = ca[: ca.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    openbao.api("PUT", "sys/policy/yosai-read", {"policy": _POLICY})
    openbao.api("POST", f"sys/auth/{mount}", {"type": "kubernetes"})
    openbao.api(
        "POST",
        f"auth/{mount}/config",
        {
            "kubernetes_host": f"http://127.0.0.1:{server.server_port}",
            "kubernetes_ca_cert": ca,  # required by the plugin; unused over http
            "disable_local_ca_jwt": True,
        },
    )
    openbao.api(
        "POST",
        f"auth/{mount}/role/app",
        {
            "bound_service_account_names": ["app"],
            "bound_service_account_namespaces": ["default"],
            "token_policies": ["yosai-read"],
            "token_ttl": "60s",
        },
    )
    claims = {
        "iss": "kubernetes/serviceaccount",
        "sub": "system:serviceaccount:default:app",
        "kubernetes.io/serviceaccount/namespace": "default",
        "kubernetes.io/serviceaccount/service-account.name": "app",
        "kubernetes.io/serviceaccount/service-account.uid": "uid-app",
    }
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token_file = tmp_path / "token"
    token_file.write_text(jwt.encode(claims, key, algorithm="RS256"))
    try:
        yield mount, token_file
    finally:
        server.shutdown()
        server.server_close()


def test_kubernetes_login_reads_with_the_service_account_token(
    openbao: OpenBaoServer, kubernetes_auth: tuple[str, Path]
) -> None:
    """VAULT_K8S_ROLE, VAULT_K8S_MOUNT and the token file log in and read."""
    mount, token_file = kubernetes_auth
    name = unique()
    put(openbao, name, k="k8s")
    settings = VaultSettings.from_environ(
        {
            "VAULT_ADDR": openbao.addr,
            "VAULT_K8S_ROLE": "app",
            "VAULT_K8S_MOUNT": mount,
            "VAULT_K8S_TOKEN_FILE": str(token_file),
        }
    )
    assert isinstance(settings.auth, KubernetesAuth)
    backend = VaultBackend(settings=settings)
    assert backend.fetch(f"kv/{name}") == {"k": "k8s"}
    assert _TokenReview.reviewed[-1] == token_file.read_text()
    assert backend.keeper.logins == 1


def test_kubernetes_default_token_file_and_missing_file(tmp_path: Path) -> None:
    """The token file defaults to the pod's mount; a missing file is an auth error naming it."""
    default = KubernetesAuth("app")
    assert str(default.token_file) == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    missing = tmp_path / "absent"
    auth = KubernetesAuth("app", token_file=missing)
    with pytest.raises(BackendAuthError, match=str(missing)):
        auth.login(lambda *a: {})


# -- the token keeper's decisions (its transport is an in-process fake) -----------------------


class _FakeSend:
    """Answers login and renew-self like a server would, or fails renewals on demand."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.renew_fails: Exception | None = None
        self.renew_ttl = 60

    def __call__(
        self, method: str, path: str, body: dict[str, Any] | None, token: str | None
    ) -> dict[str, Any]:
        self.calls.append(path)
        if path.endswith("/login"):
            return {
                "auth": {
                    "client_token": f"tok-{len(self.calls)}",
                    "lease_duration": 60,
                    "renewable": True,
                }
            }
        if path == "auth/token/renew-self":
            if self.renew_fails is not None:
                raise self.renew_fails
            return {
                "auth": {"client_token": token, "lease_duration": self.renew_ttl, "renewable": True}
            }
        raise AssertionError(path)


def test_transient_renewal_failure_keeps_the_token_and_retries_soon() -> None:
    """A renewal that meets an outage keeps the valid token and is tried again a little later."""
    clock = FakeClock()
    send = _FakeSend()
    keeper = TokenKeeper(AppRoleAuth("role", secret_id="sid"), clock=clock, retry_seconds=5)
    first = keeper.ensure(send)
    clock.advance(41)
    send.renew_fails = BackendUnavailableError("down", backend="vault")
    assert keeper.ensure(send) == first
    assert keeper.seconds_until_due() == pytest.approx(5)
    send.renew_fails = None
    clock.advance(5)
    assert keeper.ensure(send) == first and keeper.renewals == 1


def test_capped_renewal_leads_to_a_new_login() -> None:
    """A renewal that returns a much shorter TTL (max TTL reached) is followed by a login."""
    clock = FakeClock()
    send = _FakeSend()
    keeper = TokenKeeper(AppRoleAuth("role", secret_id="sid"), clock=clock)
    first = keeper.ensure(send)
    clock.advance(41)
    send.renew_ttl = 10
    assert keeper.ensure(send) == first
    clock.advance(7)
    assert keeper.ensure(send) != first and keeper.logins == 2


def test_static_token_that_cannot_renew_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    """A static token past its renewals is kept, with one warning to provide a new one."""
    clock = FakeClock()
    calls: list[str] = []

    def send(method: str, path: str, body: Any, token: str | None) -> dict[str, Any]:
        calls.append(path)
        if path == "auth/token/lookup-self":
            return {"data": {"ttl": 30, "renewable": True}}
        raise BackendAuthError("vault answered 403", backend="vault")

    keeper = TokenKeeper(StaticTokenAuth("static-token-value"), clock=clock)
    keeper.ensure(send)
    clock.advance(21)
    with caplog.at_level(logging.WARNING):
        assert keeper.ensure(send) == "static-token-value"
        clock.advance(1)
        keeper.ensure(send)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "cannot be renewed" in warnings[0]
    assert "static-token-value" not in warnings[0] and "static-token-value" not in repr(keeper)
    assert calls == ["auth/token/lookup-self", "auth/token/renew-self"]
    assert Login("x", 1, True).__repr__().count("x") == 0


def test_deferred_static_token_is_used_at_once_and_renewed_from_its_later_lookup() -> None:
    """With defer_lookup, ensure() asks nothing; learn_ttl() schedules renewal at 2/3 of the TTL."""
    clock = FakeClock()
    calls: list[str] = []
    lookups = [BackendUnavailableError("down", backend="vault")]

    def send(method: str, path: str, body: Any, token: str | None) -> dict[str, Any]:
        calls.append(path)
        if path == "auth/token/lookup-self":
            if lookups:
                raise lookups.pop()
            return {"data": {"ttl": 30, "renewable": True}}
        assert path == "auth/token/renew-self"
        return {"auth": {"client_token": token, "lease_duration": 30, "renewable": True}}

    keeper = TokenKeeper(StaticTokenAuth("static"), clock=clock, retry_seconds=5, defer_lookup=True)
    assert keeper.ensure(send) == "static" and calls == []
    assert keeper.ttl_unknown and keeper.seconds_until_due() is None
    keeper.learn_ttl(send)  # the server is down: tried again no sooner than 5 s later
    keeper.learn_ttl(send)
    assert calls == ["auth/token/lookup-self"] and keeper.ttl_unknown
    clock.advance(5)
    keeper.learn_ttl(send)
    assert not keeper.ttl_unknown and keeper.seconds_until_due() == pytest.approx(20)
    clock.advance(21)
    assert keeper.ensure(send) == "static" and keeper.renewals == 1
    assert calls == ["auth/token/lookup-self"] * 2 + ["auth/token/renew-self"]


def test_auth_flow_logs_no_token_or_secret_id(
    openbao: OpenBaoServer,
    approle: Callable[..., tuple[str, str]],
    caplog: pytest.LogCaptureFixture,
    root_logger_capture: list[str],
) -> None:
    """Login, renewal and re-login at DEBUG log neither the token nor the secret id."""
    role_id, secret_id = approle(token_ttl="60s")
    name = unique()
    put(openbao, name, k="v")
    clock = FakeClock()
    with caplog.at_level(logging.DEBUG):
        backend = approle_backend(openbao, role_id, secret_id, clock=clock)
        backend.fetch(f"kv/{name}")
        token = backend.keeper.token
        clock.advance(45)
        backend.fetch(f"kv/{name}")
        api(openbao.addr, "POST", "auth/token/revoke-self", {}, token=token)
        backend.fetch(f"kv/{name}")
    text = "\n".join([r.getMessage() for r in caplog.records] + root_logger_capture)
    text += repr(backend) + repr(backend.keeper) + str(backend.token_status())
    assert token is not None and token not in text
    assert secret_id not in text
