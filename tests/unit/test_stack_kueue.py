"""How the stack installs the real Kueue: its webhooks called at the API server's loopback
with the stack's CA, only the webhooks of what the stack runs, its Services dropped (no
Service address is routed), and a configuration for a host process."""

from __future__ import annotations

import base64
from pathlib import Path

from recon_stack import kueue


def webhook(name: str, group: str, path: str) -> dict:
    return {
        "name": name,
        "clientConfig": {"service": {"name": "kueue-webhook-service", "path": path}},
        "rules": [{"apiGroups": [group], "resources": ["x"]}],
        "failurePolicy": "Fail",
    }


MANIFESTS = [
    {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "kueue-mutating-webhook-configuration"},
        "webhooks": [
            webhook("mjob.kb.io", "batch", "/mutate-batch-v1-job"),
            webhook("mpod.kb.io", "", "/mutate--v1-pod"),
            webhook("mworkload.kb.io", "kueue.x-k8s.io", "/mutate-workload"),
        ],
    },
    {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "workloads.kueue.x-k8s.io"},
        "spec": {
            "conversion": {
                "strategy": "Webhook",
                "webhook": {"clientConfig": {"service": {"name": "s", "path": "/convert"}}},
            }
        },
    },
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kueue-webhook-service"}},
]


def test_webhooks_are_called_at_loopback_with_the_stacks_ca() -> None:
    out = kueue.point_webhooks(MANIFESTS, "https://127.0.0.1:9443", b"CA PEM")
    kinds = [o["kind"] for o in out]
    assert kinds[0] == "Namespace" and "Service" not in kinds
    hooks = out[1]["webhooks"]
    assert [h["name"] for h in hooks] == ["mjob.kb.io", "mworkload.kb.io"], "no pod webhook"
    assert hooks[0]["clientConfig"] == {
        "url": "https://127.0.0.1:9443/mutate-batch-v1-job",
        "caBundle": base64.b64encode(b"CA PEM").decode(),
    }
    conversion = out[2]["spec"]["conversion"]["webhook"]["clientConfig"]
    assert conversion["url"] == "https://127.0.0.1:9443/convert"
    assert "service" not in conversion
    assert MANIFESTS[0]["webhooks"][0]["clientConfig"]["service"], "the input is not changed"


def test_kustomization_names_the_modules_components_relatively() -> None:
    k = kueue.kustomization(Path("/mod/kueue"), Path("/state/kueue/kustomize"))
    assert k["namespace"] == "kueue-system" and k["namePrefix"] == "kueue-"
    assert k["resources"] == [
        "../../../mod/kueue/config/components/crd",
        "../../../mod/kueue/config/components/rbac",
        "../../../mod/kueue/config/components/webhook",
    ]


def test_configuration_for_a_host_process() -> None:
    config = kueue.configuration(9443, 8081, Path("/certs"))
    assert config["webhook"] == {"host": "127.0.0.1", "port": 9443, "certDir": "/certs"}
    assert config["health"]["healthProbeBindAddress"] == "127.0.0.1:8081"
    assert config["internalCertManagement"] == {"enable": False}
    assert config["integrations"]["frameworks"] == ["batch/job"]
    assert config["manageJobsWithoutQueueName"] is False


def test_cluster_queue_has_the_gpu_quota_and_preempts_lower_priority() -> None:
    objects = {o["kind"]: o for o in kueue.queue_manifests(1)}
    spec = objects["ClusterQueue"]["spec"]
    resources = spec["resourceGroups"][0]["flavors"][0]["resources"]
    assert {"name": "nvidia.com/gpu", "nominalQuota": 1} in resources
    assert spec["preemption"]["withinClusterQueue"] == "LowerPriority"
    assert (
        kueue.local_queue("ns")["spec"]["clusterQueue"]
        == objects["ClusterQueue"]["metadata"]["name"]
    )
