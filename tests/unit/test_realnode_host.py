"""The real node's pure parts: where it refuses to keep its state, and its configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from recon_stack.realnode import addresses, configs, host


@pytest.mark.parametrize("path", ["/run", "/var/lib/x"])
def test_a_state_dir_the_node_would_hide_is_refused(path: str) -> None:
    with pytest.raises(host.HostError, match="would hide"):
        host.check_state_dir(Path(path))


def test_each_state_dir_gets_its_own_namespace_and_cgroup() -> None:
    a, b = Path("/tmp/stack-a"), Path("/tmp/stack-b")
    assert addresses.namespace_name(a) != addresses.namespace_name(b)
    assert addresses.namespace_name(a) == addresses.namespace_name(Path("/tmp/stack-a"))
    assert addresses.cgroup_name(a).startswith("recon-")


def test_the_pod_network_has_no_masquerade_and_no_uplink() -> None:
    conf = json.loads(configs.cni_conflist())
    bridge = conf["plugins"][0]
    assert bridge["type"] == "bridge" and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"][0][0]["subnet"] == addresses.POD_CIDR


def test_the_kubelet_never_collects_images_and_runs_on_cgroupfs(tmp_path: Path) -> None:
    paths = configs.NodePaths(tmp_path)
    config = yaml.safe_load(configs.kubelet_yaml(paths, tmp_path / "ca.crt", "/recon-x"))
    assert config["imageGCHighThresholdPercent"] == 100
    assert config["cgroupDriver"] == "cgroupfs" and config["cgroupRoot"] == "/recon-x"
    assert config["failCgroupV1"] is False and config["failSwapOn"] is False
    assert config["containerRuntimeEndpoint"] == f"unix://{paths.containerd_socket}"
    toml = configs.containerd_toml(paths, "localhost/recon-pause:k")
    assert "restrict_oom_score_adj = true" in toml and "SystemdCgroup = false" in toml
    assert 'sandbox_image = "localhost/recon-pause:k"' in toml
