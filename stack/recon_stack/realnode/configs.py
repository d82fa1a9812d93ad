"""The real node's configuration files: containerd, the kubelet, kube-proxy, the CNI
network and the API server's egress selector. Pure: paths and ports in, text out.

Every setting that departs from a default says why; most come from what this kind of
machine lacks (no systemd, no CAP_SYS_RESOURCE, cgroup v1, swap, no registry).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from recon_stack.realnode import addresses

CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins


@dataclass(frozen=True)
class NodePaths:
    """Where the node keeps its files inside the stack's state directory."""

    root: Path

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd.toml"

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet.yaml"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy.yaml"

    @property
    def resolv_conf(self) -> Path:
        return self.root / "resolv.conf"

    @property
    def volume_plugins(self) -> Path:
        return self.root / "volume-plugins"

    @property
    def var_lib(self) -> Path:
        """Mounted over /var/lib inside the node's mount namespace (the kubelet's root,
        the CNI plugins' state)."""
        return self.root / "var-lib"

    @property
    def var_log(self) -> Path:
        """Mounted over /var/log inside the node's mount namespace (pod logs)."""
        return self.root / "var-log"

    @property
    def egress_socket(self) -> Path:
        return self.root / "egress.sock"

    @property
    def egress_config(self) -> Path:
        return self.root / "egress-selector.yaml"

    @property
    def sysctl_record(self) -> Path:
        return self.root / "sysctls.json"


def containerd_toml(paths: NodePaths, sandbox_image: str) -> str:
    """containerd 1.6 (config version 2) with its own root, socket and CNI folders."""
    return f"""version = 2
root = "{paths.containerd_root}"
# Inside the node's mount namespace, where /run is the node's own tmpfs (containerd 1.6
# also puts its shims' sockets under the fixed /run/containerd).
state = "/run/containerd"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{paths.containerd_socket}"

[ttrpc]
  address = "{paths.containerd_socket}.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{paths.containerd_root}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # No registry can serve the usual pause image: the sandbox image is made locally.
  sandbox_image = "{sandbox_image}"
  # Without CAP_SYS_RESOURCE every sandbox fails ("can't get final child's PID from pipe")
  # unless containers' oom_score_adj is kept at or above containerd's own.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # No systemd: the kubelet's cgroupfs driver, and runc's to match.
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{paths.cni_conf_dir}"
"""


def cni_conflist() -> str:
    """A bridge with host-local addresses: no uplink, no masquerade, nothing routed out."""
    config = {
        "cniVersion": "1.0.0",
        "name": addresses.CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": addresses.CNI_BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": addresses.POD_CIDR, "gateway": addresses.POD_GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "loopback"},
        ],
    }
    return json.dumps(config, indent=1) + "\n"


def kubelet_yaml(paths: NodePaths, ca_file: Path, cgroup_root: str, api_qps: int = 50) -> str:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": addresses.NODE_IP,
        "port": addresses.KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        # No systemd on these machines; cgroup v1 is what the kernel offers.
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "failCgroupV1": False,
        "failSwapOn": False,
        # The images cannot be pulled again: never collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # A shared development disk: evict only when it is really full.
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "resolvConf": str(paths.resolv_conf),
        "volumePluginDir": str(paths.volume_plugins),
        "clusterDomain": "cluster.local",
        "serializeImagePulls": False,
        "kubeAPIQPS": api_qps,
        "kubeAPIBurst": api_qps * 2,
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "20s",
        "maxPods": 60,
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_yaml(kubeconfig: Path, node_name: str) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "hostnameOverride": node_name,
        "bindAddress": addresses.NODE_IP,
        "clusterCIDR": addresses.POD_CIDR,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # The conntrack table size and timeouts are the machine's, not the namespace's:
        # leave them as they are.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "iptables": {"masqueradeAll": False, "localhostNodePorts": False},
    }
    return yaml.safe_dump(config, sort_keys=False)


def egress_selector_yaml(socket_path: Path) -> str:
    """The API server dials nodes and pods through the bridge's CONNECT proxy."""
    config = {
        "apiVersion": "apiserver.k8s.io/v1beta1",
        "kind": "EgressSelectorConfiguration",
        "egressSelections": [
            {
                "name": "cluster",
                "connection": {
                    "proxyProtocol": "HTTPConnect",
                    "transport": {"uds": {"udsName": str(socket_path)}},
                },
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)
