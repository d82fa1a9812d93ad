"""The chart installed with Helm on the stack, as a platform team installs it, and a
namespace where ReconJobs run with the real runner.

The release watches only its own jobs namespace, so operators that other tests run on the
same stack never see these jobs, nor this one theirs. Its ports are free ones: every pod
on the process node shares the host's network.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from recon_cli.cluster_demo import capture, chart

from tests.support.e2e_release import Installed, new_namespace, uninstall
from tests.support.stack_handle import StackHandle


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
