"""`helm install`, `helm upgrade` and `helm uninstall` of charts/recon-operator on the stack.

The operator pod is scheduled on the process node, runs `recon operator` (the chart's
default image, mapped to it by the node) with only the chart's RBAC, and does its work
with it; an upgrade that changes a value replaces the pod without two operators ever
running at once (Recreate); uninstalling removes the operator but leaves users' ReconJobs
and the CRD where they are.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
import yaml
from recon_cli.cluster_demo import capture, chart, reconjob
from recon_cli.cluster_demo.tools import get_json

from tests.support.e2e_release import new_namespace
from tests.support.stack_handle import StackHandle, wait_for

CHART_YAML = yaml.safe_load((chart.CHART / "Chart.yaml").read_text())
# How long a freshly started operator may take to act on a ReconJob.
OPERATOR_TIMEOUT = 30
OPERATOR_IMAGE = f"ghcr.io/recon-operator/recon-operator:{CHART_YAML['appVersion']}"


@pytest.fixture(scope="module")
def release(stack: StackHandle) -> Iterator[chart.Release]:
    jobs = new_namespace(stack, "helm-jobs")
    capture.apply_credentials_secret(stack, jobs, stack.minio_access_key, stack.minio_secret_key)
    installed = chart.Release(
        name="recon-operator",
        namespace=new_namespace(stack, "helm-system"),
        storage_endpoint=stack.minio_endpoint,
        max_running_jobs=1,
        watch_namespaces=(jobs,),
    )
    yield installed
    stack.helm("uninstall", installed.name, "-n", installed.namespace, "--wait", check=False)
    # Without the operator nothing releases its finalizer: an administrator's cleanup.
    for name in stack.kubectl("get", "reconjobs", "-n", jobs, "-o", "name").stdout.split():
        stack.kubectl(
            "patch", name, "-n", jobs, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
        )
    for namespace in (jobs, installed.namespace):
        stack.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def jobs_namespace(release: chart.Release) -> str:
    return release.watch_namespaces[0]


def service_account(release: chart.Release) -> str:
    return f"system:serviceaccount:{release.namespace}:{release.deployment}"


def can_i(stack: StackHandle, release: chart.Release, *args: str) -> bool:
    result = stack.kubectl("auth", "can-i", *args, f"--as={service_account(release)}", check=False)
    return result.stdout.strip() == "yes"


def a_reconjob_with_no_capture(stack: StackHandle, namespace: str, name: str) -> None:
    """The example, pointed at a prefix with nothing under it: it fails validation."""
    job = reconjob.customised(
        reconjob.example(), name=name, namespace=namespace, input_prefix=f"{namespace}/{name}/"
    )
    capture.ensure_bucket(stack.minio_client(), job["spec"]["input"]["bucket"])
    reconjob.apply(stack, job)


def test_install_runs_the_operator_on_the_node_with_the_charts_rbac_only(
    stack: StackHandle, release: chart.Release
) -> None:
    chart.upgrade_install(stack, release)
    pod = chart.wait_operator_ready(stack, release)

    assert pod["spec"]["nodeName"] == stack.node_name
    (container,) = pod["spec"]["containers"]
    assert container["image"] == OPERATOR_IMAGE
    assert pod["spec"]["serviceAccountName"] == release.deployment
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "True"
    # The chart's args reached `recon operator`: it serves health and metrics on its ports.
    assert chart.healthy(release.health_url)
    assert chart.healthy(f"http://127.0.0.1:{release.metrics_port}/metrics")

    # Least privilege: no cluster-admin, nothing outside the watched namespace.
    bindings = get_json(stack, "clusterrolebindings")["items"]
    for binding in bindings:
        subjects = binding.get("subjects") or []
        if any(s.get("name") == release.deployment for s in subjects):
            assert binding["roleRef"]["name"] != "cluster-admin", binding["metadata"]["name"]
    jobs = jobs_namespace(release)
    assert not can_i(stack, release, "*", "*")
    assert not can_i(stack, release, "create", "clusterrolebindings")
    assert not can_i(stack, release, "list", "secrets", "-n", jobs)
    assert not can_i(stack, release, "create", "jobs.batch", "-n", "default")
    assert can_i(stack, release, "create", "jobs.batch", "-n", jobs)
    assert can_i(stack, release, "patch", "reconjobs.recon.dev", "--subresource=status", "-n", jobs)

    # And with those rights it does its work: a capture that is not there fails validation.
    a_reconjob_with_no_capture(stack, jobs, "no-capture")
    wait_for(
        lambda: reconjob.get(stack, jobs, "no-capture").get("status", {}).get("phase") == "Failed",
        timeout=OPERATOR_TIMEOUT,
        what="the operator to fail a ReconJob whose capture is missing",
    )
    valid = reconjob.condition(reconjob.get(stack, jobs, "no-capture"), "InputsValid")
    assert valid is not None and valid["status"] == "False"
    assert "transforms.json" in valid["message"]


def operator_pod_names(stack: StackHandle, release: chart.Release) -> set[str]:
    return {p["metadata"]["name"] for p in chart.operator_pods(stack, release)}


def helm_revision(stack: StackHandle, release: chart.Release) -> int:
    out = stack.helm("status", release.name, "-n", release.namespace, "-o", "json").stdout
    return int(json.loads(out)["version"])


def test_upgrade_with_a_changed_value_recreates_the_operator(
    stack: StackHandle, release: chart.Release
) -> None:
    chart.upgrade_install(stack, release)
    before = chart.wait_operator_ready(stack, release)
    revision = helm_revision(stack, release)

    upgraded = replace(release, max_running_jobs=3)
    samples: list[set[str]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(operator_pod_names(stack, release))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        chart.upgrade_install(stack, upgraded)
        after = chart.wait_operator_ready(stack, upgraded)
    finally:
        done.set()
        sampler.join()

    assert helm_revision(stack, release) == revision + 1
    assert after["metadata"]["name"] != before["metadata"]["name"]
    assert operator_pod_names(stack, release) == {after["metadata"]["name"]}
    env = {e["name"]: e.get("value") for e in after["spec"]["containers"][0]["env"]}
    assert env["RECON_MAX_RUNNING_JOBS"] == "3"
    # Recreate: the old operator was gone before the new one was created.
    assert any(before["metadata"]["name"] in s for s in samples)
    assert all(len(s) <= 1 for s in samples), [s for s in samples if len(s) > 1]


def test_uninstall_removes_the_operator_and_keeps_reconjobs_and_the_crd(
    stack: StackHandle, release: chart.Release
) -> None:
    chart.upgrade_install(stack, release)
    chart.wait_operator_ready(stack, release)
    jobs = jobs_namespace(release)
    a_reconjob_with_no_capture(stack, jobs, "kept")
    wait_for(
        lambda: reconjob.get(stack, jobs, "kept").get("status", {}).get("phase") == "Failed",
        timeout=OPERATOR_TIMEOUT,
        what="the operator to handle the ReconJob",
    )
    kept_status = reconjob.get(stack, jobs, "kept")["status"]

    stack.helm("uninstall", release.name, "-n", release.namespace, "--wait")

    deployments = get_json(stack, "deployments", "-n", release.namespace)["items"]
    assert deployments == []
    wait_for(
        lambda: not chart.operator_pods(stack, release),
        timeout=60,
        what="the operator pod to go",
    )
    assert not chart.healthy(release.health_url)
    cluster_roles = stack.kubectl("get", "clusterroles", "-o", "name").stdout.split()
    for suffix in ("cluster", "jobs"):
        assert f"clusterrole.rbac.authorization.k8s.io/{release.deployment}-{suffix}" not in (
            cluster_roles
        )
    # What users own stays: the CRD, and every ReconJob with its status.
    stack.kubectl("get", "crd", "reconjobs.recon.dev")
    names = stack.kubectl("get", "reconjobs", "-n", jobs, "-o", "name").stdout.split()
    assert "reconjob.recon.dev/kept" in names
    assert reconjob.get(stack, jobs, "kept")["status"] == kept_status
