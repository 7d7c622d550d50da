"""deploy/kubernetes/: every manifest valid against the Kubernetes schemas, and wired together.

The schemas come inside the `kubernetes-validate` package (dev group, uv.lock), so this runs
offline. Strict mode rejects unknown fields, so a misspelt key fails instead of being ignored.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
# the oldest Kubernetes release still maintained when this was written, and the newest known
VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())
DRAIN_SECONDS = 5   # the service exits within 5 s of SIGTERM (README, "Bajo presión")


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def validate(path: Path) -> None:
    """Raise kubernetes_validate's ValidationError if a document of ``path`` is invalid."""
    for doc in load(path):
        for version in VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def by_kind() -> dict[str, dict]:
    docs = [doc for path in sorted(MANIFESTS.glob("*.yaml")) for doc in load(path)]
    kinds = {doc["kind"]: doc for doc in docs}
    assert len(kinds) == len(docs), "one resource of each kind"
    return kinds


@pytest.mark.parametrize("path", sorted(MANIFESTS.glob("*.yaml")), ids=lambda path: path.name)
def test_manifest_is_valid(path):
    validate(path)


BROKEN = {
    "misspelt field": ("readinessProbe:", "readinesProbe:"),
    "wrong type": ("containerPort: 8000", "containerPort: eight-thousand"),
    "missing required field": ("- name: toponimo\n          image:", "- image:"),
}


@pytest.mark.parametrize("change", BROKEN.values(), ids=BROKEN.keys())
def test_broken_copy_is_rejected(tmp_path, change):
    old, new = change
    text = (MANIFESTS / "deployment.yaml").read_text(encoding="utf-8")
    assert old in text
    broken = tmp_path / "deployment.yaml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def test_the_expected_resources_exist():
    assert set(by_kind()) == {"Deployment", "Service", "HorizontalPodAutoscaler",
                              "PodDisruptionBudget"}


def test_service_hpa_and_pdb_point_at_the_deployment():
    kinds = by_kind()
    deployment = kinds["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [kinds["Service"]["spec"]["selector"],
                 deployment["spec"]["selector"]["matchLabels"],
                 kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    target = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    container_ports = {port["name"] for port in container()["ports"]}
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] in container_ports


def container() -> dict:
    (only,) = by_kind()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def test_probes_follow_the_service_meaning():
    """Readiness on /readyz (saturated or draining pods leave the Service), liveness and start-up
    on /healthz (a busy pod is never restarted)."""
    spec = container()
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert spec["startupProbe"]["httpGet"]["path"] == "/healthz"


def test_termination_leaves_time_to_leave_the_endpoints_and_drain():
    pod = by_kind()["Deployment"]["spec"]["template"]["spec"]
    pause = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(pause[1]) + DRAIN_SECONDS


def test_image_and_user_match_the_dockerfile_and_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert container()["image"] == f"toponimo:{version}"
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = int(re.search(r"useradd .*--uid (\d+)", dockerfile).group(1))
    assert by_kind()["Deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid
    assert f'"--port", "{container()["ports"][0]["containerPort"]}"' in dockerfile
