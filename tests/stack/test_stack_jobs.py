"""Jobs on the local stack: Job controller, scheduler, process node and status all take part."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.stack_handle import StackHandle, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture
def namespace(stack: StackHandle, namespace: str) -> str:
    """The throwaway namespace, once it has the default ServiceAccount pods need (the
    controller-manager makes it)."""
    wait_for(
        lambda: (
            stack.kubectl(
                "get", "serviceaccount", "default", "-n", namespace, check=False
            ).returncode
            == 0
        ),
        timeout=30,
        what="the default ServiceAccount",
    )
    return namespace


def _job(name: str, script: str, grace: int = 30) -> str:
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": grace,
                    "containers": [
                        {
                            "name": "main",
                            "image": "python:3.12-slim",
                            "command": ["python", "-c", textwrap.dedent(script)],
                        }
                    ],
                }
            },
        },
    }
    return yaml.safe_dump(job)


def _get(stack: StackHandle, namespace: str, *what: str) -> Any:
    return json.loads(stack.kubectl("get", *what, "-n", namespace, "-o", "json").stdout)


def test_job_whose_pod_runs_a_python_command_completes(stack: StackHandle, namespace: str) -> None:
    script = "import sys; print('hello from the pod'); sys.exit(0)"
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=_job("hello", script))
    stack.kubectl("wait", "--for=condition=Complete", "job/hello", "-n", namespace, "--timeout=90s")
    job = _get(stack, namespace, "job", "hello")
    assert job["status"]["succeeded"] == 1
    (pod,) = _get(stack, namespace, "pods", "-l", "job-name=hello")["items"]
    assert pod["spec"]["nodeName"] == stack.node_name
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0


def test_deleting_a_running_job_sends_sigterm_and_removes_its_pod(
    stack: StackHandle, namespace: str, tmp_path: Path
) -> None:
    started, stopped = tmp_path / "started", tmp_path / "stopped"
    grace = 20
    script = f"""
        import os, signal, sys, time
        def on_term(signum, frame):
            open({str(stopped)!r}, "w").write(signal.Signals(signum).name)
            sys.exit(143)
        signal.signal(signal.SIGTERM, on_term)
        open({str(started)!r}, "w").write(str(os.getpid()))
        time.sleep(600)
    """
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=_job("sleeper", script, grace))
    wait_for(lambda: started.exists() and started.read_text(), timeout=60, what="the pod to run")
    pid = int(started.read_text())

    deleted_at = time.monotonic()
    stack.kubectl("delete", "job", "sleeper", "-n", namespace, "--wait=false")
    wait_for(
        lambda: not _get(stack, namespace, "pods", "-l", "job-name=sleeper")["items"],
        timeout=grace,
        what="the pod to be gone",
    )
    assert time.monotonic() - deleted_at < grace
    assert stopped.read_text() == "SIGTERM"
    assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_pod_asking_for_more_gpus_than_the_node_has_stays_pending(
    stack: StackHandle, namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "greedy"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "python:3.12-slim",
                    "command": ["python", "-c", "print('should never run')"],
                    "resources": {"limits": {"nvidia.com/gpu": 3}},
                }
            ],
        },
    }
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(pod))

    def unschedulable() -> dict[str, Any] | None:
        status = _get(stack, namespace, "pod", "greedy")["status"]
        for cond in status.get("conditions", []):
            if cond["type"] == "PodScheduled" and cond["status"] == "False":
                return dict(cond)
        return None

    cond = wait_for(unschedulable, timeout=60, what="the scheduler's verdict")
    assert cond["reason"] == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in cond["message"]
    node = json.loads(stack.kubectl("get", "node", stack.node_name, "-o", "json").stdout)
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "2"
    pod_now = _get(stack, namespace, "pod", "greedy")
    assert pod_now["status"]["phase"] == "Pending"
    assert not pod_now["spec"].get("nodeName")
