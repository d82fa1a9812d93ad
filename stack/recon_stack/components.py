"""The stack's processes as command lines: what each component is started with.

Pure: given the binaries, the state layout and the chosen ports, build the argv and env of
each component, so the flags can be read and tested without starting anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recon_stack.layout import StateLayout
from recon_stack.pki import PkiPaths

NODE_NAME = "local-gpu-0"
NODE_GPUS = 2
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"

ETCD = "etcd"
MINIO = "minio"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
NODE = "process-node"

# Start order; `down` stops in reverse.
COMPONENT_NAMES = (ETCD, MINIO, APISERVER, CONTROLLER_MANAGER, SCHEDULER, NODE)

# Listening ports to pick, by purpose.
PORT_NAMES = (ETCD, "etcd-peer", MINIO, APISERVER, CONTROLLER_MANAGER, SCHEDULER)

# Only the controllers this project exercises: Jobs and their pods' lifecycle, namespaces,
# ServiceAccounts and their tokens, Deployments (the operator's chart), PDBs and RBAC
# aggregation. Fewer controllers means fewer informers and less memory and CPU when idle.
CONTROLLERS = (
    "job-controller",
    "cronjob-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "ttl-after-finished-controller",
    "pod-garbage-collector-controller",
    "disruption-controller",
    "deployment-controller",
    "replicaset-controller",
    "clusterrole-aggregation-controller",
)


@dataclass(frozen=True)
class Component:
    name: str
    argv: tuple[str, ...]
    port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)


def _without_minio_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment minus MINIO_* settings.

    A shell set up for another stack (`eval "$(recon dev env)"`) carries MINIO_ACCESS_KEY
    and friends, which the MinIO server would read as its own legacy credentials.
    """
    return {k: v for k, v in env.items() if not k.startswith("MINIO_")}


def etcd(binary: Path, layout: StateLayout, ports: Mapping[str, int]) -> Component:
    client = f"http://127.0.0.1:{ports[ETCD]}"
    peer = f"http://127.0.0.1:{ports['etcd-peer']}"
    argv = (
        str(binary),
        "--name=default",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        # A throw-away local cluster: losing the last writes on a power cut is acceptable,
        # and skipping fsync makes every API write much cheaper on slow disks.
        "--unsafe-no-fsync",
        "--quota-backend-bytes=2147483648",
        "--auto-compaction-retention=10m",
        "--log-level=warn",
    )
    return Component(ETCD, argv, ports[ETCD])


def kube_apiserver(
    binary: Path,
    layout: StateLayout,
    pki: PkiPaths,
    ports: Mapping[str, int],
    real_node_flags: tuple[str, ...] = (),
) -> Component:
    argv: tuple[str, ...] = (
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{ports[ETCD]}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports[APISERVER]}",
        f"--cert-dir={layout.pki}",
        f"--tls-cert-file={pki.cert('apiserver')}",
        f"--tls-private-key-file={pki.key('apiserver')}",
        f"--client-ca-file={pki.ca_cert}",
        "--authorization-mode=Node,RBAC",
        "--anonymous-auth=true",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.sa_public}",
        f"--service-account-signing-key-file={pki.sa_private}",
        f"--api-audiences={SERVICE_ACCOUNT_ISSUER}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        # 127.0.0.1 may not be stored as an Endpoints address; nothing routes to the
        # `kubernetes` Service on this machine anyway.
        "--endpoint-reconciler-type=none",
        "--allow-privileged=true",
        "--profiling=false",
        "--event-ttl=1h",
        "--delete-collection-workers=2",
    )
    if real_node_flags:
        # The real node's flags replace the process node's advertise address and
        # reconciler (the last occurrence of a flag wins).
        argv += real_node_flags
    return Component(APISERVER, argv, ports[APISERVER])


def kube_controller_manager(
    binary: Path,
    layout: StateLayout,
    pki: PkiPaths,
    ports: Mapping[str, int],
    extra_controllers: tuple[str, ...] = (),
) -> Component:
    kubeconfig = layout.component_kubeconfig("controller-manager")
    argv = (
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports[CONTROLLER_MANAGER]}",
        f"--cert-dir={layout.root / 'controller-manager'}",
        f"--controllers={','.join(CONTROLLERS + extra_controllers)}",
        "--use-service-account-credentials=true",
        f"--root-ca-file={pki.ca_cert}",
        f"--service-account-private-key-file={pki.sa_private}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--leader-elect=false",
        "--profiling=false",
        # Small machine, small cluster: few workers, but a client rate high enough that Job
        # and pod updates are not throttled.
        "--concurrent-job-syncs=2",
        "--concurrent-gc-syncs=2",
        "--concurrent-namespace-syncs=2",
        "--concurrent-deployment-syncs=2",
        "--concurrent-replicaset-syncs=2",
        "--concurrent-serviceaccount-token-syncs=2",
        "--kube-api-qps=50",
        "--kube-api-burst=100",
    )
    return Component(CONTROLLER_MANAGER, argv, ports[CONTROLLER_MANAGER])


def kube_scheduler(binary: Path, layout: StateLayout, ports: Mapping[str, int]) -> Component:
    kubeconfig = layout.component_kubeconfig("scheduler")
    argv = (
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports[SCHEDULER]}",
        "--leader-elect=false",
        "--profiling=false",
        "--kube-api-qps=50",
        "--kube-api-burst=100",
    )
    return Component(SCHEDULER, argv, ports[SCHEDULER])


def minio(
    binary: Path,
    layout: StateLayout,
    ports: Mapping[str, int],
    access_key: str,
    secret_key: str,
    base_env: Mapping[str, str] | None = None,
) -> Component:
    env = _without_minio_settings(os.environ if base_env is None else base_env)
    env.update(
        MINIO_ROOT_USER=access_key,
        MINIO_ROOT_PASSWORD=secret_key,
        MINIO_BROWSER="off",
        MINIO_UPDATE="off",
    )
    argv = (str(binary), "server", str(layout.minio_data), f"--address=127.0.0.1:{ports[MINIO]}")
    return Component(MINIO, argv, ports[MINIO], env)


def process_node(python: Path, layout: StateLayout) -> Component:
    argv = (
        str(python),
        "-m",
        "recon_stack.node",
        "--kubeconfig",
        str(layout.admin_kubeconfig),
        "--state-dir",
        str(layout.node_state),
        "--node-name",
        NODE_NAME,
        "--gpus",
        str(NODE_GPUS),
    )
    return Component(NODE, argv)
