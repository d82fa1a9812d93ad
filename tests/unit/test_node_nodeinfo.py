"""The Node the scheduler sees: GPU capacity, Ready, and no leftover not-ready taint."""

from __future__ import annotations

from recon_stack.node.nodeinfo import (
    NodeShape,
    lease_body,
    node_body,
    node_conditions,
    taints_without_health,
)

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:01:00Z"


def test_node_advertises_gpus_cpu_memory_and_pods_as_capacity_and_allocatable() -> None:
    body = node_body(NodeShape("local-gpu-0", cpu="8", memory="32Gi", pods=50, gpus=2), T0)
    status = body["status"]
    expected = {
        "cpu": "8",
        "memory": "32Gi",
        "pods": "50",
        "ephemeral-storage": "100Gi",
        "nvidia.com/gpu": "2",
    }
    assert status["capacity"] == status["allocatable"] == expected
    # Only an address the API server can dial for `kubectl logs`, and the port to dial.
    assert status["addresses"] == [{"type": "InternalIP", "address": "127.0.0.1"}]
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}
    with_logs = node_body(NodeShape("local-gpu-0", kubelet_port=40123), T0)
    assert with_logs["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 40123
    assert body["metadata"]["labels"]["kubernetes.io/hostname"] == "local-gpu-0"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastHeartbeatTime"] == T0


def test_heartbeat_moves_but_transition_time_stays_while_ready() -> None:
    first = {c["type"]: c for c in node_conditions(T0, {})}
    later = {c["type"]: c for c in node_conditions(T1, first)}
    assert later["Ready"]["lastHeartbeatTime"] == T1
    assert later["Ready"]["lastTransitionTime"] == T0
    was_not_ready = {"Ready": {"status": "False", "lastTransitionTime": T0}}
    recovered = {c["type"]: c for c in node_conditions(T1, was_not_ready)}
    assert recovered["Ready"]["lastTransitionTime"] == T1


def test_only_the_health_taints_are_cleared() -> None:
    taints = [
        {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
        {"key": "gpu-only", "value": "true", "effect": "NoSchedule"},
    ]
    assert taints_without_health(taints) == [taints[2]]


def test_lease_is_held_by_the_node_and_owned_by_it() -> None:
    lease = lease_body("local-gpu-0", "uid-1", "2026-01-01T00:00:00.000000Z")
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["spec"]["holderIdentity"] == "local-gpu-0"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
