"""The process node runs real pods: exit codes, env, RBAC, start failures, deletion."""

from __future__ import annotations

import json
import textwrap
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from recon_stack.layout import StateLayout
from recon_stack.node.launch import PodDirs

from tests.support.stack_handle import StackHandle, wait_for

pytestmark = pytest.mark.stack


def pod(
    name: str,
    code: str,
    *,
    env: list[dict[str, Any]] | None = None,
    service_account: str | None = None,
    grace: int | None = None,
    image: str = "python:3.12",
    command: list[str] | None = None,
    args: list[str] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    mounts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "command": ["python", "-c", textwrap.dedent(code)] if command is None else command,
        "env": env or [],
        "volumeMounts": mounts or [],
    }
    if args:
        container["args"] = args
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": volumes or [],
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def apply(stack: StackHandle, namespace: str, *objects: dict[str, Any]) -> None:
    manifest = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    stack.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def get_pod(stack: StackHandle, namespace: str, name: str) -> dict[str, Any] | None:
    result = stack.kubectl("get", "pod", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def wait_finished(stack: StackHandle, namespace: str, name: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        p = get_pod(stack, namespace, name)
        return p if p and p["status"].get("phase") in ("Succeeded", "Failed") else None

    result: dict[str, Any] = wait_for(finished, timeout=60, what=f"pod {name} to finish")
    return result


def terminated_state(p: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = p["status"]["containerStatuses"][0]["state"]["terminated"]
    return state


def log_of(stack: StackHandle, p: dict[str, Any]) -> str:
    dirs = PodDirs.for_pod(StateLayout(stack.state_dir).node_state / "pods", p)
    return dirs.log("main").read_text()


def test_pods_run_as_processes_and_report_exit_codes_like_a_kubelet(
    stack: StackHandle, namespace: str
) -> None:
    apply(
        stack,
        namespace,
        pod("ok", "print('hello from a pod')"),
        pod("bad-input", "import sys; print('bad input'); sys.exit(3)"),
    )
    ok = wait_finished(stack, namespace, "ok")
    bad = wait_finished(stack, namespace, "bad-input")

    assert ok["status"]["phase"] == "Succeeded"
    assert terminated_state(ok)["exitCode"] == 0
    assert terminated_state(ok)["reason"] == "Completed"
    assert ok["spec"]["nodeName"] == stack.node_name
    assert ok["status"]["podIP"] == "127.0.0.1"
    assert log_of(stack, ok) == "hello from a pod\n"
    # `kubectl logs` reaches the same output through the API server.
    assert stack.kubectl("logs", "ok", "-n", namespace).stdout == "hello from a pod\n"

    assert bad["status"]["phase"] == "Failed"
    assert terminated_state(bad)["exitCode"] == 3
    assert terminated_state(bad)["reason"] == "Error"
    conditions = {c["type"]: c for c in bad["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["PodScheduled"]["status"] == "True"
    assert log_of(stack, bad) == "bad input\n"


def test_env_from_secrets_field_refs_and_empty_dir_paths_reaches_the_process(
    stack: StackHandle, namespace: str
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"accessKey": "AK-123"},
    }
    key_ref = {"secretKeyRef": {"name": "creds", "key": "accessKey"}}
    env: list[dict[str, Any]] = [
        {"name": "ACCESS_KEY", "valueFrom": key_ref},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "TMPDIR", "value": "/tmp"},
    ]  # fmt: skip
    code = """
        import json, os, tempfile
        keys = ["ACCESS_KEY", "POD_NAME", "POD_NAMESPACE", "NODE", "TMPDIR"]
        print(json.dumps({k: os.environ[k] for k in keys}))
        print(tempfile.gettempdir())
    """
    apply(
        stack,
        namespace,
        secret,
        pod(
            "env-reader",
            code,
            env=env,
            volumes=[{"name": "scratch", "emptyDir": {}}],
            mounts=[{"name": "scratch", "mountPath": "/tmp"}],
        ),
    )
    done = wait_finished(stack, namespace, "env-reader")
    assert done["status"]["phase"] == "Succeeded", log_of(stack, done)
    seen_line, tempdir = log_of(stack, done).splitlines()
    seen = json.loads(seen_line)
    scratch = PodDirs.for_pod(StateLayout(stack.state_dir).node_state / "pods", done).volumes
    assert seen == {
        "ACCESS_KEY": "AK-123",
        "POD_NAME": "env-reader",
        "POD_NAMESPACE": namespace,
        "NODE": stack.node_name,
        "TMPDIR": str(scratch / "scratch"),
    }
    assert tempdir == str(scratch / "scratch")


ACCESS_CHECK = """
    from kubernetes import client, config
    config.load_kube_config()
    api = client.CoreV1Api()
    for what, call in [
        ("configmap", lambda: api.read_namespaced_config_map("settings", "{ns}")),
        ("secrets", lambda: api.list_namespaced_secret("{ns}")),
    ]:
        try:
            call()
            print(what, "allowed")
        except client.ApiException as e:
            print(what, e.status, "system:serviceaccount:{ns}:reader" in str(e.body))
"""


def test_a_pod_has_exactly_the_rbac_rights_of_its_service_account(
    stack: StackHandle, namespace: str
) -> None:
    ns = ("-n", namespace)
    stack.kubectl("create", "serviceaccount", "reader", *ns)
    stack.kubectl("create", "configmap", "settings", "--from-literal=a=1", *ns)
    stack.kubectl("create", "role", "read-cm", "--verb=get", "--resource=configmaps", *ns)
    stack.kubectl(
        "create", "rolebinding", "reader-reads", "--role=read-cm",
        f"--serviceaccount={namespace}:reader", *ns,
    )  # fmt: skip
    code = ACCESS_CHECK.replace("{ns}", namespace)
    apply(stack, namespace, pod("rbac", code, service_account="reader"))
    done = wait_finished(stack, namespace, "rbac")
    assert done["status"]["phase"] == "Succeeded", log_of(stack, done)
    assert log_of(stack, done).splitlines() == ["configmap allowed", "secrets 403 True"]


def test_a_command_that_cannot_start_fails_the_pod_with_a_clear_message(
    stack: StackHandle, namespace: str
) -> None:
    apply(stack, namespace, pod("missing", "", command=["no-such-command-anywhere", "--x"]))
    done = wait_finished(stack, namespace, "missing")
    assert done["status"]["phase"] == "Failed"
    state = terminated_state(done)
    assert state["reason"] == "StartError"
    assert 'exec: "no-such-command-anywhere": executable file not found' in state["message"]
    # The node is still serving pods.
    apply(stack, namespace, pod("after", "print('still here')"))
    assert wait_finished(stack, namespace, "after")["status"]["phase"] == "Succeeded"


def test_deleting_a_pod_sends_sigterm_then_sigkill_after_the_grace_period(
    stack: StackHandle, namespace: str
) -> None:
    handles = """
        import signal, sys, time
        def on_term(*_):
            print("got SIGTERM", flush=True)
            sys.exit(143)
        signal.signal(signal.SIGTERM, on_term)
        print("running", flush=True)
        time.sleep(600)
    """
    ignores = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("running", flush=True)
        time.sleep(600)
    """
    apply(stack, namespace, pod("polite", handles, grace=30), pod("stubborn", ignores, grace=2))

    def started(name: str) -> dict[str, Any] | None:
        p = get_pod(stack, namespace, name)
        if p is None or p["status"].get("phase") != "Running":
            return None
        return p if "running" in log_of(stack, p) else None

    running: dict[str, dict[str, Any]] = {}
    for name in ("polite", "stubborn"):
        running[name] = wait_for(partial(started, name), timeout=60, what=f"{name} running")
    # Both deletions return once the node has stopped the process and removed the pod.
    stack.kubectl("delete", "pod", "polite", "stubborn", "-n", namespace, "--timeout=20s")
    assert get_pod(stack, namespace, "polite") is None
    assert get_pod(stack, namespace, "stubborn") is None
    assert log_of(stack, running["polite"]).splitlines() == ["running", "got SIGTERM"]
    assert log_of(stack, running["stubborn"]).splitlines() == ["running"]


def test_an_image_map_lets_a_stand_in_image_run_a_local_script(
    stack: StackHandle, namespace: str, tmp_path: Path
) -> None:
    script = tmp_path / "standin.py"
    script.write_text("import sys; print('stand-in', *sys.argv[1:])\n")
    image_map = StateLayout(stack.state_dir).node_state / "image-map.yaml"
    before = image_map.read_text() if image_map.exists() else None
    entries = (yaml.safe_load(before) if before else None) or {}
    entries["example.org/recon-standin"] = ["python", str(script)]
    image_map.parent.mkdir(parents=True, exist_ok=True)
    image_map.write_text(yaml.safe_dump(entries))
    try:
        standin = pod(
            "standin", "", image="example.org/recon-standin:v1", command=[], args=["--a", "b"]
        )
        apply(stack, namespace, standin)
        done = wait_finished(stack, namespace, "standin")
    finally:
        if before is None:
            image_map.unlink()
        else:
            image_map.write_text(before)
    assert done["status"]["phase"] == "Succeeded", log_of(stack, done)
    assert log_of(stack, done) == "stand-in --a b\n"
