"""The manifests in examples/: what a user copies, and what the GitOps examples sync.

Each must be a well-formed Kubernetes object, the ReconJob must be accepted by the API
models exactly as written (no field silently dropped), and the Argo CD and Flux examples
must point at a folder that holds the manifests they are meant to sync.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from recon_api.constants import API_VERSION, KIND, STORAGE_CREDENTIALS_LABEL
from recon_api.models import DNS_SUBDOMAIN_PATTERN, ReconJobSpec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NAMESPACE = "recon-demo"


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def all_documents() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in sorted(EXAMPLES.rglob("*.yaml")) for doc in load(path)]


def find(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in all_documents() if doc.get("kind") == kind]


def subset(example: Any, accepted: Any, where: str = "spec") -> None:
    """Every value in the example survives the model unchanged."""
    if isinstance(example, dict):
        assert isinstance(accepted, dict), where
        for key, value in example.items():
            assert key in accepted, f"{where}.{key} is not a field of the API"
            subset(value, accepted[key], f"{where}.{key}")
    else:
        assert example == accepted, f"{where}: {example!r} became {accepted!r}"


def test_the_expected_examples_exist() -> None:
    for name in (
        "reconjob.yaml",
        "secret-template.yaml",
        "namespace.yaml",
        "kustomization.yaml",
        "gitops/argocd-application.yaml",
        "gitops/flux-kustomization.yaml",
    ):
        assert (EXAMPLES / name).is_file(), name


@pytest.mark.parametrize("path", sorted(EXAMPLES.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_example_is_a_well_formed_object(path: Path) -> None:
    docs = load(path)
    assert docs
    for doc in docs:
        assert isinstance(doc.get("apiVersion"), str) and isinstance(doc.get("kind"), str)
        if doc["kind"] == "Kustomization" and doc["apiVersion"].startswith("kustomize.config"):
            continue  # a kustomize file, not an API object
        name = doc["metadata"]["name"]
        assert len(name) <= 253 and re.match(DNS_SUBDOMAIN_PATTERN, name)


def test_reconjob_is_valid_and_complete() -> None:
    (job,) = load(EXAMPLES / "reconjob.yaml")
    assert job["apiVersion"] == API_VERSION and job["kind"] == KIND
    assert job["metadata"]["namespace"] == NAMESPACE
    spec = ReconJobSpec.model_validate(job["spec"])
    subset(job["spec"], spec.model_dump(mode="json", by_alias=True))
    # Every part of the spec is shown, so the example doubles as a reference.
    assert set(job["spec"]) == {
        "input",
        "output",
        "storage",
        "reconstruction",
        "resources",
        "priority",
        "timeoutSeconds",
        "retries",
    }


def test_secret_template_has_the_keys_the_operator_reads() -> None:
    (job,) = load(EXAMPLES / "reconjob.yaml")
    (secret,) = load(EXAMPLES / "secret-template.yaml")
    assert secret["kind"] == "Secret"
    assert secret["metadata"]["name"] == job["spec"]["storage"]["credentialsSecret"]
    assert secret["metadata"]["namespace"] == job["metadata"]["namespace"]
    assert set(secret["stringData"]) == {"accessKey", "secretKey"}
    assert secret["metadata"]["labels"] == {STORAGE_CREDENTIALS_LABEL: "true"}
    # Placeholders, never usable keys.
    assert all("REPLACE" in v for v in secret["stringData"].values())


def test_kustomization_syncs_the_namespace_and_job_but_no_secret() -> None:
    (kustomization,) = load(EXAMPLES / "kustomization.yaml")
    synced = [doc for name in kustomization["resources"] for doc in load(EXAMPLES / name)]
    kinds = sorted(doc["kind"] for doc in synced)
    assert kinds == ["Namespace", KIND]
    assert next(d for d in synced if d["kind"] == "Namespace")["metadata"]["name"] == NAMESPACE


def test_argocd_application_points_at_the_examples() -> None:
    (app,) = find("Application")
    assert app["apiVersion"] == "argoproj.io/v1alpha1"
    source = app["spec"]["source"]
    assert (ROOT / source["path"] / "kustomization.yaml").is_file()
    assert app["spec"]["destination"]["namespace"] == NAMESPACE
    # A commit that drops a file must not delete (and so stop) a running reconstruction.
    assert app["spec"]["syncPolicy"]["automated"]["prune"] is False


def test_flux_kustomization_points_at_the_examples() -> None:
    (repo,) = find("GitRepository")
    flux = [d for d in find("Kustomization") if d["apiVersion"].startswith("kustomize.toolkit")]
    (kustomization,) = flux
    assert kustomization["spec"]["sourceRef"] == {
        "kind": "GitRepository",
        "name": repo["metadata"]["name"],
    }
    assert kustomization["metadata"]["namespace"] == repo["metadata"]["namespace"]
    path = kustomization["spec"]["path"].removeprefix("./")
    assert (ROOT / path / "kustomization.yaml").is_file()
    assert kustomization["spec"]["prune"] is False
