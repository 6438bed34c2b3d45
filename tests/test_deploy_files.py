"""The container and cluster files keep what production needs (``make lint-deploy`` checks syntax).

These pin the parts a linter does not: the Pod Security "restricted" fields, probes that outlast
a slow Vault, the PodDisruptionBudget, the names the rotation code relies on, and a final image
stage without uv that runs as a non-root user.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from yosai_secrets.backends.vault_settings import DEFAULT_TIMEOUT_SECONDS
from yosai_secrets.rotation.kubectl import DEFAULT_DEPLOYMENT

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "k8s"


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path} is not one YAML mapping"
    return document


@pytest.fixture(scope="module")
def deployment() -> dict[str, Any]:
    """The shipped Deployment manifest."""
    return _load(K8S / "deployment.yaml")


@pytest.fixture(scope="module")
def container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The API container of the shipped Deployment."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["api"]
    result: dict[str, Any] = containers[0]
    return result


def _final_stage(dockerfile: str) -> list[str]:
    """The instructions of the last stage, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    starts = [i for i, line in enumerate(instructions) if line.upper().startswith("FROM ")]
    assert len(starts) >= 2, "the Dockerfile is not multi-stage"
    return instructions[starts[-1] :]


def test_deployment_keeps_the_names_rotation_relies_on(
    deployment: dict[str, Any], container: dict[str, Any]
) -> None:
    """The Deployment is the one `rotate` restarts and loads the ConfigMap and Secret it names."""
    secret = _load(K8S / "config" / "api-secrets.example.yaml")
    config_map = _load(K8S / "configmap.yaml")
    assert deployment["metadata"]["name"] == DEFAULT_DEPLOYMENT
    assert container["envFrom"] == [
        {"configMapRef": {"name": config_map["metadata"]["name"]}},
        {"secretRef": {"name": secret["metadata"]["name"]}},
    ]
    assert container["ports"] == [{"name": "http", "containerPort": 8050}]


def test_pod_meets_the_restricted_pod_security_profile(
    deployment: dict[str, Any], container: dict[str, Any]
) -> None:
    """The pod runs as non-root, unprivileged, with no capability and the default seccomp."""
    pod = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert "add" not in context["capabilities"]
    assert context["readOnlyRootFilesystem"] is True
    assert context.get("privileged", False) is False


def test_container_has_resource_requests_and_limits(container: dict[str, Any]) -> None:
    """The API container requests and is limited in both CPU and memory."""
    resources = container["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}


@pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe", "livenessProbe"])
def test_probe_outlasts_the_vault_timeout(container: dict[str, Any], probe: str) -> None:
    """Each probe exists and waits longer than one Vault request may take (slow is not dead)."""
    assert container[probe]["timeoutSeconds"] > DEFAULT_TIMEOUT_SECONDS


def test_readiness_probe_reads_the_secrets(container: dict[str, Any]) -> None:
    """Readiness is /readyz (every required secret resolves) and liveness is /healthz."""
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_image_tag_is_pinned(container: dict[str, Any]) -> None:
    """The Deployment names an exact image tag, never `latest` or none."""
    image = container["image"]
    name, _, tag = image.rpartition(":")
    assert name and tag and tag != "latest", image


def test_pod_disruption_budget_covers_the_deployment(deployment: dict[str, Any]) -> None:
    """A policy/v1 PodDisruptionBudget selects the API's pods and still lets a drain evict one."""
    pdb = _load(K8S / "pdb.yaml")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["kind"] == "PodDisruptionBudget"
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    assert 1 <= pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_dockerfile_final_stage_has_no_uv_and_a_non_root_user() -> None:
    """The image's last stage never mentions uv and ends up running as a non-root user."""
    final = _final_stage((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    assert not [line for line in final if re.search(r"\buv\b", line)]
    users = [line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_base_images_are_pinned_and_builder_uses_the_lock() -> None:
    """Every stage starts from an exact Python version tag and the builder syncs from uv.lock."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert bases
    for base in bases:
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    assert re.search(r"uv sync --frozen --no-dev", dockerfile)
