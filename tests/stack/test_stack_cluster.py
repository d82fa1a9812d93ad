"""The local cluster is a real one: RBAC, ServiceAccount tokens, CRDs with subresources."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.stack_handle import CommandError, StackHandle, wait_for

pytestmark = pytest.mark.stack


def test_service_account_has_exactly_the_rights_its_role_grants(
    stack: StackHandle, namespace: str, tmp_path: Path
) -> None:
    ns = ("-n", namespace)
    stack.kubectl("create", "serviceaccount", "reader", *ns)
    stack.kubectl("create", "configmap", "settings", "--from-literal=a=1", *ns)
    as_reader = stack.service_account_kubeconfig(
        "reader", namespace, tmp_path / "reader.kubeconfig", default_namespace=True
    )

    def as_reader_get(*what: str) -> subprocess.CompletedProcess[str]:
        return stack.kubectl(
            "--kubeconfig", str(as_reader), "get", *what, "-o", "name", check=False
        )

    denied = as_reader_get("configmap", "settings")
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert f"system:serviceaccount:{namespace}:reader" in denied.stderr

    stack.kubectl("create", "role", "read-cm", "--verb=get,list", "--resource=configmaps", *ns)
    stack.kubectl(
        "create", "rolebinding", "reader-reads", "--role=read-cm",
        f"--serviceaccount={namespace}:reader", *ns,
    )  # fmt: skip
    allowed = wait_for(
        lambda: (r := as_reader_get("configmap", "settings")).returncode == 0 and r,
        timeout=20,
        what="the RoleBinding to take effect",
    )
    assert allowed.stdout.strip() == "configmap/settings"
    # Nothing beyond the Role.
    secrets = as_reader_get("secrets")
    assert secrets.returncode != 0 and "Forbidden" in secrets.stderr


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.stacktest.recon.dev
spec:
  group: stacktest.recon.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wdg]}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      additionalPrinterColumns:
        - {name: Phase, type: string, jsonPath: .status.phase}
        - {name: Size, type: integer, jsonPath: .spec.size}
        - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties: {size: {type: integer, minimum: 1}}
            status:
              type: object
              properties: {phase: {type: string}}
"""


def test_crd_serves_objects_with_status_subresource_and_printer_columns(
    stack: StackHandle, namespace: str
) -> None:
    ns = ("-n", namespace)
    stack.kubectl("apply", "-f", "-", input=CRD)
    stack.kubectl("wait", "--for=condition=Established", "crd/widgets.stacktest.recon.dev")
    widget = "apiVersion: stacktest.recon.dev/v1\nkind: Widget\nmetadata: {name: w1}\n"
    stack.kubectl("apply", "-f", "-", *ns, input=widget + "spec: {size: 3}\nstatus: {phase: X}\n")
    # With a status subresource the main resource drops status writes ...
    obj = json.loads(stack.kubectl("get", "wdg", "w1", "-o", "json", *ns).stdout)
    assert "phase" not in obj.get("status", {})
    # ... and the status endpoint takes them.
    status = json.dumps({"status": {"phase": "Ready"}})
    stack.kubectl(
        "patch", "widget", "w1", "--subresource=status", "--type=merge", "-p", status, *ns
    )
    # The schema is enforced.
    with pytest.raises(CommandError, match="should be greater than or equal to 1"):
        stack.kubectl("patch", "widget", "w1", "--type=merge", "-p", '{"spec": {"size": 0}}', *ns)
    table = stack.kubectl("get", "widgets", *ns).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "SIZE", "AGE"]
    assert table[1].split()[:3] == ["w1", "Ready", "3"]


def test_node_is_registered_with_its_gpus(stack: StackHandle) -> None:
    node = json.loads(stack.kubectl("get", "node", stack.node_name, "-o", "json").stdout)
    assert node["status"]["capacity"]["nvidia.com/gpu"] == "2"
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
