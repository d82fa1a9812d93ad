"""`recon operator` with the chart's RBAC and nothing else: the ServiceAccount, ClusterRoles
and bindings `helm template` renders for one watched namespace are applied, and the
operator process gets a kubeconfig holding only that ServiceAccount's token (from a
TokenRequest), as it would in its pod. No cluster-admin anywhere."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from recon_stack.kubeconfig import token_kubeconfig, write

from tests.support.operator_process import REPO, OperatorProcess, prepare_namespace

CHART = REPO / "charts" / "recon-operator"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
TOKEN_DURATION = "4h"


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
        token = self.stack.kubectl(
            "create",
            "token",
            self.service_account,
            "-n",
            self.namespace,
            f"--duration={TOKEN_DURATION}",
        ).stdout.strip()
        return write(path, token_kubeconfig(self.stack.server, Path(self.stack.ca_cert), token))

    def remove(self) -> None:
        """The cluster-scoped objects (the namespaced ones go with the namespace)."""
        for obj in self.objects:
            if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                self.stack.kubectl(
                    "delete", obj["kind"], obj["metadata"]["name"], "--ignore-not-found"
                )


def chart_operator(
    stack: Any, namespace: str, log_dir: Path, env: dict[str, str] | None = None
) -> tuple[OperatorProcess, ChartRbac]:
    """An operator for ``namespace`` that holds only the chart's permissions (not started)."""
    rbac = ChartRbac(stack, namespace)
    rbac.apply()
    config = rbac.kubeconfig(log_dir / "operator.kubeconfig")
    process = OperatorProcess(stack, namespace, log_dir, {**(env or {}), "KUBECONFIG": str(config)})
    return process, rbac


@contextmanager
def running_chart_operator(
    stack: Any, base: str, log_dir: Path, env: dict[str, str] | None = None
) -> Iterator[OperatorProcess]:
    """running_operator with the chart's RBAC only: a fresh namespace, the operator watching
    it; afterwards its ReconJobs are deleted while the operator still runs (so the
    finalizer is honoured), then the operator, the chart's cluster objects and the
    namespace go."""
    ns = prepare_namespace(stack, base)
    op, rbac = chart_operator(stack, ns, log_dir, env)
    op.start()
    try:
        yield op
    finally:
        stack.kubectl("delete", "reconjobs", "--all", "-n", ns, "--timeout=60s", check=False)
        op.stop()
        rbac.remove()
        stack.kubectl("delete", "namespace", ns, "--wait=false", check=False)
