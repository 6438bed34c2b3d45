"""Incident revocations against the real OpenBao test server, and the Auth0 Management API's
rotate-secret against a local stand-in (tests/auth0_mgmt_standin.py: Auth0 cannot run here)."""

from __future__ import annotations

import logging
import socket
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.auth0_mgmt_standin import Auth0MgmtStandin
from tests.servers.openbao import OpenBaoServer, api
from yosai_secrets.audit.auth0_mgmt import config_from_environ
from yosai_secrets.audit.outcome import Status, StepOutcome
from yosai_secrets.audit.revoke import (
    revoke_leases,
    revoke_vault_token,
    rotate_auth0_client_secret,
)
from yosai_secrets.secret import Secret

pytestmark = pytest.mark.integration


def unique() -> str:
    """A name no other test uses."""
    return "rv" + uuid.uuid4().hex[:12]


def child_token(server: OpenBaoServer, *policies: str) -> str:
    """A fresh token (default policy plus ``policies``) created by root."""
    status, body = server.api(
        "POST", "auth/token/create", {"policies": ["default", *policies], "ttl": "1h"}
    )
    assert status == 200, body
    return str(body["auth"]["client_token"])


def token_alive(server: OpenBaoServer, token: str) -> bool:
    """Ask the server (as root) whether ``token`` is still valid."""
    return server.api("POST", "auth/token/lookup", {"token": token})[0] == 200


def policy(server: OpenBaoServer, text: str) -> str:
    """Write a policy of ``text`` under a fresh name; return the name."""
    name = unique()
    assert server.api("PUT", f"sys/policy/{name}", {"policy": text})[0] == 204
    return name


def approle(server: OpenBaoServer, *, may_destroy: bool, extra: str = "") -> tuple[str, str, str]:
    """A fresh AppRole role whose tokens may (or not) destroy its secret ids: name, ids."""
    if "approle/" not in server.api("GET", "sys/auth")[1]:
        server.api("POST", "sys/auth/approle", {"type": "approle"})
    name = unique()
    rules = extra
    if may_destroy:
        rules += (
            f'\npath "auth/approle/role/{name}/secret-id/destroy" {{ capabilities = ["update"] }}'
        )
    policies = [policy(server, rules)] if rules.strip() else []
    settings = {"token_policies": ["default", *policies], "token_ttl": "10m"}
    assert server.api("POST", f"auth/approle/role/{name}", settings)[0] == 204
    role_id = server.api("GET", f"auth/approle/role/{name}/role-id")[1]["data"]["role_id"]
    secret_id = server.api("POST", f"auth/approle/role/{name}/secret-id", {})[1]["data"][
        "secret_id"
    ]
    return name, role_id, secret_id


def login_works(server: OpenBaoServer, role_id: str, secret_id: str) -> bool:
    """Whether an AppRole login with these ids succeeds (its token is revoked at once)."""
    status, body = api(
        server.addr, "POST", "auth/approle/login", {"role_id": role_id, "secret_id": secret_id}
    )
    if status == 200:
        server.api("POST", "auth/token/revoke", {"token": body["auth"]["client_token"]})
    return status == 200


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record, DEBUG included, to search for values."""
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_nowhere(outcome: StepOutcome, caplog: pytest.LogCaptureFixture, *values: str) -> None:
    """No value appears in the outcome (detail, repr) nor in any log line."""
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for value in values:
        assert value not in outcome.detail
        assert value not in repr(outcome)
        assert value not in logged


# -- the Vault token -------------------------------------------------------------------------------


def test_leaked_vault_token_in_use_is_revoked_and_then_refused(
    openbao: OpenBaoServer, debug_log: pytest.LogCaptureFixture
) -> None:
    """A leaked VAULT_TOKEN is revoked with revoke-self, and the check sees Vault refuse it."""
    token = child_token(openbao)
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": token}

    outcome = revoke_vault_token(environ, {"VAULT_TOKEN": token})

    assert outcome.status is Status.DONE, outcome.detail
    assert "revoke-self" in outcome.detail
    assert "now refuses it" in outcome.detail
    assert not token_alive(openbao, token)
    assert_nowhere(outcome, debug_log, token)


def test_token_not_leaked_is_skipped_and_still_works(
    openbao: OpenBaoServer, canary: str, debug_log: pytest.LogCaptureFixture
) -> None:
    """When VAULT_TOKEN is not among the leaked values, nothing is revoked."""
    token = child_token(openbao)
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": token}

    outcome = revoke_vault_token(environ, {"DB_PASSWORD": canary, "EMPTY": ""})

    assert outcome.status is Status.SKIPPED
    assert token_alive(openbao, token)
    assert_nowhere(outcome, debug_log, token, canary)


def test_token_leaked_under_another_name_is_revoked(openbao: OpenBaoServer) -> None:
    """The token is matched by value: leaked as another key, it is revoked and that key named."""
    token = child_token(openbao)
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": token}

    outcome = revoke_vault_token(environ, {"SECRET_KEY": "x" * 40, "API_TOKEN": token})

    assert outcome.status is Status.DONE
    assert "leaked as API_TOKEN" in outcome.detail
    assert not token_alive(openbao, token)


def test_token_already_revoked_is_reported_refused(openbao: OpenBaoServer) -> None:
    """A leaked token that was already revoked: revoke-self is refused, and the check says so."""
    token = child_token(openbao)
    openbao.api("POST", "auth/token/revoke", {"token": token})
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": token}

    outcome = revoke_vault_token(environ, {"VAULT_TOKEN": token})

    assert outcome.status is Status.DONE
    assert "refused by revoke-self" in outcome.detail
    assert "now refuses it" in outcome.detail


def test_leaked_token_not_in_use_is_revoked_by_accessor(
    openbao: OpenBaoServer, debug_log: pytest.LogCaptureFixture
) -> None:
    """With AppRole in use, a leaked VAULT_TOKEN beside it is revoked by accessor."""
    rules = (
        'path "auth/token/lookup" { capabilities = ["update"] }\n'
        'path "auth/token/revoke-accessor" { capabilities = ["update"] }'
    )
    _, role_id, secret_id = approle(openbao, may_destroy=False, extra=rules)
    token = child_token(openbao)
    environ = {
        "VAULT_ADDR": openbao.addr,
        "VAULT_TOKEN": token,
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
    }

    outcome = revoke_vault_token(environ, {"VAULT_TOKEN": token})

    assert outcome.status is Status.DONE, outcome.detail
    assert "revoked by accessor" in outcome.detail
    assert not token_alive(openbao, token)
    assert login_works(openbao, role_id, secret_id)  # the secret id did not leak: untouched
    assert_nowhere(outcome, debug_log, token, secret_id)


def test_accessor_not_allowed_falls_back_to_revoke_self(
    openbao: OpenBaoServer, debug_log: pytest.LogCaptureFixture
) -> None:
    """When the application's login may not revoke by accessor, the token revokes itself."""
    _, role_id, secret_id = approle(openbao, may_destroy=False)
    token = child_token(openbao)
    environ = {
        "VAULT_ADDR": openbao.addr,
        "VAULT_TOKEN": token,
        "VAULT_ROLE_ID": role_id,
        "VAULT_SECRET_ID": secret_id,
    }

    outcome = revoke_vault_token(environ, {"VAULT_TOKEN": token})

    assert outcome.status is Status.DONE, outcome.detail
    assert "revoke-self" in outcome.detail
    assert not token_alive(openbao, token)
    assert_nowhere(outcome, debug_log, token, secret_id)


@pytest.mark.parametrize(
    "from_file", [False, True], ids=["VAULT_SECRET_ID", "VAULT_SECRET_ID_FILE"]
)
def test_leaked_approle_secret_id_is_destroyed_and_login_refused(
    openbao: OpenBaoServer, tmp_path: Path, from_file: bool, debug_log: pytest.LogCaptureFixture
) -> None:
    """The AppRole secret id in use, leaked, is destroyed; a login with it is then refused."""
    name, role_id, secret_id = approle(openbao, may_destroy=True)
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_ROLE_ID": role_id}
    if from_file:
        (tmp_path / "secret-id").write_text(secret_id + "\n", encoding="utf-8")
        environ["VAULT_SECRET_ID_FILE"] = str(tmp_path / "secret-id")
    else:
        environ["VAULT_SECRET_ID"] = secret_id

    outcome = revoke_vault_token(environ, {"VAULT_SECRET_ID": secret_id})

    assert outcome.status is Status.DONE, outcome.detail
    assert f"destroyed at auth/approle/role/{name}/secret-id/destroy" in outcome.detail
    assert "auth/approle/login refuses it" in outcome.detail
    assert not login_works(openbao, role_id, secret_id)
    assert_nowhere(outcome, debug_log, secret_id, role_id)


def test_secret_id_destroy_not_allowed_is_a_manual_step(
    openbao: OpenBaoServer, debug_log: pytest.LogCaptureFixture
) -> None:
    """When the login's token may not destroy its secret id, the detail says what to run."""
    name, role_id, secret_id = approle(openbao, may_destroy=False)
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}

    outcome = revoke_vault_token(environ, {"VAULT_SECRET_ID": secret_id})

    assert outcome.status is Status.MANUAL, outcome.detail
    assert f"bao write auth/approle/role/{name}/secret-id/destroy secret_id=-" in outcome.detail
    assert login_works(openbao, role_id, secret_id)
    assert_nowhere(outcome, debug_log, secret_id, role_id)


def test_incident_login_tokens_are_revoked_afterwards(openbao: OpenBaoServer) -> None:
    """The tokens the step obtains by logging in with the leaked secret id do not outlive it."""
    name, role_id, secret_id = approle(openbao, may_destroy=True)
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}

    assert revoke_vault_token(environ, {"VAULT_SECRET_ID": secret_id}).status is Status.DONE

    accessors = openbao.api("GET", "auth/token/accessors?list=true")[1]["data"]["keys"]
    looked_up = [
        openbao.api("POST", "auth/token/lookup-accessor", {"accessor": a})[1].get("data") or {}
        for a in accessors
    ]
    assert name not in [(data.get("meta") or {}).get("role_name") for data in looked_up]


def test_vault_not_configured_is_skipped_unless_a_credential_leaked() -> None:
    """Unusable Vault settings: skipped when nothing there leaked, failed (naming why) if it did."""
    assert revoke_vault_token({}, {"X": "y" * 20}).status is Status.SKIPPED
    assert revoke_vault_token({"VAULT_TOKEN": "t1"}, {"X": "y" * 20}).status is Status.SKIPPED

    outcome = revoke_vault_token({"VAULT_TOKEN": "leaked-token"}, {"X": "leaked-token"})

    assert outcome.status is Status.FAILED
    assert "VAULT_ADDR" in outcome.detail
    assert "leaked-token" not in outcome.detail


def test_unexpected_errors_become_failed_outcomes(openbao: OpenBaoServer) -> None:
    """A step never raises: an error it did not expect is a FAILED outcome naming its type."""
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.token}

    outcome = revoke_leases(environ, None)  # type: ignore[arg-type]

    assert outcome.status is Status.FAILED
    assert outcome.detail == "unexpected error: AttributeError"


# -- leases ----------------------------------------------------------------------------------------


def test_revoke_prefix_revokes_the_leases_under_it_only(
    openbao: OpenBaoServer, debug_log: pytest.LogCaptureFixture
) -> None:
    """Tokens created through one token role are revoked by its prefix; others live on."""
    role, other = unique(), unique()
    for name in (role, other):
        openbao.api("POST", f"auth/token/roles/{name}", {"allowed_policies": ["default"]})
    made = [
        openbao.api("POST", f"auth/token/create/{name}", {"ttl": "1h"})[1]["auth"]["client_token"]
        for name in (role, role, other)
    ]
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.token}

    outcome = revoke_leases(environ, f"/auth/token/create/{role}/")

    assert outcome.status is Status.DONE, outcome.detail
    assert f"auth/token/create/{role}/" in outcome.detail
    assert "2 entries were listed" in outcome.detail
    assert "none is listed now" in outcome.detail
    assert [token_alive(openbao, t) for t in made] == [False, False, True]
    assert_nowhere(outcome, debug_log, *made)


@pytest.mark.parametrize("prefix", ["", " / ", "auth/../sys", "auth//token", "auth/%2e%2e/x", "."])
def test_unsafe_lease_prefix_is_refused(openbao: OpenBaoServer, prefix: str) -> None:
    """An empty prefix (every lease) or one with '.', '..' or empty segments is refused."""
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.token}

    outcome = revoke_leases(environ, prefix)

    assert outcome.status is Status.FAILED
    assert "refused" in outcome.detail


def test_revoke_prefix_denied_fails_with_the_command(openbao: OpenBaoServer) -> None:
    """A token without sudo on sys/leases: failed, and the detail gives the command to run."""
    environ = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": child_token(openbao)}

    outcome = revoke_leases(environ, "database/creds/app")

    assert outcome.status is Status.FAILED
    assert "bao lease revoke -prefix database/creds/app" in outcome.detail
    assert "403" in outcome.detail


# -- the Auth0 client secret -----------------------------------------------------------------------


@pytest.fixture
def tenant() -> Iterator[Auth0MgmtStandin]:
    """A stand-in Auth0 Management API (Auth0 cannot run here)."""
    standin = Auth0MgmtStandin()
    yield standin
    standin.close()


def test_auth0_secret_is_rotated_and_handed_to_persist(
    tenant: Auth0MgmtStandin, tmp_path: Path, debug_log: pytest.LogCaptureFixture
) -> None:
    """Token by client credentials, rotate-secret with it as bearer, new secret to persist."""
    persisted: list[Secret] = []

    outcome = rotate_auth0_client_secret(tenant.environ(), persisted.append, tmp_path)

    assert outcome.status is Status.DONE, outcome.detail
    assert [s.reveal() for s in persisted] == tenant.new_secrets
    assert len(tenant.new_secrets) == 1
    assert tenant.calls == [
        ("/oauth/token", True),
        (f"/api/v2/clients/{tenant.client_id}/rotate-secret", True),
    ]
    assert f"application {tenant.client_id}" in outcome.detail
    assert not list(tmp_path.iterdir())
    assert_nowhere(
        outcome, debug_log, tenant.new_secrets[0], tenant.mgmt_client_secret, tenant.access_token
    )


def test_auth0_persist_failure_saves_a_private_rescue_file(
    tenant: Auth0MgmtStandin, tmp_path: Path, debug_log: pytest.LogCaptureFixture
) -> None:
    """If persist fails, the new secret goes to a 0600 file named (not shown) in the detail."""

    def persist(secret: Secret) -> None:
        raise OSError(f"store down while writing {secret.reveal()}")

    outcome = rotate_auth0_client_secret(tenant.environ(), persist, tmp_path / "reports")

    assert outcome.status is Status.FAILED
    [rescue] = list((tmp_path / "reports").iterdir())
    assert stat.S_IMODE(rescue.stat().st_mode) == 0o600
    assert rescue.read_text(encoding="utf-8").strip() == tenant.new_secrets[0]
    assert str(rescue) in outcome.detail
    assert "OSError" in outcome.detail
    assert_nowhere(outcome, debug_log, tenant.new_secrets[0], tenant.mgmt_client_secret)


def test_auth0_interrupted_persist_still_saves_the_secret(
    tenant: Auth0MgmtStandin, tmp_path: Path
) -> None:
    """Ctrl-C while persisting: the new secret is saved to the rescue file, then it stops."""

    def persist(secret: Secret) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotate_auth0_client_secret(tenant.environ(), persist, tmp_path)

    [rescue] = list(tmp_path.iterdir())
    assert rescue.read_text(encoding="utf-8").strip() == tenant.new_secrets[0]


def test_auth0_rescue_failure_says_the_secret_is_lost(
    tenant: Auth0MgmtStandin, tmp_path: Path
) -> None:
    """When even the rescue file cannot be written, the detail says the secret is lost."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")

    def persist(secret: Secret) -> None:
        raise RuntimeError("store down")

    outcome = rotate_auth0_client_secret(tenant.environ(), persist, blocker)

    assert outcome.status is Status.FAILED
    assert "LOST" in outcome.detail
    assert tenant.new_secrets[0] not in outcome.detail


def test_auth0_without_credentials_is_a_manual_step(tmp_path: Path) -> None:
    """Without AUTH0_MGMT_* credentials the step is manual and names the dashboard's Rotate."""
    outcome = rotate_auth0_client_secret(
        {"AUTH0_DOMAIN": "t.eu.auth0.com", "AUTH0_CLIENT_ID": "app"},
        lambda secret: None,
        tmp_path,
    )

    assert outcome.status is Status.MANUAL
    assert "Rotate" in outcome.detail
    assert "AUTH0_MGMT_CLIENT_ID" in outcome.detail


def test_auth0_refused_credentials_fail_without_values(
    tenant: Auth0MgmtStandin, tmp_path: Path, debug_log: pytest.LogCaptureFixture
) -> None:
    """A wrong Management client secret: failed with the status and what to check; no rotation."""
    wrong = "wrong-" + uuid.uuid4().hex
    persisted: list[Secret] = []

    outcome = rotate_auth0_client_secret(
        tenant.environ(AUTH0_MGMT_CLIENT_SECRET=wrong), persisted.append, tmp_path
    )

    assert outcome.status is Status.FAILED
    assert "401 (access_denied)" in outcome.detail
    assert "AUTH0_MGMT_CLIENT_SECRET" in outcome.detail
    assert persisted == [] and tenant.new_secrets == []
    assert_nowhere(outcome, debug_log, wrong)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(403, "update:client_keys"), (429, "try again"), (400, "answered 400")],
)
def test_auth0_rotate_refusals_are_explained(
    tenant: Auth0MgmtStandin, tmp_path: Path, status: int, expected: str
) -> None:
    """A refused rotate-secret is a failure naming the status and, where known, the cause."""
    tenant.rotate_status = status

    outcome = rotate_auth0_client_secret(tenant.environ(), lambda secret: None, tmp_path)

    assert outcome.status is Status.FAILED
    assert expected in outcome.detail


def test_auth0_unknown_application_names_the_client_id(
    tenant: Auth0MgmtStandin, tmp_path: Path
) -> None:
    """A client id the tenant does not know: failed, naming AUTH0_CLIENT_ID."""
    outcome = rotate_auth0_client_secret(
        tenant.environ(AUTH0_CLIENT_ID="nope"), lambda secret: None, tmp_path
    )

    assert outcome.status is Status.FAILED
    assert "no application nope (AUTH0_CLIENT_ID)" in outcome.detail


def test_auth0_calls_have_a_deadline(tenant: Auth0MgmtStandin, tmp_path: Path) -> None:
    """A tenant that accepts the connection and never answers fails after AUTH0_MGMT_TIMEOUT."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        environ = tenant.environ(
            AUTH0_MGMT_BASE_URL=f"http://127.0.0.1:{port}", AUTH0_MGMT_TIMEOUT="0.3"
        )

        outcome = rotate_auth0_client_secret(environ, lambda secret: None, tmp_path)

    assert outcome.status is Status.FAILED
    assert "timed out" in outcome.detail


def test_auth0_uses_https_and_refuses_plain_http_to_a_remote_host(
    tenant: Auth0MgmtStandin, tmp_path: Path
) -> None:
    """By default the tenant is called over https; AUTH0_MGMT_BASE_URL may be http only locally."""
    config = config_from_environ(tenant.environ(AUTH0_MGMT_BASE_URL=""))
    assert config is not None
    assert config.base_url == f"https://{tenant.domain}"
    assert repr(config).count(tenant.mgmt_client_secret) == 0

    outcome = rotate_auth0_client_secret(
        tenant.environ(AUTH0_MGMT_BASE_URL="http://auth0.example.com"), lambda s: None, tmp_path
    )

    assert outcome.status is Status.FAILED
    assert "use https" in outcome.detail
    assert tenant.calls == []


def test_auth0_redirects_are_not_followed(tenant: Auth0MgmtStandin, tmp_path: Path) -> None:
    """A redirect is refused: the Management credentials go to the tenant and nowhere else."""
    elsewhere = Auth0MgmtStandin(mgmt_client_secret=tenant.mgmt_client_secret)
    tenant.redirect_to = elsewhere.base_url
    try:
        outcome = rotate_auth0_client_secret(tenant.environ(), lambda s: None, tmp_path)
    finally:
        elsewhere.close()

    assert outcome.status is Status.FAILED
    assert "answered 307" in outcome.detail
    assert elsewhere.calls == []


def test_auth0_credentials_without_client_id_fail_naming_it(
    tenant: Auth0MgmtStandin, tmp_path: Path
) -> None:
    """Management credentials but no AUTH0_CLIENT_ID: failed, naming the variable."""
    outcome = rotate_auth0_client_secret(
        tenant.environ(AUTH0_CLIENT_ID=""), lambda secret: None, tmp_path
    )

    assert outcome.status is Status.FAILED
    assert "AUTH0_CLIENT_ID" in outcome.detail
