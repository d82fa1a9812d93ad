"""`recon runner` as its pod runs it: environment from the operator's contract, the capture in
the stack's MinIO, a token that may only patch its own ReconJob's status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from minio import Minio
from recon_api.constants import MeshFormat, Preset, Stage
from recon_api.runner_params import ACCESS_KEY_ENV, SECRET_KEY_ENV, RunnerParams
from recon_api.setting_limits import ITERATIONS
from recon_runner.synthetic import sphere_object, write_capture

from tests.support import captures
from tests.support.runner_access import (
    apply_crd,
    create_reconjob,
    get_reconjob,
    runner_kubeconfig,
)

CENTRE = (0.1, -0.2, 0.3)
RADIUS = 0.25


@dataclass
class Job:
    namespace: str
    name: str
    bucket: str
    input_prefix: str
    output_prefix: str
    kubeconfig: Path


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sphere capture: 6 views at 64x64, enough for the draft preset."""
    root = tmp_path_factory.mktemp("capture")
    write_capture(sphere_object(RADIUS, CENTRE, subdivisions=4), root, views=6, width=64, height=64)
    return root


@pytest.fixture(scope="module")
def namespace(stack: Any) -> Iterator[str]:
    """One namespace for the module (not one a test), with the ReconJob CRD in place."""
    apply_crd(stack)
    with stack.throwaway_namespace("runner") as name:
        yield name


@pytest.fixture
def job(stack: Any, namespace: str, bucket: str, capture_dir: Path, tmp_path: Path) -> Job:
    name = f"scan-{uuid.uuid4().hex[:6]}"
    input_prefix = f"{name}/"
    captures.upload(stack.minio_client(), bucket, input_prefix, captures.files_under(capture_dir))
    recon = create_reconjob(stack, namespace, name, prefix=input_prefix)
    return Job(
        namespace=namespace,
        name=name,
        bucket=bucket,
        input_prefix=input_prefix,
        # under the input prefix, as the default is: it must never be downloaded
        output_prefix=f"{input_prefix}output/{recon.uid}/",
        kubeconfig=runner_kubeconfig(stack, recon, tmp_path / "kubeconfig"),
    )


def runner_env(stack: Any, job: Job, **overrides: Any) -> dict[str, str]:
    params = RunnerParams(
        job_name=job.name,
        job_namespace=job.namespace,
        job_uid="uid",
        input_bucket=job.bucket,
        input_prefix=job.input_prefix,
        expected_views=6,
        output_bucket=job.bucket,
        output_prefix=job.output_prefix,
        storage_endpoint=stack.minio_endpoint,
        formats=(MeshFormat.GLB, MeshFormat.PLY),
        preset=Preset.DRAFT,
        # smaller than the draft preset: this test is about the pod's plumbing
        grid_resolution=64,
        iterations=10,
        texture_size=256,
        device="cpu",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    env.update(params.to_env())
    env.update(
        {
            ACCESS_KEY_ENV: stack.minio_access_key,
            SECRET_KEY_ENV: stack.minio_secret_key,
            "KUBECONFIG": str(job.kubeconfig),
            "RECON_STORAGE_RETRIES": "2",
            "RECON_STORAGE_BACKOFF_SECONDS": "0.1",
        }
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def start_runner(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "recon_cli", "runner"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def keys(stack: Any, bucket: str, prefix: str) -> set[str]:
    client: Minio = stack.minio_client()
    return {o.object_name for o in client.list_objects(bucket, prefix=prefix, recursive=True)}


def test_runner_reconstructs_uploads_and_reports_on_its_reconjob(
    stack: Any, job: Job, tmp_path: Path
) -> None:
    env = runner_env(stack, job)
    runner = start_runner(env)
    out, err = runner.communicate(timeout=300)
    assert runner.returncode == 0, err[-3000:]
    assert stack.minio_secret_key not in err + out

    names = {"mesh.glb", "mesh.ply", "preview.png", "metrics.json"}
    assert keys(stack, job.bucket, job.output_prefix) == {job.output_prefix + n for n in names}

    # The mesh lies where the sphere is, in the capture's world frame.
    client: Minio = stack.minio_client()
    glb = tmp_path / "mesh.glb"
    client.fget_object(job.bucket, job.output_prefix + "mesh.glb", str(glb))
    mesh = trimesh.load(glb, force="mesh")
    assert isinstance(mesh, trimesh.Trimesh)
    distance = np.linalg.norm(mesh.vertices - np.array(CENTRE), axis=1)
    assert abs(float(np.median(distance)) - RADIUS) < 0.03 * RADIUS
    assert float(np.percentile(np.abs(distance - RADIUS), 95)) < 0.1 * RADIUS

    status = get_reconjob(stack, job.namespace, job.name).status
    assert status.progress is not None
    assert (status.progress.percent, status.progress.stage) == (100, Stage.UPLOAD)
    assert status.outputs is not None
    url = f"s3://{job.bucket}/{job.output_prefix}"
    assert status.outputs.mesh == url + "mesh.glb"
    assert status.outputs.preview == url + "preview.png"
    assert status.outputs.metrics == url + "metrics.json"
    assert status.metrics is not None
    assert status.metrics.vertices is not None and status.metrics.vertices > 100
    assert status.metrics.seconds is not None and status.metrics.seconds > 0


def wait_for_stage(stack: Any, job: Job, stages: set[Stage], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = get_reconjob(stack, job.namespace, job.name).status.progress
        if progress is not None and progress.stage in stages:
            return
        time.sleep(0.3)
    pytest.fail(f"the runner never reached {stages}")


def test_sigterm_mid_run_exits_143_quickly_and_uploads_nothing(stack: Any, job: Job) -> None:
    # The most refinement steps the API allows, so the run is surely still going when the
    # signal comes.
    runner = start_runner(runner_env(stack, job, RECON_ITERATIONS=ITERATIONS.maximum))
    try:
        wait_for_stage(stack, job, {Stage.REFINE}, timeout=120)
        sent = time.monotonic()
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=15)
        took = time.monotonic() - sent
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 143
    assert took < 10
    # a safe point was reached (the watchdog's forced exit would skip the cleanup)
    assert "no safe point reached" not in err
    assert "stopping at the next safe point" in err
    assert keys(stack, job.bucket, job.output_prefix) == set()
    status = get_reconjob(stack, job.namespace, job.name).status
    assert status.progress is not None and "SIGTERM" in (status.progress.message or "")


def test_missing_capture_file_exits_3_naming_it(stack: Any, job: Job) -> None:
    stack.minio_client().remove_object(job.bucket, job.input_prefix + "depth/view_004.png")
    runner = start_runner(runner_env(stack, job))
    _, err = runner.communicate(timeout=120)
    assert runner.returncode == 3
    assert f"s3://{job.bucket}/{job.input_prefix}depth/view_004.png" in err
    status = get_reconjob(stack, job.namespace, job.name).status
    assert status.progress is not None and "depth/view_004.png" in (status.progress.message or "")


def test_unreachable_storage_exits_75(stack: Any, job: Job) -> None:
    runner = start_runner(runner_env(stack, job, RECON_STORAGE_ENDPOINT="127.0.0.1:1"))
    _, err = runner.communicate(timeout=120)
    assert runner.returncode == 75, err[-2000:]
    assert "unreachable" in err
    status = get_reconjob(stack, job.namespace, job.name).status
    assert status.progress is not None and "unreachable" in (status.progress.message or "")
