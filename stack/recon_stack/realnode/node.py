"""Start and stop the real node's processes, in order, and make it usable to the cluster.

The order: the network namespace and cgroup parent, the mount-namespace holder, the
bridge, containerd (and the images imported into it), then the kubelet and kube-proxy.
Once the Node is Ready it gets its `nvidia.com/gpu` capacity (counted by the scheduler
and the kubelet's admission) and the `minio` Service in front of the stack's MinIO.
`stop` undoes all of it from what it finds on the machine, so it also cleans up after a
crash. Each process is a `components.Component` the stack spawns and records like any
other.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from recon_stack.components import NODE_GPUS, NODE_NAME, Component
from recon_stack.image_build import BuiltImage
from recon_stack.layout import StateLayout
from recon_stack.pki import PkiPaths
from recon_stack.processes import is_alive, read_pidfile, stop
from recon_stack.realnode import addresses, configs, host

HOLDER = "node-holder"
BRIDGE = "node-bridge"
CONTAINERD = "containerd"
KUBELET = "kubelet"
KUBE_PROXY = "kube-proxy"
# Start order; stopped in reverse.
COMPONENTS = (HOLDER, BRIDGE, CONTAINERD, KUBELET, KUBE_PROXY)
STOP_GRACE = 10.0


def node_paths(layout: StateLayout) -> configs.NodePaths:
    return configs.NodePaths(layout.root / "realnode")


def apiserver_flags(layout: StateLayout, pki: PkiPaths) -> tuple[str, ...]:
    """What the API server needs for a node in the stack's namespace."""
    paths = node_paths(layout)
    return (
        f"--kubelet-client-certificate={pki.cert('apiserver-kubelet-client')}",
        f"--kubelet-client-key={pki.key('apiserver-kubelet-client')}",
        # The `kubernetes` Service's endpoint: the bridge listens there inside the
        # namespace and relays to the API server on the machine's loopback.
        f"--advertise-address={addresses.NODE_IP}",
        "--endpoint-reconciler-type=lease",
        "--kubelet-preferred-address-types=InternalIP",
        f"--egress-selector-config-file={paths.egress_config}",
    )


# The controllers a real node needs beyond the process node's: Node lifecycle (the
# not-ready taint goes once the kubelet reports Ready) and Service endpoints.
CONTROLLERS = (
    "node-lifecycle-controller",
    "taint-eviction-controller",
    "endpoints-controller",
    "endpointslice-controller",
)


def write_configs(layout: StateLayout, pki: PkiPaths, sandbox_image: str) -> configs.NodePaths:
    paths = node_paths(layout)
    for d in (paths.root, paths.cni_conf_dir, paths.var_lib, paths.var_log, paths.volume_plugins):
        d.mkdir(parents=True, exist_ok=True)
    paths.containerd_config.write_text(configs.containerd_toml(paths, sandbox_image))
    (paths.cni_conf_dir / "10-recon.conflist").write_text(configs.cni_conflist())
    cgroup = "/" + addresses.cgroup_name(layout.root)
    paths.kubelet_config.write_text(configs.kubelet_yaml(paths, pki.ca_cert, cgroup))
    kube_proxy_kubeconfig = layout.component_kubeconfig("kube-proxy")
    paths.kube_proxy_config.write_text(configs.kube_proxy_yaml(kube_proxy_kubeconfig, NODE_NAME))
    # No cluster DNS yet: pods resolve nothing but what their own /etc/hosts holds.
    paths.resolv_conf.write_text("")
    paths.egress_config.write_text(configs.egress_selector_yaml(paths.egress_socket))
    return paths


def prepare_host(layout: StateLayout) -> Path:
    """The namespace, cgroup parent and sysctl record; returns the namespace's path."""
    host.check_state_dir(layout.root)
    name = addresses.namespace_name(layout.root)
    netns = host.make_netns(name)
    host.make_cgroups(addresses.cgroup_name(layout.root))
    host.save_sysctls(layout.root)
    return netns


def holder(layout: StateLayout, netns: Path) -> Component:
    paths = node_paths(layout)
    return Component(HOLDER, tuple(host.holder_argv(netns, paths.var_lib, paths.var_log)))


def holder_pid(layout: StateLayout) -> int:
    record = read_pidfile(layout.pidfile(HOLDER))
    if record is None or not is_alive(record):
        raise host.HostError("the node's namespace holder is not running")
    return record.pid


def bridge(
    layout: StateLayout, python: Path, netns: Path, ports: Mapping[str, int], api: str, minio: str
) -> Component:
    paths = node_paths(layout)
    argv = (
        str(python),
        "-m",
        "recon_stack.realnode.bridge",
        f"--netns={netns}",
        f"--forward={addresses.NODE_IP}:{ports[api]}={ports[api]}",
        f"--forward={addresses.NODE_IP}:{addresses.MINIO_SERVICE_PORT}={ports[minio]}",
        f"--connect-proxy={paths.egress_socket}",
    )
    return Component(BRIDGE, argv)


def containerd(layout: StateLayout) -> Component:
    paths = node_paths(layout)
    argv = ["containerd", f"--config={paths.containerd_config}"]
    return Component(CONTAINERD, tuple(host.inside_argv(holder_pid(layout), argv)))


def kubelet(layout: StateLayout, binary: Path) -> Component:
    paths = node_paths(layout)
    argv = [
        str(binary),
        f"--config={paths.kubelet_config}",
        f"--kubeconfig={layout.component_kubeconfig('kubelet')}",
        "--root-dir=/var/lib/kubelet",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={addresses.NODE_IP}",
        "--v=1",
    ]
    return Component(KUBELET, tuple(host.inside_argv(holder_pid(layout), argv)))


def kube_proxy(layout: StateLayout, binary: Path) -> Component:
    paths = node_paths(layout)
    argv = [str(binary), f"--config={paths.kube_proxy_config}", "--v=1"]
    return Component(KUBE_PROXY, tuple(host.inside_argv(holder_pid(layout), argv)))


def log_says(path: Path, text: str) -> bool:
    try:
        return text in path.read_text(errors="replace")
    except FileNotFoundError:
        return False


def containerd_ready(layout: StateLayout) -> bool:
    paths = node_paths(layout)
    if not paths.containerd_socket.exists():
        return False
    proc = subprocess.run(
        ["ctr", f"--address={paths.containerd_socket}", "version"],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return proc.returncode == 0


def import_images(layout: StateLayout, images: Sequence[BuiltImage]) -> None:
    """Import the OCI archives into the CRI's namespace under their references."""
    paths = node_paths(layout)
    for image in images:
        proc = subprocess.run(
            [
                "ctr",
                f"--address={paths.containerd_socket}",
                "--namespace=k8s.io",
                "images",
                "import",
                str(image.archive),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise host.HostError(
                f"importing {image.archive} into the node's containerd failed: "
                f"{proc.stderr.strip() or proc.stdout.strip()}"
            )


def _request(server: str, context: ssl.SSLContext, method: str, path: str, body: object) -> None:
    content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
    req = urllib.request.Request(
        server + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(req, timeout=10, context=context):
            pass
    except urllib.error.HTTPError as e:
        if e.code != 409:  # already there from an earlier start
            raise


def publish(server: str, context: ssl.SSLContext, minio_port: int) -> None:
    """The node's GPUs (counted, not devices) and the `minio` Service for pods."""
    _request(
        server,
        context,
        "PATCH",
        f"/api/v1/nodes/{NODE_NAME}/status",
        {"status": {"capacity": {"nvidia.com/gpu": str(NODE_GPUS)}}},
    )
    ns = addresses.MINIO_SERVICE_NAMESPACE
    name = addresses.MINIO_SERVICE_NAME
    _request(
        server,
        context,
        "POST",
        f"/api/v1/namespaces/{ns}/services",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {
                "clusterIP": addresses.MINIO_SERVICE_IP,
                "ports": [{"name": "s3", "port": addresses.MINIO_SERVICE_PORT}],
            },
        },
    )
    _request(
        server,
        context,
        "POST",
        f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-stack",
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [addresses.NODE_IP]}],
            "ports": [{"name": "s3", "port": addresses.MINIO_SERVICE_PORT, "protocol": "TCP"}],
        },
    )
    del minio_port  # the bridge relays the Service port to it


def stop_node(layout: StateLayout, log: Callable[[str], None]) -> list[str]:
    """Stop the node and remove what it set up on the machine; returns what was running."""
    running = []
    for name in reversed(COMPONENTS):
        record = read_pidfile(layout.pidfile(name))
        if record is None:
            continue
        if is_alive(record):
            running.append(name)
        if name == CONTAINERD:
            # The pods' shims outlive containerd; they name its socket.
            host.kill_pids(host.pids_with_argument(str(node_paths(layout).containerd_socket)))
        stop([record], STOP_GRACE)
        layout.pidfile(name).unlink(missing_ok=True)
    host.kill_pids(host.pids_with_argument(str(node_paths(layout).containerd_socket)))
    host.remove_cgroups(addresses.cgroup_name(layout.root))
    host.remove_netns(addresses.namespace_name(layout.root))

    def node_running(state_dir: Path) -> bool:
        record = read_pidfile(StateLayout(state_dir).pidfile(KUBELET))
        return record is not None and is_alive(record)

    restored = host.restore_sysctls(layout.root, node_running)
    if restored:
        log(f"restored sysctls: {', '.join(f'{k}={v}' for k, v in restored.items())}")
    return running
