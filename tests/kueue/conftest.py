"""The real Kueue on the session's stack, with a ClusterQueue of one `nvidia.com/gpu` of
quota, and an operator watching a namespace with a LocalQueue in it.

Kueue is installed (its manifests from its module) and started once per module; its
webhooks are removed before its manager stops, so the rest of the session's tests create
Jobs as before.
"""

from __future__ import annotations

import json

import pytest
from recon_stack import kueue as stack_kueue

# Kueue's quota: one GPU, so a second GPU job waits and a higher-priority one preempts.
QUOTA_GPUS = 1


@pytest.fixture(scope="module")
def kueue(stack):
    install = stack_kueue.KueueInstall(stack.state_dir, stack.kubectl_path, stack.server)
    install.up()
    try:
        install.apply(stack_kueue.queue_manifests(QUOTA_GPUS))
        yield install
    finally:
        install.remove_webhooks()
        install.down()


@pytest.fixture(scope="module")
def operator_env(kueue):
    """One run slot of its own (maxRunningJobs counts only its own queue). Asking for
    `kueue` first has Kueue's CRDs exist before the operator starts, so its Workload watch
    is served."""
    return {"RECON_MAX_RUNNING_JOBS": "1", "RECON_CANCEL_TTL_SECONDS": "120"}


@pytest.fixture(scope="module")
def kueue_operator(stack, operator):
    """The module's operator, in a namespace with Kueue's LocalQueue `recon`."""
    manifest = stack_kueue.local_queue(operator.namespace)
    stack.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    return operator
