"""What a runner's token may do (its own ReconJob's status, nothing else), what the
operator holds (the chart's RBAC, no more), that credentials never leak into logs, Events,
status or messages, and that runner pods are locked down, all on the real API server."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from recon_api.runner_params import ACCESS_KEY_ENV, SECRET_KEY_ENV
from recon_operator.admission import IDLE_PASS
from recon_operator.cluster import Cluster, namespace_gone
from urllib3.exceptions import ProtocolError

from tests.support import captures
from tests.support.operator_process import (
    BUCKET,
    OperatorProcess,
    apply,
    condition,
    create_credentials_secret,
    get,
    jobs,
    pods,
    reconjob_manifest,
    status,
)
from tests.support.stack_handle import StackHandle, wait_for

pytestmark = pytest.mark.stack

WRONG_SECRET_KEY = "wrong-Secret-Key-4b1d9e77c2"


@dataclass
class Secured:
    ns: str
    operator: OperatorProcess
    operator_kubeconfig: Path
    workdir: Path


@pytest.fixture(scope="module")
def secured(operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Secured:
    kubeconfig = operator.log_dir / "operator.kubeconfig"
    return Secured(operator.namespace, operator, kubeconfig, tmp_path_factory.mktemp("security"))


def api_for(path: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(path))


def status_of(err: pytest.ExceptionInfo[ApiException]) -> int:
    return int(err.value.status)


@pytest.fixture(scope="module")
def two_running(stack: StackHandle, secured: Secured) -> tuple[str, str]:
    ns = secured.ns
    captures.upload(stack.minio_client(), BUCKET, "sec/sleep30/", captures.files(6))
    for name in ("mine", "theirs"):
        apply(stack, ns, reconjob_manifest(name, "sec/sleep30/"))
    for name in ("mine", "theirs"):
        wait_for(
            lambda n=name: (condition(stack, ns, n, "Running") or {}).get("status") == "True", 60
        )
    return "mine", "theirs"


def runner_token_kubeconfig(stack: StackHandle, secured: Secured, name: str) -> Path:
    """A token of the ServiceAccount the operator made for ``name``'s runner pods."""
    path = secured.workdir / f"{name}-runner.kubeconfig"
    return stack.service_account_kubeconfig(f"{name}-recon", secured.ns, path, duration="1h")


def test_runner_token_reaches_its_own_status_and_nothing_else(
    stack: StackHandle, secured: Secured, two_running: tuple[str, str]
) -> None:
    mine, theirs = two_running
    ns = secured.ns
    api = api_for(runner_token_kubeconfig(stack, secured, mine))
    objects, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    progress = {"status": {"progress": {"message": "allowed: own status"}}}

    # what it is for works
    own = objects.get_namespaced_custom_object("recon.dev", "v1alpha1", ns, "reconjobs", mine)
    assert own["metadata"]["name"] == mine
    objects.patch_namespaced_custom_object_status(
        "recon.dev", "v1alpha1", ns, "reconjobs", mine, progress
    )

    forbidden = {
        "read the storage Secret": lambda: core.read_namespaced_secret("minio-credentials", ns),
        "list Secrets": lambda: core.list_namespaced_secret(ns),
        "patch another ReconJob's status": lambda: objects.patch_namespaced_custom_object_status(
            "recon.dev", "v1alpha1", ns, "reconjobs", theirs, progress
        ),
        "read another ReconJob": lambda: objects.get_namespaced_custom_object(
            "recon.dev", "v1alpha1", ns, "reconjobs", theirs
        ),
        "patch its own spec": lambda: objects.patch_namespaced_custom_object(
            "recon.dev", "v1alpha1", ns, "reconjobs", mine, {"spec": {"priority": 9}}
        ),
        "create a pod": lambda: core.create_namespaced_pod(
            ns,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "escape"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        ),
        "list pods": lambda: core.list_namespaced_pod(ns),
    }
    for what, call in forbidden.items():
        with pytest.raises(ApiException) as err:
            call()
        assert status_of(err) == 403, f"{what}: {err.value.status} {err.value.reason}"
    assert "allowed: own status" not in json.dumps(status(stack, ns, theirs))


def test_operator_holds_the_charts_rbac_and_no_more(stack: StackHandle, secured: Secured) -> None:
    ns = secured.ns
    api = api_for(secured.operator_kubeconfig)
    auth = client.AuthorizationV1Api(api)

    def allowed(verb: str, resource: str, namespace: str | None, group: str = "") -> bool:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "verb": verb,
                    "resource": resource,
                    "group": group,
                    **({"namespace": namespace} if namespace else {}),
                }
            },
        }
        return bool(auth.create_self_subject_access_review(review).status.allowed)

    assert allowed("create", "jobs", ns, "batch")
    assert allowed("get", "secrets", ns)
    assert allowed("patch", "reconjobs/status", ns, "recon.dev")
    assert not allowed("*", "*", None, "*"), "not cluster-admin"
    assert not allowed("list", "secrets", ns), "Secrets are read by name, never listed"
    assert not allowed("get", "secrets", "kube-system"), "nothing outside its namespace"
    assert not allowed("create", "jobs", "default", "batch")
    assert not allowed("create", "pods", ns)
    assert not allowed("delete", "pods", ns)
    assert not allowed("create", "clusterrolebindings", None, "rbac.authorization.k8s.io")
    assert not allowed("escalate", "roles", ns, "rbac.authorization.k8s.io")
    assert not allowed("bind", "roles", ns, "rbac.authorization.k8s.io")
    # watching named namespaces asks for no namespace listing the chart does not grant
    assert "namespaces is forbidden" not in secured.operator.log()
    whoami = client.AuthenticationV1Api(api).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )
    assert whoami.status.user_info.username.startswith(f"system:serviceaccount:{ns}:")


def test_no_credential_appears_in_logs_events_status_or_messages(
    stack: StackHandle, secured: Secured, two_running: tuple[str, str]
) -> None:
    ns = secured.ns
    create_credentials_secret(stack, ns, "wrong-credentials", WRONG_SECRET_KEY)
    create_credentials_secret(stack, ns, "half-credentials", "")
    captures.upload(stack.minio_client(), BUCKET, "sec/sleep1/", captures.files(6))
    wrong_secret = {"credentialsSecret": "wrong-credentials"}
    half_secret = {"credentialsSecret": "half-credentials"}
    apply(
        stack,
        ns,
        reconjob_manifest("wrong-key", "sec/sleep30/", storage=wrong_secret),
        reconjob_manifest("half-key", "sec/sleep30/", storage=half_secret),
        reconjob_manifest("no-capture", "nothing-here/"),
        reconjob_manifest("done", "sec/sleep1/"),
    )
    wait_for(lambda: (condition(stack, ns, "wrong-key", "InputsValid") or {}).get("reason"), 30)
    wait_for(lambda: (condition(stack, ns, "half-key", "InputsValid") or {}).get("reason"), 30)
    wait_for(lambda: status(stack, ns, "no-capture").get("phase") == "Failed", 30)
    stack.kubectl("wait", "--for=condition=Succeeded", "reconjob/done", "-n", ns, "--timeout=90s")
    wrong = condition(stack, ns, "wrong-key", "InputsValid")
    assert wrong is not None and wrong["status"] != "True", wrong

    everything = {
        "operator log": secured.operator.log(),
        "events": stack.kubectl("get", "events", "-n", ns, "-o", "json").stdout,
        "reconjobs": stack.kubectl("get", "reconjobs", "-n", ns, "-o", "json").stdout,
        "jobs": json.dumps(jobs(stack, ns)),
        "pods": stack.kubectl("get", "pods", "-n", ns, "-o", "json").stdout,
        "runner logs": "\n".join(
            stack.kubectl("logs", p["metadata"]["name"], "-n", ns, check=False).stdout
            for p in pods(stack, ns, "app.kubernetes.io/managed-by=recon-operator")
        ),
    }
    assert wrong["message"] in everything["reconjobs"]
    for where, text in everything.items():
        assert text, f"{where}: nothing to search"
        for secret in (stack.minio_secret_key, WRONG_SECRET_KEY):
            assert secret not in text, f"a secret key appears in the {where}"


def securely_configured(container: dict[str, Any], pod_spec: dict[str, Any]) -> None:
    pod_sc = pod_spec.get("securityContext") or {}
    sc = container.get("securityContext") or {}
    assert sc.get("runAsNonRoot") is True or pod_sc.get("runAsNonRoot") is True
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    assert uid is not None and uid != 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc.get("privileged") in (None, False)
    assert sc["capabilities"].get("drop") == ["ALL"]
    assert not sc["capabilities"].get("add")
    assert (sc.get("seccompProfile") or pod_sc.get("seccompProfile"))["type"] == "RuntimeDefault"
    for volume in pod_spec.get("volumes") or ():
        assert "hostPath" not in volume, volume
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod_spec.get(key), key
    # Credentials reach the runner only as references to the storage Secret's two keys:
    # never as literal values, never a whole Secret (or ConfigMap) through envFrom, and no
    # other Secret key in the environment.
    assert not container.get("envFrom"), container.get("envFrom")
    env = {e["name"]: e for e in container.get("env") or ()}
    for name in (ACCESS_KEY_ENV, SECRET_KEY_ENV):
        assert name in env and "value" not in env[name], env.get(name)
    from_secrets = {
        name: e["valueFrom"]["secretKeyRef"]
        for name, e in env.items()
        if "secretKeyRef" in (e.get("valueFrom") or {})
    }
    assert set(from_secrets) == {ACCESS_KEY_ENV, SECRET_KEY_ENV}, from_secrets
    assert from_secrets[ACCESS_KEY_ENV]["key"] == "accessKey"
    assert from_secrets[SECRET_KEY_ENV]["key"] == "secretKey"
    assert len({ref["name"] for ref in from_secrets.values()}) == 1, from_secrets
    for e in env.values():
        assert "value" not in e or "valueFrom" not in e, e


def test_runner_pods_run_non_root_read_only_without_capabilities(
    stack: StackHandle, secured: Secured, two_running: tuple[str, str]
) -> None:
    mine, _ = two_running
    ns = secured.ns
    (job,) = [j for j in jobs(stack, ns) if j["metadata"]["name"] == f"{mine}-recon"]
    template = job["spec"]["template"]["spec"]
    (container,) = template["containers"]
    securely_configured(container, template)
    uid = get(stack, ns, mine)["metadata"]["uid"]
    (pod,) = pods(stack, ns, f"recon.dev/reconjob-uid={uid}")
    (container,) = pod["spec"]["containers"]
    securely_configured(container, pod["spec"])
    assert pod["spec"]["serviceAccountName"] == f"{mine}-recon"


def test_jobs_are_admitted_promptly_under_the_charts_rbac(
    stack: StackHandle, secured: Secured
) -> None:
    """Queued to Running well inside the admission loop's sweep interval. The operator
    creates each job's Role before its RoleBinding: with the chart's RBAC (no `bind`), the
    API server allows a binding only once it sees the Role, and a binding refused for that
    reason is retried at once rather than left for the next sweep."""
    ns = secured.ns
    names = ("prompt-a", "prompt-b", "prompt-c", "prompt-d")
    captures.upload(stack.minio_client(), BUCKET, "sec/sleep1/", captures.files(6))
    objects = client.CustomObjectsApi(api_for(stack.kubeconfig))
    first_seen: dict[tuple[str, str], float] = {}
    stream = watch.Watch()

    def record() -> None:
        # every status change arrives, so a short stay in Queued is not missed
        with contextlib.suppress(ProtocolError):  # the watch cut at the end
            for event in stream.stream(
                objects.list_namespaced_custom_object,
                "recon.dev",
                "v1alpha1",
                ns,
                "reconjobs",
                timeout_seconds=90,
            ):
                obj = event["object"]
                phase = (obj.get("status") or {}).get("phase")
                if phase:
                    first_seen.setdefault((obj["metadata"]["name"], phase), time.monotonic())

    watcher = threading.Thread(target=record, daemon=True)
    watcher.start()
    try:
        # one at a time, so no other job's writes wake the admission loop early
        for name in names:
            apply(stack, ns, reconjob_manifest(name, "sec/sleep1/"))
            wait_for(lambda n=name: (n, "Running") in first_seen, 60)
    finally:
        stream.stop()
    for name in names:
        waited = first_seen[(name, "Running")] - first_seen[(name, "Queued")]
        assert waited < IDLE_PASS / 2, f"{name} waited {waited:.1f} s in the queue"
        binding = stack.kubectl("get", "rolebinding", f"{name}-recon", "-n", ns, "-o", "json")
        assert json.loads(binding.stdout)["roleRef"]["name"] == f"{name}-recon"
    for name in names:
        stack.kubectl("wait", "--for=condition=Succeeded", f"reconjob/{name}", "-n", ns)


def test_a_binding_to_an_unseen_role_is_told_apart_from_a_namespace_going_away(
    stack: StackHandle, secured: Secured
) -> None:
    """Both are 404s: the operator retries the first and gives the job up on the second."""
    ns = secured.ns
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "no-role-yet", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "not-yet"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
    }
    as_operator = Cluster(api_for(secured.operator_kubeconfig))
    with pytest.raises(ApiException) as refused:
        as_operator.create_owned(binding, "no-owner")
    assert status_of(refused) == 404 and not namespace_gone(refused.value)

    as_admin = Cluster(api_for(stack.kubeconfig))
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "x", "namespace": "no-such-namespace"},
    }
    with pytest.raises(ApiException) as gone:
        as_admin.create_owned(account, "no-owner")
    assert status_of(gone) == 404 and namespace_gone(gone.value)
