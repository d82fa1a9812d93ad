"""A status write that meets a brief API outage is retried, decided afresh, not lost.

A runner pod's Running event is delivered once; if the write it leads to failed for good,
the ReconJob would never say its runner is up. Here the operator's client reaches the real
API server through a relay that refuses connections for a moment, as during an API server
restart, while a status write is in flight.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from recon_operator.cluster import Cluster
from recon_operator.lifecycle import Transition
from recon_operator.registry import Known
from recon_operator.runtime import Runtime
from recon_operator.settings import Settings

from tests.support.loopback_servers import Relay
from tests.support.operator_process import apply, get, reconjob_manifest
from tests.support.runner_access import apply_crd
from tests.support.stack_handle import StackHandle

OUTAGE_SECONDS = 1.5


def runtime_through(stack: StackHandle, relay: Relay) -> Runtime:
    """The operator's runtime as the stack's admin, its API client going through `relay`."""
    configuration = client.Configuration()
    config.load_kube_config(str(stack.kubeconfig), client_configuration=configuration)
    configuration.host = f"https://{relay.endpoint}"
    return Runtime(Settings.from_env({}), Cluster(client.ApiClient(configuration)))


@pytest.fixture
def relay(stack: StackHandle) -> Iterator[Relay]:
    apply_crd(stack)
    target = stack.server.removeprefix("https://").rstrip("/")
    relay = Relay(target)
    yield relay
    relay.down()


def seeded(stack: StackHandle, rt: Runtime, namespace: str, name: str) -> Known:
    apply(stack, namespace, reconjob_manifest(name, "nothing-here/"))
    known = rt.registry.observe(get(stack, namespace, name))
    assert known is not None
    return known


def test_a_status_write_is_retried_across_a_brief_api_outage(
    stack: StackHandle, namespace: str, relay: Relay
) -> None:
    rt = runtime_through(stack, relay)
    known = seeded(stack, rt, namespace, "retried")
    decided: list[float] = []

    def decide(latest: Known) -> Transition:
        decided.append(time.monotonic())
        return Transition(patch={"nodeName": "node-after-outage"})

    # Down when the write starts, up again after the outage.
    timer = threading.Timer(OUTAGE_SECONDS, relay.up)
    timer.start()
    try:
        after = asyncio.run(rt.write(known.job.uid, decide))
    finally:
        timer.cancel()
    assert after is not None and after.job.status.node_name == "node-after-outage"
    assert get(stack, namespace, "retried")["status"]["nodeName"] == "node-after-outage"
    assert len(decided) >= 2, "the first attempt met the outage and the write was decided again"
    assert decided[-1] - decided[0] >= OUTAGE_SECONDS * 0.9
    assert relay.accepted >= 1


def test_a_refused_status_write_is_not_retried(
    stack: StackHandle, namespace: str, relay: Relay
) -> None:
    """The API server's refusal (a value its schema rejects) is an answer, not an outage."""
    relay.up()
    rt = runtime_through(stack, relay)
    known = seeded(stack, rt, namespace, "refused")
    decided: list[float] = []

    def decide(latest: Known) -> Transition:
        decided.append(time.monotonic())
        return Transition(patch={"attempts": -1})

    with pytest.raises(ApiException) as refused:
        asyncio.run(rt.write(known.job.uid, decide))
    assert refused.value.status == 422
    assert len(decided) == 1
