"""The real Kueue on a running local stack: its own manifests, its controller manager as a
host process, and the queues a GPU cluster would have.

Kueue is built from its pinned Go module (`binaries.resolve_kueue`), and its CRDs, RBAC and
webhook configurations come from that module's own `config/components` (rendered by
kubectl's built-in kustomize, with the namespace and name prefix of Kueue's default
install). Two things differ from an in-cluster install, both because the API server runs
on host loopback and reaches no Service address:

* every webhook (admission and CRD conversion) is called at `https://127.0.0.1:PORT` with a
  serving certificate from the stack's CA, instead of Kueue's internal certificate manager
  (which issues certificates for a Service name only);
* only the webhooks of what the stack runs are kept (batch/v1 Jobs and Kueue's own kinds):
  the others (pods, deployments, ...) would send every pod creation to Kueue for nothing.

Kueue's manager reads its metrics certificate from the fixed path /etc/kueue/metrics/certs
whenever internal certificates are off; it runs in a private mount namespace with an
overlay over /etc that holds that certificate, so nothing on the host is written. It runs
as its ServiceAccount (a token kubeconfig), so its RBAC from the module is what it gets.

The pure parts (the kustomization, the webhook rewrite, the configuration, the queues) are
separate from `KueueInstall`, the edge that applies and starts.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from recon_stack import kubeconfig, pki, ports, probes
from recon_stack.binaries import KUEUE_VERSION, kueue_module_dir, resolve_kueue
from recon_stack.layout import StateLayout
from recon_stack.processes import is_alive, read_pidfile, spawn, stop

NAMESPACE = "kueue-system"
NAME_PREFIX = "kueue-"
SERVICE_ACCOUNT = "kueue-controller-manager"
COMPONENT = "kueue"
# Kueue's parts this stack installs from the module's config/components.
COMPONENT_DIRS = ("crd", "rbac", "webhook")
# API groups whose webhooks are kept: batch/v1 Jobs, and Kueue's own kinds.
WEBHOOK_GROUPS = frozenset({"batch", "kueue.x-k8s.io"})
# Kueue's webhook configurations, by kind, as its kustomization names them.
WEBHOOK_CONFIGURATIONS = {
    "mutatingwebhookconfiguration": f"{NAME_PREFIX}mutating-webhook-configuration",
    "validatingwebhookconfiguration": f"{NAME_PREFIX}validating-webhook-configuration",
}
METRICS_CERT_DIR = Path("kueue/metrics/certs")  # under /etc, where Kueue looks
READY_TIMEOUT = 120.0
TOKEN_SECONDS = 86400

RESOURCE_FLAVOR = "default-flavor"
CLUSTER_QUEUE = "recon-gpu"
LOCAL_QUEUE = "recon"
# WorkloadPriorityClasses: a ReconJob labelled kueue.x-k8s.io/priority-class picks one.
PRIORITY_CLASSES = {"recon-low": 100, "recon-high": 1000}


class KueueError(RuntimeError):
    """Kueue could not be installed or started; the message names the step and its log."""


def kustomization(module_dir: Path, at: Path) -> dict[str, Any]:
    """Kueue's components with the namespace and name prefix of its default install, for a
    kustomization file in directory ``at`` (kustomize takes relative paths only)."""
    components = module_dir / "config" / "components"
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "namePrefix": NAME_PREFIX,
        "resources": [os.path.relpath(components / d, at) for d in COMPONENT_DIRS],
    }


def _webhook_kept(webhook: Mapping[str, Any]) -> bool:
    groups = {g for rule in webhook.get("rules") or () for g in rule.get("apiGroups") or ()}
    return bool(groups & WEBHOOK_GROUPS)


def _url_config(client_config: Mapping[str, Any], base_url: str, ca_pem: bytes) -> dict[str, Any]:
    path = (client_config.get("service") or {}).get("path") or "/"
    return {"url": f"{base_url}{path}", "caBundle": base64.b64encode(ca_pem).decode()}


def point_webhooks(
    objects: Iterable[Mapping[str, Any]], base_url: str, ca_pem: bytes
) -> list[dict[str, Any]]:
    """The manifests with every webhook called at ``base_url`` (trusting ``ca_pem``) and
    only the webhooks of Jobs and Kueue's kinds kept. The Namespace is added: Kueue's
    manifests expect the namespace its install creates."""
    result: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    ]
    for obj in objects:
        obj = json.loads(json.dumps(obj))
        kind = obj.get("kind")
        if kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            obj["webhooks"] = [
                {**w, "clientConfig": _url_config(w["clientConfig"], base_url, ca_pem)}
                for w in obj.get("webhooks") or ()
                if _webhook_kept(w)
            ]
        elif kind == "CustomResourceDefinition":
            conversion = (obj.get("spec") or {}).get("conversion") or {}
            webhook = conversion.get("webhook")
            if conversion.get("strategy") == "Webhook" and webhook:
                webhook["clientConfig"] = _url_config(webhook["clientConfig"], base_url, ca_pem)
        elif kind == "Service":
            continue  # nothing routes to Service addresses here
        result.append(obj)
    return result


def configuration(webhook_port: int, health_port: int, cert_dir: Path) -> dict[str, Any]:
    """Kueue's Configuration (config.kueue.x-k8s.io/v1beta2) for a host process."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "manageJobsWithoutQueueName": False,
        "integrations": {"frameworks": ["batch/job"]},
        # The on-demand visibility API is an aggregated API server that would need a
        # Service; without it Kueue serves everything these tests read.
        "featureGates": {"VisibilityOnDemand": False},
        "clientConnection": {"qps": 50, "burst": 100},
    }


def queue_manifests(
    gpus: int, gpu_resource: str = "nvidia.com/gpu", cpu: str = "64", memory: str = "256Gi"
) -> list[dict[str, Any]]:
    """A ResourceFlavor, a ClusterQueue with ``gpus`` of quota (and room for CPU and memory,
    which Kueue also accounts), preempting lower priority within the queue, and the
    WorkloadPriorityClasses."""
    group = "kueue.x-k8s.io/v1beta2"
    objects: list[dict[str, Any]] = [
        {"apiVersion": group, "kind": "ResourceFlavor", "metadata": {"name": RESOURCE_FLAVOR}},
        {
            "apiVersion": group,
            "kind": "ClusterQueue",
            "metadata": {"name": CLUSTER_QUEUE},
            "spec": {
                "namespaceSelector": {},
                "queueingStrategy": "BestEffortFIFO",
                "preemption": {"withinClusterQueue": "LowerPriority"},
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu", "memory", gpu_resource],
                        "flavors": [
                            {
                                "name": RESOURCE_FLAVOR,
                                "resources": [
                                    {"name": "cpu", "nominalQuota": cpu},
                                    {"name": "memory", "nominalQuota": memory},
                                    {"name": gpu_resource, "nominalQuota": gpus},
                                ],
                            }
                        ],
                    }
                ],
            },
        },
    ]
    for name, value in PRIORITY_CLASSES.items():
        objects.append(
            {
                "apiVersion": group,
                "kind": "WorkloadPriorityClass",
                "metadata": {"name": name},
                "value": value,
                "description": f"recon-operator test priority {value}",
            }
        )
    return objects


def local_queue(namespace: str, name: str = LOCAL_QUEUE) -> dict[str, Any]:
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "LocalQueue",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterQueue": CLUSTER_QUEUE},
    }


def launch_argv(binary: Path, config: Path, etc_upper: Path, etc_work: Path) -> tuple[str, ...]:
    """Kueue's manager in a private mount namespace whose /etc carries the overlay with its
    metrics certificate (exec keeps one process, so its PID is the one recorded)."""
    mount = (
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={etc_upper},workdir={etc_work} /etc"
    )
    run = f"exec {shlex.quote(str(binary))} --config={shlex.quote(str(config))}"
    return ("unshare", "--mount", "--propagation", "private", "sh", "-c", f"{mount} && {run}")


@dataclass(frozen=True)
class KueueFiles:
    """Where Kueue's files live in the stack's state directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def webhook_certs(self) -> Path:
        return self.root / "webhook-certs"

    @property
    def etc_upper(self) -> Path:
        return self.root / "etc-overlay" / "upper"

    @property
    def etc_work(self) -> Path:
        return self.root / "etc-overlay" / "work"

    @property
    def kustomize_dir(self) -> Path:
        return self.root / "kustomize"


def _write_pair(directory: Path, pair: pki.KeyPair) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tls.crt").write_bytes(pair.cert_pem)
    key = directory / "tls.key"
    key.write_bytes(pair.key_pem)
    key.chmod(0o600)


class KueueInstall:
    """Kueue installed on one running stack, its manager started by `up` and stopped (by
    its PID) by `down`."""

    def __init__(self, state_dir: Path, kubectl: Path, server: str) -> None:
        self.layout = StateLayout(Path(state_dir))
        self.files = KueueFiles(self.layout.root / "kueue")
        self.kubectl_path = kubectl
        self.server = server

    def kubectl(self, *args: str, input: str | None = None) -> str:
        cmd = [str(self.kubectl_path), f"--kubeconfig={self.layout.admin_kubeconfig}", *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=180)
        if proc.returncode != 0:
            raise KueueError(f"`kubectl {' '.join(args[:3])}` failed: {proc.stderr.strip()}")
        return proc.stdout

    def apply(self, objects: Sequence[Mapping[str, Any]]) -> None:
        doc = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(doc)
        )

    def rendered(self) -> list[dict[str, Any]]:
        """Kueue's manifests from its module, through kubectl's kustomize."""
        self.files.kustomize_dir.mkdir(parents=True, exist_ok=True)
        (self.files.kustomize_dir / "kustomization.yaml").write_text(
            yaml.safe_dump(kustomization(kueue_module_dir(), self.files.kustomize_dir))
        )
        out = self.kubectl("kustomize", str(self.files.kustomize_dir))
        return [d for d in yaml.safe_load_all(out) if d]

    def up(self, log: Any = print) -> None:
        """Install the manifests, start the manager, wait until its webhooks answer."""
        binary = resolve_kueue(build=True, log=log)
        paths = pki.PkiPaths(self.layout.pki)
        ca = pki.KeyPair(paths.ca_cert.read_bytes(), paths.ca_key.read_bytes())
        webhook_port = ports.ephemeral_port()
        health_port = ports.ephemeral_port(avoid=[webhook_port])
        _write_pair(
            self.files.webhook_certs,
            pki.issue(ca, "kueue-webhook", ip_addresses=("127.0.0.1",), server=True),
        )
        metrics = self.files.etc_upper / METRICS_CERT_DIR
        _write_pair(
            metrics, pki.issue(ca, "kueue-metrics", ip_addresses=("127.0.0.1",), server=True)
        )
        self.files.etc_work.mkdir(parents=True, exist_ok=True)
        self.files.config.write_text(
            yaml.safe_dump(configuration(webhook_port, health_port, self.files.webhook_certs))
        )
        base_url = f"https://127.0.0.1:{webhook_port}"
        manifests = point_webhooks(self.rendered(), base_url, ca.cert_pem)
        self.apply(manifests)
        # Kueue's manager sets up its indexes at once: its kinds must be served first.
        crds = [
            f"crd/{o['metadata']['name']}"
            for o in manifests
            if o["kind"] == "CustomResourceDefinition"
        ]
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *crds)
        token = self.kubectl(
            "create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE, f"--duration={TOKEN_SECONDS}s"
        ).strip()
        kubeconfig.write(
            self.files.kubeconfig, kubeconfig.token_kubeconfig(self.server, paths.ca_cert, token)
        )
        self.down()
        env = {"KUBECONFIG": str(self.files.kubeconfig), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        spawn(
            launch_argv(binary, self.files.config, self.files.etc_upper, self.files.etc_work),
            self.layout.log(COMPONENT),
            self.layout.pidfile(COMPONENT),
            env=env,
            cwd=self.files.root,
        )
        self._wait_ready(health_port)
        log(f"Kueue {KUEUE_VERSION} running (webhooks at {base_url})")

    def _wait_ready(self, health_port: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            record = read_pidfile(self.layout.pidfile(COMPONENT))
            if record is None or not is_alive(record):
                raise KueueError(f"Kueue exited during start-up; see {self.layout.log(COMPONENT)}")
            # Kueue's readyz includes its webhook server having started.
            if probes.http_ok(f"http://127.0.0.1:{health_port}/readyz"):
                return
            time.sleep(0.2)
        raise KueueError(
            f"Kueue not ready within {READY_TIMEOUT:.0f}s; see {self.layout.log(COMPONENT)}"
        )

    def running(self) -> bool:
        record = read_pidfile(self.layout.pidfile(COMPONENT))
        return record is not None and is_alive(record)

    def remove_webhooks(self) -> None:
        """Without its manager, Kueue's webhooks (failurePolicy Fail) would refuse every Job;
        they go first."""
        for kind, name in WEBHOOK_CONFIGURATIONS.items():
            self.kubectl("delete", kind, name, "--ignore-not-found")

    def down(self) -> None:
        record = read_pidfile(self.layout.pidfile(COMPONENT))
        if record is not None:
            stop([record], 10.0)
        self.layout.pidfile(COMPONENT).unlink(missing_ok=True)
