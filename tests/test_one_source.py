"""One source of truth: rotation writes exactly where reading reads, for every store and setting.

Each case builds the rotation store the way ``yosai-secrets rotate`` does (``open_store`` from the
environment), stages and promotes a new ``DB_PASSWORD``, and then reads ``DB_PASSWORD`` the way the
application does (a fresh ``SecretManager`` from the same environment) against the real servers:
OpenBao (token, AppRole, Kubernetes auth behind a stand-in TokenReview API, TLS with a CA file, a
CA directory, a client certificate, or verification off) and the AWS emulator with a name prefix.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.moto import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, MotoServer
from tests.servers.openbao import OpenBaoServer, free_port, start_openbao, stop_openbao
from tests.test_vault_auth import kubernetes_auth  # noqa: F401 - a fixture used below
from yosai_secrets.errors import BackendTLSError, RotationError
from yosai_secrets.manager import SecretManager
from yosai_secrets.rotation.stores import open_store

pytestmark = pytest.mark.integration

_RW_POLICY = 'path "secret/*" { capabilities = ["create", "read", "update", "list", "delete"] }'


def unique() -> str:
    """A name no other test uses."""
    return "t" + uuid.uuid4().hex[:12]


def rotate_then_read(environ: dict[str, str], old: str = "old-pw") -> tuple[str, str]:
    """Rotate DB_PASSWORD through the store rotation opens; return (new value, value read)."""
    new = "rotated-" + uuid.uuid4().hex
    store = open_store(environ)
    manager = SecretManager(environ=environ, ttl_seconds=0)
    try:
        state: dict[str, Any] = {}
        store.prepare(state, {"DB_PASSWORD": old})
        store.stage(state, {"DB_PASSWORD": new})
        store.promote(state, {"DB_PASSWORD": new}, "2026-11-29T00:00:00Z")
        return new, manager.get("DB_PASSWORD")
    finally:  # no renewer thread may outlive the test (and its warning filters)
        manager.close()
        close = getattr(getattr(store, "backend", None), "close", None)
        if callable(close):
            close()


def vault_environ(server: OpenBaoServer, **extra: str) -> dict[str, str]:
    """SECRET_BACKEND=vault at a fresh VAULT_SECRETS_PATH holding DB_PASSWORD=old-pw."""
    path = f"secret/data/{unique()}"
    server.api("PUT", path, {"data": {"DB_PASSWORD": "old-pw"}})
    return {
        "SECRET_BACKEND": "vault",
        "VAULT_ADDR": server.addr,
        "VAULT_TOKEN": server.token,
        "VAULT_SECRETS_PATH": path,
        **extra,
    }


def test_aws_with_a_name_prefix(moto_server: MotoServer) -> None:
    """SECRET_NAME_PREFIX=prod-x/: rotation writes prod-x/DB_CREDENTIALS, which reading reads."""
    prefix = f"{unique()}/"
    environ = {
        "SECRET_BACKEND": "aws",
        "SECRET_NAME_PREFIX": prefix,
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": moto_server.region,
    }
    client = moto_server.client()
    pair = {"username": "app", "password": "old-pw"}
    client.create_secret(Name=prefix + "DB_CREDENTIALS", SecretString=json.dumps(pair))
    new, read = rotate_then_read(environ)
    assert read == new
    current = client.get_secret_value(SecretId=prefix + "DB_CREDENTIALS", VersionStage="AWSCURRENT")
    assert json.loads(current["SecretString"]) == {"username": "app", "password": new}


def test_aws_without_the_credentials_secret(moto_server: MotoServer) -> None:
    """No DB_CREDENTIALS yet: rotation creates it where reading reads, then promotes the new one."""
    prefix = f"{unique()}/"
    environ = {
        "SECRET_BACKEND": "aws",
        "SECRET_NAME_PREFIX": prefix,
        "AWS_ENDPOINT_URL": moto_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": moto_server.region,
    }
    new, read = rotate_then_read(environ)
    assert read == new


def test_vault_with_a_dead_first_address(openbao: OpenBaoServer) -> None:
    """VAULT_ADDR=dead,live: rotation fails over as reading does and writes what it reads."""
    dead = f"http://127.0.0.1:{free_port()}"
    environ = vault_environ(openbao, VAULT_ADDR=f"{dead},{openbao.addr}")
    new, read = rotate_then_read(environ)
    assert read == new


def test_vault_with_approle(openbao: OpenBaoServer) -> None:
    """AppRole (VAULT_ROLE_ID, VAULT_SECRET_ID): rotation logs in as reading does."""
    mounts = openbao.api("GET", "sys/auth")[1]
    if "approle/" not in mounts:
        openbao.api("POST", "sys/auth/approle", {"type": "approle"})
    openbao.api("PUT", "sys/policy/yosai-rotate", {"policy": _RW_POLICY})
    role = unique()
    openbao.api("POST", f"auth/approle/role/{role}", {"token_policies": ["yosai-rotate"]})
    role_id = openbao.api("GET", f"auth/approle/role/{role}/role-id")[1]["data"]["role_id"]
    answer = openbao.api("POST", f"auth/approle/role/{role}/secret-id", {})[1]
    environ = vault_environ(
        openbao, VAULT_ROLE_ID=role_id, VAULT_SECRET_ID=answer["data"]["secret_id"]
    )
    del environ["VAULT_TOKEN"]
    new, read = rotate_then_read(environ)
    assert read == new


def test_vault_with_kubernetes_auth(
    openbao: OpenBaoServer,
    kubernetes_auth: tuple[str, Path],  # noqa: F811 - the imported fixture
) -> None:
    """Kubernetes auth (stand-in TokenReview API: none can run here): rotation logs in the same."""
    mount, token_file = kubernetes_auth
    openbao.api("PUT", "sys/policy/yosai-rotate", {"policy": _RW_POLICY})
    openbao.api(
        "POST",
        f"auth/{mount}/role/app",
        {
            "bound_service_account_names": ["app"],
            "bound_service_account_namespaces": ["default"],
            "token_policies": ["yosai-rotate"],
            "token_ttl": "60s",
        },
    )
    environ = vault_environ(
        openbao, VAULT_K8S_ROLE="app", VAULT_K8S_MOUNT=mount, VAULT_K8S_TOKEN_FILE=str(token_file)
    )
    del environ["VAULT_TOKEN"]
    new, read = rotate_then_read(environ)
    assert read == new


# -- TLS: a CA file, a CA directory, verification off, and a client certificate ----------------


def _certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yosai test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(name: str, usage: Any, server: bool) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if server:
            san = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert, pem

    files = {"ca": directory / "ca.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for role, usage, server in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH, True),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH, False),
    ):
        cert, key = leaf(role, usage, server)
        files[role] = directory / f"{role}.pem"
        files[role].write_bytes(cert)
        files[f"{role}_key"] = directory / f"{role}.key"
        files[f"{role}_key"].write_bytes(key)
        files[f"{role}_key"].chmod(0o600)
    return files


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[OpenBaoServer, str, str, dict[str, Path]]]:
    """OpenBao with two more listeners: TLS (our CA) and TLS requiring a client certificate."""
    directory = tmp_path_factory.mktemp("tls")
    files = _certificates(directory)
    tls_port, mtls_port = free_port(), free_port()
    listeners = []
    for port, require in ((tls_port, False), (mtls_port, True)):
        lines = [
            f'  address = "127.0.0.1:{port}"',
            f'  tls_cert_file = "{files["server"]}"',
            f'  tls_key_file = "{files["server_key"]}"',
        ]
        if require:
            lines += [
                f'  tls_client_ca_file = "{files["ca"]}"',
                "  tls_require_and_verify_client_cert = true",
            ]
        listeners.append('listener "tcp" {\n' + "\n".join(lines) + "\n}\n")
    config = directory / "listeners.hcl"
    config.write_text("".join(listeners))
    server = start_openbao(kv_v1_mount=None, extra_config=config)
    try:
        yield server, f"https://127.0.0.1:{tls_port}", f"https://127.0.0.1:{mtls_port}", files
    finally:
        stop_openbao(server)


def test_vault_with_a_ca_file(tls_server: tuple[OpenBaoServer, str, str, dict[str, Path]]) -> None:
    """VAULT_CACERT: rotation verifies the server with the CA reading uses."""
    server, tls_addr, _, files = tls_server
    environ = vault_environ(server, VAULT_ADDR=tls_addr, VAULT_CACERT=str(files["ca"]))
    new, read = rotate_then_read(environ)
    assert read == new


def test_vault_with_a_ca_directory(
    tls_server: tuple[OpenBaoServer, str, str, dict[str, Path]], tmp_path: Path
) -> None:
    """VAULT_CAPATH (a hashed directory, as `openssl rehash` makes it) verifies the server."""
    server, tls_addr, _, files = tls_server
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed; it makes the hashed CA directory")
    capath = tmp_path / "cas"
    capath.mkdir()
    shutil.copy(files["ca"], capath / "ca.pem")
    subprocess.run(["openssl", "rehash", str(capath)], check=True, capture_output=True)
    environ = vault_environ(server, VAULT_ADDR=tls_addr, VAULT_CAPATH=str(capath))
    new, read = rotate_then_read(environ)
    assert read == new


def test_vault_with_verification_off(
    tls_server: tuple[OpenBaoServer, str, str, dict[str, Path]],
) -> None:
    """VAULT_SKIP_VERIFY=true: rotation skips verification as reading does."""
    server, tls_addr, _, _ = tls_server
    environ = vault_environ(server, VAULT_ADDR=tls_addr, VAULT_SKIP_VERIFY="true")
    new, read = rotate_then_read(environ)
    assert read == new
    without = vault_environ(server, VAULT_ADDR=tls_addr)
    with pytest.raises(RotationError, match="VAULT_CACERT"):
        rotate_then_read(without)


def test_vault_with_a_client_certificate(
    tls_server: tuple[OpenBaoServer, str, str, dict[str, Path]],
) -> None:
    """VAULT_CLIENT_CERT/KEY (mutual TLS): refused without them, read and rotated with them."""
    server, _, mtls_addr, files = tls_server
    base = vault_environ(server, VAULT_ADDR=mtls_addr, VAULT_CACERT=str(files["ca"]))
    refused = SecretManager(environ=base)
    with pytest.raises(BackendTLSError, match="VAULT_CLIENT_CERT"):
        refused.get("DB_PASSWORD")
    refused.close()
    environ = {
        **base,
        "VAULT_CLIENT_CERT": str(files["client"]),
        "VAULT_CLIENT_KEY": str(files["client_key"]),
    }
    manager = SecretManager(environ=environ)
    assert manager.get("DB_PASSWORD") == "old-pw"
    manager.close()
    new, read = rotate_then_read(environ)
    assert read == new
