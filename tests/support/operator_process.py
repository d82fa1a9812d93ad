"""`recon operator` as a real subprocess against the stack, and what its tests share:
a namespace with the storage Secret, the stand-in runner mapped on the process node, and
helpers to read ReconJobs, Events and pods back through kubectl.

The operator runs either as the stack's admin or with the chart's RBAC and nothing else
(`ChartRbac`): the ServiceAccount, ClusterRoles and bindings `helm template` renders for
one watched namespace are applied, and the process gets a kubeconfig holding only that
ServiceAccount's token (from a TokenRequest), as it would in its pod."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from recon_api.constants import STORAGE_CREDENTIALS_LABEL

from tests.support.runner_access import apply_crd

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "recon-operator"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
TOKEN_DURATION = "4h"
STANDIN_IMAGE = "ghcr.io/recon-operator/recon-standin:test"
STANDIN = Path(__file__).with_name("standin_runner.py")
BUCKET = "scans"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def map_standin_image(stack: Any) -> None:
    """Tell the process node which local command the stand-in image runs (absolute paths,
    so it does not matter where the node resolves them)."""
    node_dir = Path(stack.state_dir) / "node"
    node_dir.mkdir(parents=True, exist_ok=True)
    table = {STANDIN_IMAGE.split(":")[0]: [sys.executable, str(STANDIN)]}
    target = node_dir / "image-map.yaml"
    existing = yaml.safe_load(target.read_text()) if target.exists() else None
    if existing != table:
        tmp = target.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(table))
        tmp.replace(target)


def create_credentials_secret(
    stack: Any,
    namespace: str,
    name: str,
    secret_key: str | None = None,
    *,
    access_key: str | None = None,
    labelled: bool = True,
) -> None:
    """A storage credentials Secret (the stack's MinIO keys unless given; no secretKey when
    `secret_key` is ""), created in one request with the opt-in label unless told not to."""
    keys = {"accessKey": stack.minio_access_key if access_key is None else access_key}
    if secret_key != "":
        keys["secretKey"] = stack.minio_secret_key if secret_key is None else secret_key
    labels = {STORAGE_CREDENTIALS_LABEL: "true"} if labelled else {}
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "stringData": keys,
    }
    stack.kubectl("create", "-f", "-", input=json.dumps(manifest))


def prepare_namespace(stack: Any, base: str) -> str:
    """A fresh namespace (a suffix keeps reruns clear of one still terminating) with the
    default storage credentials Secret."""
    namespace = f"{base}-{secrets.token_hex(3)}"
    apply_crd(stack)
    map_standin_image(stack)
    stack.kubectl("create", "namespace", namespace)
    create_credentials_secret(stack, namespace, "minio-credentials")
    return namespace


class ChartRbac:
    """The chart's RBAC objects for one release watching one namespace."""

    def __init__(self, stack: Any, namespace: str) -> None:
        self.stack = stack
        self.namespace = namespace
        self.release = f"faults-{secrets.token_hex(3)}"
        self.objects = self._render()

    def _render(self) -> list[dict[str, Any]]:
        rendered = self.stack.helm(
            "template",
            self.release,
            str(CHART),
            "--namespace",
            self.namespace,
            "--set",
            f"watchNamespaces={{{self.namespace}}}",
            "--set",
            "peering.enabled=false",
        ).stdout
        docs = [d for d in yaml.safe_load_all(rendered) if d]
        return [d for d in docs if d["kind"] in RBAC_KINDS]

    @property
    def service_account(self) -> str:
        (sa,) = [o for o in self.objects if o["kind"] == "ServiceAccount"]
        return str(sa["metadata"]["name"])

    def apply(self) -> None:
        doc = {"apiVersion": "v1", "kind": "List", "items": self.objects}
        self.stack.kubectl("apply", "-f", "-", input=json.dumps(doc))

    def kubeconfig(self, path: Path) -> Path:
        return Path(
            self.stack.service_account_kubeconfig(
                self.service_account, self.namespace, path, duration=TOKEN_DURATION
            )
        )

    def remove(self) -> None:
        """The cluster-scoped objects (the namespaced ones go with the namespace)."""
        for obj in self.objects:
            if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                self.stack.kubectl(
                    "delete", obj["kind"], obj["metadata"]["name"], "--ignore-not-found"
                )


class OperatorProcess:
    """One `recon operator` process; stopped (or killed) by its PID only."""

    def __init__(
        self, stack: Any, namespace: str, log_dir: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.stack = stack
        self.namespace = namespace
        self.log_dir = log_dir
        self.extra_env = dict(env or {})
        self.rbac: ChartRbac | None = None  # set by under_chart_rbac
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @classmethod
    def under_chart_rbac(
        cls, stack: Any, namespace: str, log_dir: Path, env: Mapping[str, str] | None = None
    ) -> OperatorProcess:
        """An operator for ``namespace`` that holds only the chart's permissions (not
        started): the chart's RBAC is applied, and its kubeconfig is
        ``log_dir/operator.kubeconfig``."""
        rbac = ChartRbac(stack, namespace)
        rbac.apply()
        config = rbac.kubeconfig(log_dir / "operator.kubeconfig")
        process = cls(stack, namespace, log_dir, {**(env or {}), "KUBECONFIG": str(config)})
        process.rbac = rbac
        return process

    def env(self) -> dict[str, str]:
        env = self.stack.env()
        env.update(
            RECON_NAMESPACES=self.namespace,
            RECON_STORAGE_ENDPOINT=self.stack.minio_endpoint,
            RECON_STORAGE_SECURE="false",
            RECON_RUNNER_IMAGE=STANDIN_IMAGE,
            RECON_MAX_RUNNING_JOBS="4",
            RECON_LOG_LEVEL="INFO",
        )
        env.update(self.extra_env)
        return env

    def start(self, *, wait_ready: bool = True) -> OperatorProcess:
        """Start it and, unless it is to wait as a standby, wait until it admits jobs."""
        self.starts += 1
        log = (self.log_dir / f"operator-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "recon_cli",
                "operator",
                "--standalone",
                f"--metrics-port={self.metrics_port}",
                f"--liveness=http://127.0.0.1:{self.health_port}/healthz",
            ],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        log.close()
        if wait_ready:
            self.wait_ready()
        return self

    def health(self) -> dict[str, Any] | None:
        """Its health endpoint's answer, None while nothing answers."""
        try:
            url = f"http://127.0.0.1:{self.health_port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as r:
                result: dict[str, Any] = json.loads(r.read())
                return result
        except OSError:
            return None

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
                ) as r:
                    if r.status == 200 and json.loads(r.read()).get("admission"):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"operator not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-4000:] for p in sorted(self.log_dir.glob("operator-*"))
        )

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return str(r.read().decode())

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as a crashed or evicted operator."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def reconjob_manifest(name: str, prefix: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "input": {"bucket": BUCKET, "prefix": prefix},
        "resources": {"gpus": 1, "cpu": "100m", "memory": "64Mi"},
    }
    body.update(spec)
    return {
        "apiVersion": "recon.dev/v1alpha1",
        "kind": "ReconJob",
        "metadata": {"name": name},
        "spec": body,
    }


def apply(stack: Any, namespace: str, *manifests: Mapping[str, Any]) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": list(manifests)}
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc))


def get(stack: Any, namespace: str, name: str) -> dict[str, Any]:
    out = stack.kubectl("get", "reconjob", name, "-n", namespace, "-o", "json").stdout
    result: dict[str, Any] = json.loads(out)
    return result


def status(stack: Any, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = get(stack, namespace, name).get("status") or {}
    return result


def condition(stack: Any, namespace: str, name: str, type_: str) -> dict[str, Any] | None:
    for cond in status(stack, namespace, name).get("conditions") or ():
        if cond["type"] == type_:
            return dict(cond)
    return None


def events(stack: Any, namespace: str, name: str) -> list[dict[str, Any]]:
    out = stack.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.kind=ReconJob,involvedObject.name={name}",
        "-o",
        "json",
    ).stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    # Creation order: timestamps have one-second resolution, resourceVersions do not.
    return sorted(items, key=lambda e: int(e["metadata"]["resourceVersion"]))


def pods(stack: Any, namespace: str, selector: str) -> list[dict[str, Any]]:
    out = stack.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def exit_codes(stack: Any, namespace: str, name: str) -> list[int]:
    """The exit codes of the ReconJob's runner containers that have ended, sorted: one
    per attempt whose pod is still there."""
    uid = get(stack, namespace, name)["metadata"]["uid"]
    codes = []
    for pod in pods(stack, namespace, f"recon.dev/reconjob-uid={uid}"):
        for cs in pod["status"].get("containerStatuses") or ():
            terminated = (cs.get("state") or {}).get("terminated")
            if terminated:
                codes.append(int(terminated["exitCode"]))
    return sorted(codes)


def jobs(stack: Any, namespace: str) -> list[dict[str, Any]]:
    out = stack.kubectl("get", "jobs", "-n", namespace, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


@contextlib.contextmanager
def running_operator(
    stack: Any,
    base: str,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    *,
    chart_rbac: bool = False,
) -> Iterator[OperatorProcess]:
    """A fresh namespace with an operator watching it (as the stack's admin, or with the
    chart's RBAC only when ``chart_rbac``); afterwards its ReconJobs are deleted (while the
    operator still runs, so its finalizer is honoured), then the operator, the chart's
    cluster objects and the namespace go."""
    ns = prepare_namespace(stack, base)
    make = OperatorProcess.under_chart_rbac if chart_rbac else OperatorProcess
    op = make(stack, ns, log_dir, env).start()
    try:
        yield op
    finally:
        stack.kubectl("delete", "reconjobs", "--all", "-n", ns, "--timeout=60s", check=False)
        op.stop()
        if op.rbac is not None:
            op.rbac.remove()
        stack.kubectl("delete", "namespace", ns, "--wait=false", check=False)
