"""The recon-operator chart installed with Helm, and the wait for its operator to be up.

Values are only what differs from the chart's defaults on the local stack: the stack's
MinIO as the default storage endpoint, a small queue, and the operator's ports (every pod
on the process node shares the host's network, so two releases need different ports).
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recon_cli.cluster_demo.tools import Tools, get_json

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "recon-operator"
OPERATOR_LABEL = "app.kubernetes.io/name=recon-operator"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Release:
    """One Helm release of the chart and the values it is installed with."""

    name: str
    namespace: str
    storage_endpoint: str
    max_running_jobs: int = 2
    # Empty: every namespace, as the chart defaults.
    watch_namespaces: tuple[str, ...] = ()
    metrics_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    log_level: str = "INFO"
    # Overrides of the runner image repository/tag; empty keeps the chart's defaults.
    runner_repository: str = ""
    runner_tag: str = ""

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "storage": {"endpoint": self.storage_endpoint, "secure": False},
            "maxRunningJobs": self.max_running_jobs,
            "watchNamespaces": list(self.watch_namespaces),
            "metrics": {"port": self.metrics_port},
            "health": {"port": self.health_port},
            "logLevel": self.log_level,
        }
        if self.runner_repository or self.runner_tag:
            image = {"repository": self.runner_repository, "tag": self.runner_tag}
            values["runner"] = {"image": {k: v for k, v in image.items() if v}}
        return values

    @property
    def deployment(self) -> str:
        """The operator Deployment's name (the chart's full name)."""
        return self.name if "recon-operator" in self.name else f"{self.name}-recon-operator"

    @property
    def selector(self) -> str:
        return f"{OPERATOR_LABEL},app.kubernetes.io/instance={self.name}"

    @property
    def health_url(self) -> str:
        # Pods on the process node listen on the host's loopback.
        return f"http://127.0.0.1:{self.health_port}/healthz"


def upgrade_install(tools: Tools, release: Release, timeout: float = 180) -> str:
    """`helm upgrade --install --wait`: installs the first time, upgrades after."""
    return tools.helm(
        "upgrade",
        "--install",
        release.name,
        str(CHART),
        "--namespace",
        release.namespace,
        "--create-namespace",
        "--values",
        "-",
        "--wait",
        f"--timeout={int(timeout)}s",
        input=json.dumps(release.values()),
        timeout=timeout + 30,
    ).stdout


def installed_values(tools: Tools, name: str, namespace: str) -> dict[str, Any] | None:
    """The user-supplied values of an installed release, or None when there is none."""
    result = tools.helm("get", "values", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    values: dict[str, Any] = json.loads(result.stdout) or {}
    return values


def operator_pods(tools: Tools, release: Release) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = get_json(
        tools, "pods", "-n", release.namespace, "-l", release.selector
    )["items"]
    return pods


def healthy(url: str) -> bool:
    """kopf's health endpoint answers 200 once the operator has started its handlers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_operator_ready(tools: Tools, release: Release, timeout: float = 120) -> dict[str, Any]:
    """Wait for the rollout, then for the operator to answer on its health port; returns
    the operator's pod."""
    tools.kubectl(
        "rollout",
        "status",
        f"deployment/{release.deployment}",
        "-n",
        release.namespace,
        f"--timeout={int(timeout)}s",
        timeout=timeout + 10,
    )
    deadline = time.monotonic() + timeout
    while not healthy(release.health_url):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the operator did not answer on {release.health_url}")
        time.sleep(0.5)
    running = [p for p in operator_pods(tools, release) if p["status"].get("phase") == "Running"]
    if len(running) != 1:
        raise RuntimeError(f"expected one running operator pod, found {len(running)}")
    return running[0]
