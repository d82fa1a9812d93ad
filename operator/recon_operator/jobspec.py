"""What the child Job and its per-job RBAC look like, derived from a ReconJob and settings.

Pure: the same ReconJob always yields the same objects with the same names, which is what
lets a restarted operator recognise the Job it created before instead of making another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from recon_api.constants import API_VERSION, GROUP, KIND, PLURAL, ExitCode
from recon_api.models import ReconJob
from recon_api.runner_params import ACCESS_KEY_ENV, SECRET_KEY_ENV, RunnerParams

from recon_operator.settings import Settings

CONTAINER_NAME = "runner"
UID_LABEL = f"{GROUP}/reconjob-uid"
NAME_LABEL = f"{GROUP}/reconjob"
MANAGED_BY = "recon-operator"
# Finished Jobs (and their pods' logs) stay this long for `kubectl logs`; the ReconJob keeps
# the outcome after that.
TTL_AFTER_FINISHED_SECONDS = 3600
# The runner image's non-root user.
RUNNER_UID = 65532
SCRATCH_VOLUME = "scratch"
SCRATCH_PATH = "/tmp"
ACCESS_KEY = "accessKey"
SECRET_KEY = "secretKey"
_DNS_LABEL_MAX = 63
_SUFFIX = "-recon"


def child_name(job_name: str) -> str:
    """The Job's name (also its ServiceAccount's, Role's and RoleBinding's).

    A Job's name must fit a label value (63 characters); long ReconJob names are cut and
    given a hash of the full name so two long names never collide.
    """
    name = f"{job_name}{_SUFFIX}"
    if len(name) <= _DNS_LABEL_MAX:
        return name
    digest = hashlib.sha256(job_name.encode()).hexdigest()[:8]
    head = job_name[: _DNS_LABEL_MAX - len(_SUFFIX) - len(digest) - 1].rstrip("-.")
    return f"{head}-{digest}{_SUFFIX}"


def labels(recon: ReconJob) -> dict[str, str]:
    name = str(recon.metadata.get("name", ""))
    result = {
        "app.kubernetes.io/name": "recon-runner",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        UID_LABEL: recon.uid,
    }
    if len(name) <= _DNS_LABEL_MAX:
        result[NAME_LABEL] = name
    return result


def owner_reference(recon: ReconJob) -> dict[str, Any]:
    """Makes the ReconJob the controller of the object: deleting it deletes the object."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": recon.metadata["name"],
        "uid": recon.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(recon: ReconJob) -> dict[str, Any]:
    return {
        "name": child_name(recon.metadata["name"]),
        "namespace": recon.metadata["namespace"],
        "labels": labels(recon),
        "ownerReferences": [owner_reference(recon)],
    }


def credentials_secret(recon: ReconJob, settings: Settings) -> str:
    return recon.spec.storage.credentials_secret or settings.storage_secret


def storage_endpoint(recon: ReconJob, settings: Settings) -> tuple[str, bool]:
    storage = recon.spec.storage
    secure = settings.storage_secure if storage.secure is None else storage.secure
    return storage.endpoint or settings.storage_endpoint, secure


def runner_params(recon: ReconJob, settings: Settings) -> RunnerParams:
    spec = recon.spec
    endpoint, secure = storage_endpoint(recon, settings)
    return RunnerParams(
        job_name=recon.metadata["name"],
        job_namespace=recon.metadata["namespace"],
        job_uid=recon.uid,
        input_bucket=spec.input.bucket,
        input_prefix=spec.input.prefix,
        expected_views=spec.input.expected_views,
        output_bucket=recon.output_bucket(),
        output_prefix=recon.output_prefix(),
        storage_endpoint=endpoint,
        storage_secure=secure,
        formats=tuple(spec.output.formats),
        preset=spec.reconstruction.preset,
        grid_resolution=spec.reconstruction.grid_resolution,
        iterations=spec.reconstruction.iterations,
        texture_size=spec.reconstruction.texture_size,
        seed=spec.reconstruction.seed,
        close_holes=spec.reconstruction.close_holes,
        device="auto" if spec.resources.gpus > 0 else "cpu",
        bounds=None if spec.reconstruction.bounds is None else spec.reconstruction.bounds.corners(),
    )


def _env(recon: ReconJob, settings: Settings) -> list[dict[str, Any]]:
    """Parameters as plain values; credentials only as references to the Secret, so they
    never appear in the Job object."""
    env: list[dict[str, Any]] = [
        {"name": k, "value": v} for k, v in runner_params(recon, settings).to_env().items()
    ]
    secret = credentials_secret(recon, settings)
    for var, key in ((ACCESS_KEY_ENV, ACCESS_KEY), (SECRET_KEY_ENV, SECRET_KEY)):
        env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    env.append({"name": "TMPDIR", "value": SCRATCH_PATH})
    return env


def _resources(recon: ReconJob, settings: Settings) -> dict[str, Any]:
    res = recon.spec.resources
    amounts: dict[str, str] = {"cpu": res.cpu, "memory": res.memory}
    if res.gpus > 0:
        amounts[settings.gpu_resource] = str(res.gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _pod_failure_policy() -> dict[str, Any]:
    """Bad input fails at once; transient trouble uses up a retry; evictions and
    preemptions are not the job's fault and cost nothing."""
    return {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": CONTAINER_NAME,
                    "operator": "In",
                    "values": [ExitCode.INVALID_INPUT],
                },
            },
            {
                "action": "Count",
                "onExitCodes": {
                    "containerName": CONTAINER_NAME,
                    "operator": "In",
                    "values": [ExitCode.TRANSIENT],
                },
            },
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            },
        ]
    }


def build_job(
    recon: ReconJob, settings: Settings, kueue_labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The child Job. With ``kueue_labels`` (a queue name at least) it is created suspended
    with those labels: Kueue admits it by unsuspending it, and suspends it to preempt."""
    spec = recon.spec
    meta = _metadata(recon)
    job_spec: dict[str, Any] = {}
    if kueue_labels:
        meta["labels"] = {**meta["labels"], **kueue_labels}
        job_spec["suspend"] = True
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": meta["name"],
        "automountServiceAccountToken": True,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNNER_UID,
            "runAsGroup": RUNNER_UID,
            "fsGroup": RUNNER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": CONTAINER_NAME,
                "image": settings.runner_image,
                "env": _env(recon, settings),
                "resources": _resources(recon, settings),
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": RUNNER_UID,
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "volumeMounts": [{"name": SCRATCH_VOLUME, "mountPath": SCRATCH_PATH}],
            }
        ],
        "volumes": [{"name": SCRATCH_VOLUME, "emptyDir": {}}],
    }
    if spec.resources.node_selector:
        pod_spec["nodeSelector"] = dict(spec.resources.node_selector)
    if spec.resources.tolerations:
        pod_spec["tolerations"] = [t.to_api() for t in spec.resources.tolerations]
    if spec.resources.priority_class_name:
        pod_spec["priorityClassName"] = spec.resources.priority_class_name
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            **job_spec,
            "backoffLimit": spec.retries,
            "activeDeadlineSeconds": spec.timeout_seconds,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_SECONDS,
            "podFailurePolicy": _pod_failure_policy(),
            "template": {"metadata": {"labels": labels(recon)}, "spec": pod_spec},
        },
    }


def build_service_account(recon: ReconJob) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(recon)}


def build_role(recon: ReconJob) -> dict[str, Any]:
    """Read its own ReconJob, patch its own status: nothing else, so a runner cannot touch
    another job even in the same namespace."""
    own = [recon.metadata["name"]]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(recon),
        "rules": [
            {"apiGroups": [GROUP], "resources": [PLURAL], "resourceNames": own, "verbs": ["get"]},
            {
                "apiGroups": [GROUP],
                "resources": [f"{PLURAL}/status"],
                "resourceNames": own,
                "verbs": ["patch"],
            },
        ],
    }


def build_role_binding(recon: ReconJob) -> dict[str, Any]:
    meta = _metadata(recon)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": meta["name"]},
        "subjects": [
            {"kind": "ServiceAccount", "name": meta["name"], "namespace": meta["namespace"]}
        ],
    }
