"""The chart installed with Helm on the stack, as a platform team installs it, and a
namespace where ReconJobs run with the real runner.

The release watches only its own jobs namespace, so operators that other tests run on the
same stack never see these jobs, nor this one theirs. Its ports are free ones: every pod
on the process node shares the host's network.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from recon_cli.cluster_demo import capture, chart, reconjob

from tests.support.stack_handle import StackHandle

# The draft preset at a small size: the whole reconstruction in well under a minute of CPU.
CAPTURE_SIZE = 96
DRAFT = {"preset": "draft"}


@dataclass(frozen=True)
class Installed:
    release: chart.Release
    jobs_namespace: str


def example_job(
    namespace: str, run: str, reconstruction: dict[str, Any], name: str | None = None
) -> dict[str, Any]:
    """The example ReconJob (examples/reconjob.yaml) for one run: its capture under
    ``run/capture/``, its outputs under ``run/out/``; named ``run`` unless ``name``."""
    return reconjob.customised(
        reconjob.example(),
        name=name if name is not None else run,
        namespace=namespace,
        input_prefix=f"{run}/capture/",
        output_prefix=f"{run}/out/",
        reconstruction=reconstruction,
    )


def upload_synthetic(stack: StackHandle, job: dict[str, Any], shape: str) -> None:
    """A CAPTURE_SIZE synthetic capture of ``shape`` where ``job`` reads it, and the
    bucket it writes to."""
    spec = job["spec"]
    client = stack.minio_client()
    capture.upload_synthetic_capture(
        client, spec["input"]["bucket"], spec["input"]["prefix"], shape, size=CAPTURE_SIZE
    )
    capture.ensure_bucket(client, spec["output"]["bucket"])


def new_namespace(stack: StackHandle, base: str) -> str:
    """A fresh namespace; the suffix keeps reruns on a kept stack clear of old ones."""
    namespace = f"{base}-{secrets.token_hex(3)}"
    stack.kubectl("create", "namespace", namespace)
    return namespace


def uninstall(stack: StackHandle, release: chart.Release) -> None:
    stack.helm("uninstall", release.name, "-n", release.namespace, "--wait", check=False)


@pytest.fixture(scope="session")
def installed(stack: StackHandle) -> Iterator[Installed]:
    """`helm install` of charts/recon-operator with the stack's MinIO as the storage
    endpoint and the chart's image defaults (the process node runs them as `recon
    operator` and `recon runner`)."""
    jobs = new_namespace(stack, "e2e-jobs")
    capture.apply_credentials_secret(stack, jobs, stack.minio_access_key, stack.minio_secret_key)
    release = chart.Release(
        name=f"e2e-{secrets.token_hex(2)}",
        namespace=new_namespace(stack, "e2e-system"),
        storage_endpoint=stack.minio_endpoint,
        max_running_jobs=2,
        watch_namespaces=(jobs,),
    )
    chart.upgrade_install(stack, release)
    chart.wait_operator_ready(stack, release)
    try:
        yield Installed(release, jobs)
    finally:
        # While the operator still runs, so it can release its finalizers.
        stack.kubectl("delete", "reconjobs", "--all", "-n", jobs, "--wait=true", check=False)
        uninstall(stack, release)
        for namespace in (jobs, release.namespace):
            stack.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
