"""`recon dev up/down/status/env` as a user meets them: idempotent, side by side, never half up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from recon_stack.components import COMPONENT_NAMES
from recon_stack.layout import StateLayout
from recon_stack.pki import ensure_pki
from recon_stack.processes import is_alive, read_pidfile
from recon_stack.stack import Stack

from tests.support.stack_handle import StackHandle

pytestmark = pytest.mark.stack


def recon_dev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recon_cli", "dev", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _processes_mentioning(path: Path) -> list[str]:
    """Live processes whose command line names ``path``: what a stack there left running."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(path) in cmdline and state not in ("Z", "X"):
            found.append(f"{proc.name}: {cmdline}")
    return found


def _pids(state_dir: Path) -> dict[str, int]:
    layout = StateLayout(state_dir)
    records = {p.stem: read_pidfile(p) for p in layout.run.glob("*.pid")}
    return {name: r.pid for name, r in records.items() if r is not None and is_alive(r)}


def test_up_on_a_running_stack_changes_nothing_and_prints_its_env(stack: StackHandle) -> None:
    before = _pids(stack.state_dir)
    up = recon_dev("up", "--state-dir", str(stack.state_dir))
    assert up.returncode == 0, up.stderr
    assert "already running" in up.stderr
    assert _pids(stack.state_dir) == before

    env = recon_dev("env", "--state-dir", str(stack.state_dir))
    assert env.returncode == 0
    assert up.stdout == env.stdout
    assert f"export KUBECONFIG={stack.kubeconfig}" in env.stdout.splitlines()
    assert f"export MINIO_ENDPOINT={stack.minio_endpoint}" in env.stdout.splitlines()

    # What the README tells a user to do: eval the lines, then use kubectl and helm.
    script = 'eval "$1"; command -v kubectl; helm version --short; kubectl get ns default'
    shell = subprocess.run(
        ["bash", "-c", script, "-", env.stdout], capture_output=True, text=True, timeout=60
    )
    assert shell.returncode == 0, shell.stderr
    lines = shell.stdout.splitlines()
    assert lines[0] == str(stack.state_dir / "bin" / "kubectl")
    assert lines[1].startswith("v3.")
    assert lines[2].split()[0] == "NAME" and lines[3].split()[:2] == ["default", "Active"]

    status = recon_dev("status", "--state-dir", str(stack.state_dir))
    assert status.returncode == 0
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:]}
    for name, pid in before.items():
        assert rows[name][1:3] == ["running", str(pid)]


def test_ports_in_use_are_replaced_and_down_leaves_nothing_running(
    stack: StackHandle, tmp_path: Path
) -> None:
    """A second stack side by side, told to prefer ports the first one holds."""
    taken = json.loads(StateLayout(stack.state_dir).ports_file.read_text())
    second = Stack(tmp_path / "second", start_node=False)
    second.layout.root.mkdir(parents=True)
    second.layout.ports_file.write_text(json.dumps(taken))
    # PID files as a reboot leaves them: their processes are long gone.
    second.layout.run.mkdir()
    for name in COMPONENT_NAMES:
        second.layout.pidfile(name).write_text("999999999 1\n")
    second.up()
    try:
        assert set(second.ports().values()).isdisjoint(taken.values())
        version = stack.kubectl("--kubeconfig", str(second.kubeconfig), "version", "-o", "json")
        assert json.loads(version.stdout)["serverVersion"]["gitVersion"].startswith("v1.")
        # The first stack is untouched.
        stack.kubectl("get", "namespace", "default")
    finally:
        records = [read_pidfile(p) for p in second.layout.run.glob("*.pid")]
        stopped = second.down()
    assert len(stopped) == 5
    assert records and not any(r is not None and is_alive(r) for r in records)
    assert _processes_mentioning(second.layout.root) == []
    assert not list(second.layout.run.glob("*.pid"))
    assert recon_dev("status", "--state-dir", str(second.layout.root)).returncode == 3
    env = recon_dev("env", "--state-dir", str(second.layout.root))
    assert env.returncode == 1 and "no stack is running" in env.stderr
    purge = recon_dev("down", "--purge", "--state-dir", str(second.layout.root))
    assert purge.returncode == 0 and not second.layout.root.exists()


def test_a_component_failing_to_start_is_named_and_nothing_is_left_running(
    tmp_path: Path,
) -> None:
    state = tmp_path / "broken"
    pki = state / "pki"
    first = Stack(state)
    # A serving certificate the API server cannot load: etcd and MinIO are already up
    # when kube-apiserver exits.
    ensure_pki(pki).cert("apiserver").write_text("not a certificate\n")

    result = recon_dev("up", "--state-dir", str(state), "--timeout", "60")
    assert result.returncode == 1
    assert "kube-apiserver exited during start-up" in result.stderr
    assert str(state / "logs" / "kube-apiserver.log") in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    # etcd and MinIO had been started, and were stopped again.
    assert (state / "logs" / "etcd.log").exists()
    assert (state / "logs" / "minio.log").exists()
    assert _processes_mentioning(state) == []
    assert not first.is_running()
