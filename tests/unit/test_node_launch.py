"""What a pod's container runs: argv, a container-like env, and where it runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recon_stack.node.images import image_table
from recon_stack.node.launch import LaunchSpec, PodDirs, launch_spec

VENV_BIN = "/opt/venv/bin"
HOST_ENV = {
    "PATH": "/usr/bin:/opt/venv/bin:/bin",
    "HOME": "/home/dev",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "CUDA_VISIBLE_DEVICES": "0",
    "KUBECONFIG": "/home/dev/.kube/admin",
    "MINIO_SECRET_KEY": "root-secret",
    "AWS_SECRET_ACCESS_KEY": "leak",
}


def no_objects(namespace: str, name: str) -> Mapping[str, str] | None:
    return None


def pod_with(container: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "job-abc", "namespace": "studio", "uid": "u-1"},
        "spec": {"containers": [container], "volumes": [{"name": "tmp", "emptyDir": {}}]},
    }


def spec_for(container: dict[str, Any], tmp_path: Path) -> tuple[LaunchSpec, PodDirs]:
    pod = pod_with(container)
    dirs = PodDirs.for_pod(tmp_path / "pods", pod)
    spec = launch_spec(
        pod,
        container,
        table=image_table(),
        secrets=no_objects,
        config_maps=no_objects,
        dirs=dirs,
        parent_env=HOST_ENV,
        venv_bin=VENV_BIN,
    )
    return spec, dirs


def test_runner_image_runs_local_runner_with_a_container_like_env(tmp_path: Path) -> None:
    container = {
        "name": "runner",
        "image": "ghcr.io/recon-operator/recon-runner:0.1.0",
        "args": ["--out", "/tmp/out"],
        "env": [{"name": "TMPDIR", "value": "/tmp"}, {"name": "RECON_JOB", "value": "chair"}],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    spec, dirs = spec_for(container, tmp_path)
    scratch = dirs.volumes / "tmp"
    assert dirs.root == tmp_path / "pods" / "studio_job-abc_u-1"
    assert spec.argv == ("recon", "runner", "--out", str(scratch / "out"))
    assert spec.env["TMPDIR"] == str(scratch)
    assert spec.env["RECON_JOB"] == "chair"
    assert spec.env["KUBECONFIG"] == str(dirs.kubeconfig)
    assert spec.env["HOSTNAME"] == "job-abc"
    assert spec.env["PATH"].split(":") == [VENV_BIN, "/usr/bin", "/bin"]
    assert spec.env["HOME"] == "/home/dev"
    # No GPU asked for: none visible, as with a device plugin.
    assert spec.env["CUDA_VISIBLE_DEVICES"] == ""
    # The node's own credentials never reach a pod.
    assert "MINIO_SECRET_KEY" not in spec.env
    assert "AWS_SECRET_ACCESS_KEY" not in spec.env
    assert spec.cwd == dirs.work
    assert spec.log_path == dirs.root / "runner.log"
    assert spec.volume_dirs == (scratch,)


def test_args_expand_env_references_and_a_container_path_keeps_the_venv_first(
    tmp_path: Path,
) -> None:
    container = {
        "name": "c",
        "image": "python:3.12",
        "command": ["python", "-c", "$(CODE)"],
        "args": ["$(MISSING)", "$$(CODE)"],
        "env": [{"name": "CODE", "value": "print(1)"}, {"name": "PATH", "value": "/usr/local/bin"}],
        "workingDir": "/tmp/w",
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    spec, dirs = spec_for(container, tmp_path)
    assert spec.argv == ("python", "-c", "print(1)", "$(MISSING)", "$(CODE)")
    assert spec.env["PATH"] == f"{VENV_BIN}:/usr/local/bin"
    assert spec.cwd == dirs.volumes / "tmp" / "w"


def test_a_pod_asking_for_gpus_sees_the_hosts_gpus(tmp_path: Path) -> None:
    container = {
        "name": "runner",
        "image": "ghcr.io/recon-operator/recon-runner:0.1.0",
        "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "4"}},
    }
    spec, _ = spec_for(container, tmp_path)
    assert spec.env["CUDA_VISIBLE_DEVICES"] == "0"


def test_an_image_entrypoint_under_a_mount_path_is_a_host_path_and_stays(tmp_path: Path) -> None:
    # A checkout under /tmp maps the stand-in image to /tmp/<checkout>/.venv/bin/python;
    # the Job mounts an emptyDir at /tmp. Only the pod spec's own paths move into it.
    table = {
        **image_table(),
        "ghcr.io/recon-operator/recon-standin": ("/tmp/co/.venv/bin/python", "/tmp/co/s.py"),
    }
    container = {
        "name": "runner",
        "image": "ghcr.io/recon-operator/recon-standin:test",
        "args": ["--out", "/tmp/out"],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    pod = pod_with(container)
    dirs = PodDirs.for_pod(tmp_path / "pods", pod)
    spec = launch_spec(
        pod,
        container,
        table=table,
        secrets=no_objects,
        config_maps=no_objects,
        dirs=dirs,
        parent_env=HOST_ENV,
        venv_bin=VENV_BIN,
    )
    scratch = dirs.volumes / "tmp"
    assert spec.argv == ("/tmp/co/.venv/bin/python", "/tmp/co/s.py", "--out", str(scratch / "out"))
