"""closeHoles from the ReconJob to the runner's configuration, and observedFraction from
metrics.json to status.metrics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from recon_api.constants import Stage
from recon_api.models import Metrics
from recon_api.runner_params import RunnerParams, RunnerParamsError
from recon_operator import jobspec
from recon_operator.settings import Settings
from recon_runner.config import config_from_params
from recon_runner.pod.progress import ProgressReport, final_patch

from tests.support.reconjobs import reconjob
from tests.support.run_metrics import run_metrics

SETTINGS = Settings(runner_image="ghcr.io/recon-operator/recon-runner:1.0", storage_endpoint="m:9")


def job(**reconstruction: object):
    spec = {
        "input": {"bucket": "scans", "prefix": "chair-001/", "expectedViews": 8},
        "output": {"bucket": "meshes"},
        "storage": {"credentialsSecret": "team-minio"},
        "reconstruction": reconstruction,
    }
    return reconjob(spec=spec, uid="u-1")


def env_of(recon) -> dict[str, str]:
    container = jobspec.build_job(recon, SETTINGS)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


@pytest.mark.parametrize("close_holes", [True, False])
def test_close_holes_reaches_the_runner_configuration(close_holes: bool) -> None:
    env = env_of(job(closeHoles=close_holes))
    assert env["RECON_CLOSE_HOLES"] == ("true" if close_holes else "false")
    params = RunnerParams.from_env({k: v for k, v in env.items() if v is not None})
    assert params.close_holes is close_holes
    assert config_from_params(params).close_holes is close_holes


def test_close_holes_is_off_unless_asked() -> None:
    assert job().spec.reconstruction.close_holes is False
    assert env_of(job())["RECON_CLOSE_HOLES"] == "false"


def test_a_malformed_close_holes_variable_is_named() -> None:
    env = RunnerParams("j", "ns", "u", "in", "", 8, "out", "p/", "m:9").to_env()
    env["RECON_CLOSE_HOLES"] = "maybe"
    with pytest.raises(RunnerParamsError, match="RECON_CLOSE_HOLES"):
        RunnerParams.from_env(env)


def test_the_final_status_patch_carries_the_observed_and_filled_fractions() -> None:
    metrics = run_metrics(faces=10, observedFraction=0.84, filledFraction=0.16, filledAreaM2=1)
    patch = final_patch(
        ProgressReport(100, Stage.EXPORT, "done", None),
        datetime(2026, 1, 1, tzinfo=UTC),
        {},
        metrics,
    )
    status_metrics = patch["status"]["metrics"]
    assert (
        status_metrics["faces"],
        status_metrics["observedFraction"],
        status_metrics["filledFraction"],
    ) == (10, 0.84, 0.16)
    assert "filledAreaM2" not in status_metrics, "the status carries the headline only"
    parsed = Metrics.model_validate(status_metrics)
    assert parsed.observed_fraction == 0.84 and parsed.filled_fraction == 0.16
