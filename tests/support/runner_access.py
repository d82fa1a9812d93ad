"""ReconJobs on the real stack and the restricted credentials the runner's pod gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recon_api.models import ReconJob
from recon_operator.jobspec import build_role, build_role_binding, build_service_account

REPO = Path(__file__).resolve().parents[2]


def apply_crd(stack: Any) -> None:
    stack.kubectl("apply", "-f", str(REPO / "crds" / "reconjob.yaml"))
    stack.kubectl("wait", "--for=condition=Established", "crd/reconjobs.recon.dev", "--timeout=60s")


def create_reconjob(stack: Any, namespace: str, name: str, prefix: str = "") -> ReconJob:
    body = {
        "apiVersion": "recon.dev/v1alpha1",
        "kind": "ReconJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"input": {"bucket": "scans", "prefix": prefix or f"{name}/"}},
    }
    stack.kubectl("create", "-f", "-", input=json.dumps(body))
    return get_reconjob(stack, namespace, name)


def get_reconjob(stack: Any, namespace: str, name: str) -> ReconJob:
    out = stack.kubectl("get", "reconjob", name, "-n", namespace, "-o", "json").stdout
    return ReconJob.model_validate(json.loads(out))


def runner_kubeconfig(stack: Any, job: ReconJob, path: Path) -> Path:
    """What the runner's pod gets: a token for the operator's per-job ServiceAccount (its
    Role allows get on the ReconJob and patch on its status, by name), nothing else."""
    for obj in (build_service_account(job), build_role(job), build_role_binding(job)):
        stack.kubectl("apply", "-f", "-", input=json.dumps(obj))
    sa = build_service_account(job)["metadata"]["name"]
    namespace = job.metadata["namespace"]
    config: Path = stack.service_account_kubeconfig(sa, namespace, path, default_namespace=True)
    return config
