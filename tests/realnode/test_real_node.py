"""What only a real kubelet, containerd and runc make meaningful: the images' user and
read-only root, the kernel's OOM kill, the projected token and in-cluster config through
the `kubernetes` Service, storage through a Service, and a machine left as it was found."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from recon_operator.jobspec import RUNNER_UID, SCRATCH_VOLUME
from recon_stack.components import NODE_NAME
from recon_stack.image_build import OPERATOR, RUNNER, ensure_image
from recon_stack.processes import read_pidfile
from recon_stack.realnode import addresses, host
from recon_stack.realnode.node import COMPONENTS
from recon_stack.stack import Stack

from tests.support.stack_handle import StackHandle

POD_TIMEOUT = "180s"
# The session's first test also starts the stack, whose images may need a rebuild first
# (the runner's takes about 12 minutes on a 2-core machine).
pytestmark = pytest.mark.timeout(2400)


def pod(name: str, image: str, script: str, memory: str = "512Mi", **spec: Any) -> str:
    """A pod as the operator's Jobs run the runner: numeric non-root user, read-only root,
    the scratch emptyDir, no privilege escalation, the runtime's seccomp profile."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUNNER_UID,
                "runAsGroup": RUNNER_UID,
                "fsGroup": RUNNER_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["python", "-c", script],
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {"limits": {"memory": memory, "cpu": "1"}},
                    "volumeMounts": [{"name": SCRATCH_VOLUME, "mountPath": "/scratch"}],
                }
            ],
            "volumes": [{"name": SCRATCH_VOLUME, "emptyDir": {}}],
            **spec,
        },
    }
    return json.dumps(manifest)


def run_pod(stack: StackHandle, namespace: str, manifest: str, phase: str = "Succeeded") -> Any:
    name = json.loads(manifest)["metadata"]["name"]
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    stack.kubectl(
        "wait",
        "-n",
        namespace,
        f"--for=jsonpath={{.status.phase}}={phase}",
        f"pod/{name}",
        f"--timeout={POD_TIMEOUT}",
        timeout=240,
    )
    return json.loads(stack.kubectl("get", "-n", namespace, "pod", name, "-o", "json").stdout)


def logs(stack: StackHandle, namespace: str, name: str) -> str:
    return stack.kubectl("logs", "-n", namespace, name).stdout


def test_the_node_is_ready_untainted_with_its_gpus_counted(real_stack: StackHandle) -> None:
    node = json.loads(real_stack.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert not node["spec"].get("taints")
    assert node["status"]["capacity"]["nvidia.com/gpu"] == "2"
    internal = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
    assert internal == [addresses.NODE_IP]


def test_runner_image_runs_as_65532_on_a_read_only_root_writing_only_to_scratch(
    real_stack: StackHandle, namespace: str
) -> None:
    image = ensure_image(RUNNER).ref
    script = (
        "import os, sys\n"
        "print('uid', os.getuid(), os.getgid())\n"
        "open('/scratch/out', 'w').write('ok')\n"
        "print('scratch', open('/scratch/out').read())\n"
        "for path in ('/opt/venv/x', '/tmp/x', '/x'):\n"
        "    try:\n"
        "        open(path, 'w')\n"
        "        print('wrote', path)\n"
        "    except OSError as e:\n"
        "        print('refused', path, e.errno)\n"
        "import torch, recon_runner\n"
        "print('torch', torch.__version__)\n"
    )
    run_pod(real_stack, namespace, pod("runner-fs", image, script))
    out = logs(real_stack, namespace, "runner-fs")
    assert f"uid {RUNNER_UID} {RUNNER_UID}" in out
    assert "scratch ok" in out
    # EROFS (30) everywhere but the scratch volume.
    for path in ("/opt/venv/x", "/tmp/x", "/x"):
        assert f"refused {path} 30" in out, out
    assert "wrote" not in out
    assert "torch 2." in out


def test_a_pod_over_its_memory_limit_is_oom_killed_by_the_kernel(
    real_stack: StackHandle, namespace: str
) -> None:
    image = ensure_image(OPERATOR).ref
    script = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 2**20))\n"
    status = run_pod(
        real_stack, namespace, pod("hungry", image, script, memory="64Mi"), phase="Failed"
    )
    terminated = status["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled"
    assert terminated["exitCode"] == 137


def test_the_projected_token_reaches_the_api_through_the_kubernetes_service(
    real_stack: StackHandle, namespace: str
) -> None:
    """In-cluster config as client libraries read it: the Service's host and port from the
    environment, the projected token and CA. The pod's ServiceAccount may read one
    ConfigMap and is refused (403) any other."""
    k = real_stack.kubectl
    k("create", "serviceaccount", "reader", "-n", namespace)
    k("create", "configmap", "mine", "-n", namespace, "--from-literal=a=1")
    k("create", "configmap", "other", "-n", namespace, "--from-literal=a=2")
    k(
        "create",
        "role",
        "read-mine",
        "-n",
        namespace,
        "--verb=get",
        "--resource=configmaps",
        "--resource-name=mine",
    )
    k(
        "create",
        "rolebinding",
        "read-mine",
        "-n",
        namespace,
        "--role=read-mine",
        f"--serviceaccount={namespace}:reader",
    )
    script = (
        "import os, ssl, urllib.request, urllib.error\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount/'\n"
        "token = open(sa + 'token').read()\n"
        "ns = open(sa + 'namespace').read()\n"
        "ctx = ssl.create_default_context(cafile=sa + 'ca.crt')\n"
        "host = os.environ['KUBERNETES_SERVICE_HOST']\n"
        "port = os.environ['KUBERNETES_SERVICE_PORT']\n"
        "print('service', host, port)\n"
        "for name in ('mine', 'other'):\n"
        "    url = f'https://{host}:{port}/api/v1/namespaces/{ns}/configmaps/{name}'\n"
        "    req = urllib.request.Request(url, headers={'Authorization': 'Bearer ' + token})\n"
        "    try:\n"
        "        print(name, urllib.request.urlopen(req, context=ctx).status)\n"
        "    except urllib.error.HTTPError as e:\n"
        "        print(name, e.code)\n"
        f"minio = 'http://{addresses.MINIO_SERVICE_IP}:{addresses.MINIO_SERVICE_PORT}'\n"
        "print('minio', urllib.request.urlopen(minio + '/minio/health/live').status)\n"
    )
    manifest = pod("in-cluster", ensure_image(OPERATOR).ref, script, serviceAccountName="reader")
    run_pod(real_stack, namespace, manifest)
    out = logs(real_stack, namespace, "in-cluster")
    assert f"service {addresses.KUBERNETES_SERVICE_IP} 443" in out
    assert "mine 200" in out
    assert "other 403" in out
    assert "minio 200" in out


def test_down_after_a_crash_leaves_the_machine_as_it_was(tmp_path: Path) -> None:
    """Every process killed at once (a crash), then `down`: no namespace, cgroup, mount,
    shim or changed sysctl remains."""
    before = host.read_sysctls()
    stack = Stack(tmp_path / "crashed", node="real", images=("operator",), timeout=300)
    stack.up()
    try:
        name = addresses.namespace_name(stack.layout.root)
        assert host.netns_path(name).exists()
        for component in COMPONENTS:
            record = read_pidfile(stack.layout.pidfile(component))
            assert record is not None
            os.kill(record.pid, signal.SIGKILL)
    finally:
        stack.down()
    assert not host.netns_path(name).exists()
    assert not [h for h in host.cgroup_hierarchies() if (h / name).exists()]
    assert str(stack.layout.root) not in Path("/proc/self/mountinfo").read_text()
    sock = str(stack.layout.root / "realnode" / "containerd.sock")
    assert host.pids_with_argument(sock) == []
    assert host.read_sysctls() == before
