"""The ReconJob models: what a manifest means once parsed, and the derived output location."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from recon_api.constants import MeshFormat, Phase, Preset, Stage
from recon_api.models import ReconJob, ReconJobSpec, ReconJobStatus


def spec(**overrides: object) -> ReconJobSpec:
    body: dict[str, object] = {"input": {"bucket": "scans", "prefix": "chair-001/"}}
    body.update(overrides)
    return ReconJobSpec.model_validate(body)


def test_minimal_spec_gets_the_documented_defaults() -> None:
    s = spec()
    assert s.input.expected_views == 6
    assert s.output.formats == [MeshFormat.GLB]
    assert s.reconstruction.preset is Preset.STANDARD
    assert s.reconstruction.seed == 0
    assert (s.resources.gpus, s.resources.cpu, s.resources.memory) == (1, "4", "16Gi")
    assert s.resources.node_selector == {}
    assert s.resources.tolerations == []
    assert (s.priority, s.timeout_seconds, s.retries) == (0, 3600, 2)
    assert s.storage.endpoint is None and s.storage.credentials_secret is None


def test_output_defaults_to_input_bucket_and_a_uid_keyed_prefix() -> None:
    s = spec()
    assert s.output_bucket() == "scans"
    assert s.output_prefix("1234-abcd") == "chair-001/output/1234-abcd/"
    with pytest.raises(ValueError, match="uid"):
        s.output_prefix("")


def test_explicit_output_location_wins() -> None:
    s = spec(output={"bucket": "meshes", "prefix": "chair-001/out/"})
    assert s.output_bucket() == "meshes"
    assert s.output_prefix("any") == "chair-001/out/"


def test_camel_case_on_the_wire_snake_case_in_python() -> None:
    s = spec(
        reconstruction={"preset": "high", "gridResolution": 512, "textureSize": 2048},
        resources={"nodeSelector": {"gpu": "a100"}, "priorityClassName": "batch-high"},
        timeoutSeconds=600,
    )
    assert s.reconstruction.grid_resolution == 512
    assert s.resources.priority_class_name == "batch-high"
    wire = s.to_api()
    assert wire["reconstruction"]["gridResolution"] == 512
    assert wire["resources"]["nodeSelector"] == {"gpu": "a100"}
    assert wire["timeoutSeconds"] == 600
    assert "iterations" not in wire["reconstruction"]  # unset overrides stay out


def test_integer_quantities_are_accepted_as_kubernetes_does() -> None:
    s = spec(resources={"cpu": 8, "memory": "512Mi"})
    assert s.resources.cpu == "8"
    assert spec(resources={"cpu": "500m"}).resources.cpu == "500m"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"input": {"prefix": "x/"}}, "bucket"),
        ({"input": {"bucket": "scans", "expectedViews": 0}}, "expectedViews"),
        ({"reconstruction": {"preset": "ultra"}}, "preset"),
        ({"output": {"formats": ["glb", "glb"]}}, "formats"),
        ({"output": {"formats": ["stl"]}}, "formats"),
        ({"output": {"formats": []}}, "formats"),
        ({"resources": {"memory": "lots"}}, "memory"),
        ({"resources": {"cpu": "-1"}}, "cpu"),
        ({"resources": {"gpus": -1}}, "gpus"),
        ({"timeoutSeconds": 0}, "timeoutSeconds"),
        ({"retries": 100}, "retries"),
        ({"input": {"bucket": "scans", "prefix": "/abs/"}}, "prefix"),
        ({"input": {"bucket": "scans", "prefix": "no-slash"}}, "prefix"),
        ({"reconstruction": {"gridResolution": 4}}, "gridResolution"),
        ({"storage": {"credentialsSecret": "Not_A_Name"}}, "credentialsSecret"),
    ],
)
def test_invalid_specs_are_rejected_naming_the_field(
    overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        spec(**overrides)
    assert field in str(err.value)


@given(st.lists(st.sampled_from(list(MeshFormat)), min_size=1, max_size=3, unique=True))
def test_any_set_of_formats_round_trips(formats: list[MeshFormat]) -> None:
    s = spec(output={"formats": [f.value for f in formats]})
    assert ReconJobSpec.model_validate(s.to_api()) == s


def test_status_round_trips_and_finds_conditions() -> None:
    wire = {
        "phase": "Running",
        "queuePosition": None,
        "progress": {
            "percent": 42,
            "stage": "refine",
            "message": "iteration 168/400",
            "updatedAt": "2025-01-01T00:00:00Z",
            "etaSeconds": 40,
        },
        "conditions": [
            {
                "type": "Running",
                "status": "True",
                "reason": "PodRunning",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
                "observedGeneration": 1,
            }
        ],
        "jobName": "chair-001-recon",
        "attempts": 1,
        "cancel": {"requestedAt": "2025-01-01T00:00:00Z", "expiresAt": "2025-01-01T00:10:00Z"},
        "metrics": {"vertices": 10, "faces": 20, "maskIoU": 0.9, "depthErrorMm": 1.5},
        "observedGeneration": 1,
    }
    status = ReconJobStatus.model_validate(wire)
    assert status.phase is Phase.RUNNING
    assert status.progress is not None and status.progress.stage is Stage.REFINE
    running = status.condition("Running")
    assert running is not None and running.status == "True"
    assert status.condition("Succeeded") is None
    again = status.to_api()
    assert again["metrics"]["maskIoU"] == 0.9
    assert "queuePosition" not in again
    assert ReconJobStatus.model_validate(again) == status


def test_progress_percent_is_bounded() -> None:
    with pytest.raises(ValidationError):
        ReconJobStatus.model_validate({"progress": {"percent": 101}})


def test_resource_wrapper_resolves_output_from_its_uid() -> None:
    job = ReconJob.model_validate(
        {
            "apiVersion": "recon.dev/v1alpha1",
            "kind": "ReconJob",
            "metadata": {"name": "chair-001", "uid": "u-1"},
            "spec": {"input": {"bucket": "scans", "prefix": "p/"}},
            "status": {"phase": "Queued", "queuePosition": 3, "kopf": {"progress": {}}},
        }
    )
    assert job.output_bucket() == "scans"
    assert job.output_prefix() == "p/output/u-1/"
    assert job.status.queue_position == 3
