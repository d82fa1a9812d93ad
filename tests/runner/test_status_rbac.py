"""The runner's status reports work with the per-job Role the operator creates (get its own
ReconJob, patch its own status) and nothing more: another job's status is forbidden."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from recon_api.constants import Stage
from recon_runner.pod.progress import ProgressLimiter
from recon_runner.pod.status_reporter import StatusReporter, kubernetes_api, status_patcher

from tests.support.run_metrics import run_metrics
from tests.support.runner_access import (
    apply_crd,
    create_reconjob,
    get_reconjob,
    runner_kubeconfig,
)


@pytest.fixture(scope="module")
def crd(stack: Any) -> None:
    apply_crd(stack)


@pytest.fixture
def namespace(crd: None, namespace: str) -> str:
    """The throwaway namespace, with the ReconJob CRD in place."""
    return namespace


def test_runner_token_patches_its_own_status_and_nothing_else(
    stack: Any, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = create_reconjob(stack, namespace, "chair-001")
    create_reconjob(stack, namespace, "table-002")
    monkeypatch.setenv("KUBECONFIG", str(runner_kubeconfig(stack, own, tmp_path / "kubeconfig")))
    api = kubernetes_api()

    reporter = StatusReporter(status_patcher(api, namespace, "chair-001"), ProgressLimiter())
    reporter.start()
    reporter(Stage.REFINE, 0.5, "iteration 100/200")
    finished = reporter.finish(
        {"mesh": "s3://meshes/chair-001/out/mesh.glb"},
        run_metrics(vertices=1200, faces=2400, seconds={"total": 12.5}, psnr=31.2),
        message="done",
    )
    assert finished
    status = get_reconjob(stack, namespace, "chair-001").status
    assert status.progress is not None
    assert status.progress.percent == 100
    assert status.progress.stage == Stage.UPLOAD
    assert status.progress.updated_at is not None
    assert status.outputs is not None
    assert status.outputs.mesh == "s3://meshes/chair-001/out/mesh.glb"
    assert status.metrics is not None
    assert (status.metrics.vertices, status.metrics.seconds) == (1200, 12.5)

    # The same token on the neighbour's status, or on its spec, is refused.
    other = status_patcher(api, namespace, "table-002")
    with pytest.raises(ApiException) as info:
        other({"status": {"progress": {"percent": 1}}})
    assert info.value.status == 403
    assert get_reconjob(stack, namespace, "table-002").status.progress is None


def test_unreachable_api_server_never_fails_the_run(
    stack: Any, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = create_reconjob(stack, namespace, "chair-001")
    path = runner_kubeconfig(stack, own, tmp_path / "kubeconfig")
    config = yaml.safe_load(path.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))

    reporter = StatusReporter(
        status_patcher(kubernetes_api(), namespace, "chair-001"), ProgressLimiter(), tick=0.05
    ).start()
    reporter(Stage.FUSE, 0.2, "fusing")
    reporter(Stage.REFINE, 0.0, "refining")
    assert not reporter.finish({}, run_metrics(), attempts=2, backoff=0.01)
