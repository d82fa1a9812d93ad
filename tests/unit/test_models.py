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
        ({"reconstruction": {"bounds": {"min": [0, 0], "max": [1, 1, 1]}}}, "bounds.min"),
        ({"reconstruction": {"bounds": {"min": [0, 0, 0]}}}, "bounds.max"),
        ({"reconstruction": {"bounds": {"min": ["0", 0, 0], "max": [1, 1, 1]}}}, "bounds.min"),
        ({"reconstruction": {"bounds": {"min": [0, 0, 0], "max": [1, 1, 1e7]}}}, "bounds.max"),
        ({"reconstruction": {"bounds": {"min": [0, 2, 0], "max": [1, 1, 1]}}}, "min must be below"),
    ],
)
def test_invalid_specs_are_rejected_naming_the_field(
    overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        spec(**overrides)
    assert field in str(err.value)


def test_bounds_are_a_box_in_the_capture_frame() -> None:
    box = {"min": [-0.5, -0.5, 0], "max": [0.5, 0.5, 1.25]}
    parsed = spec(reconstruction={"bounds": box})
    assert parsed.reconstruction.bounds is not None
    assert parsed.reconstruction.bounds.corners() == ((-0.5, -0.5, 0.0), (0.5, 0.5, 1.25))
    assert parsed.to_api()["reconstruction"]["bounds"] == box
    assert spec().reconstruction.bounds is None


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
    assert [c.type for c in status.conditions or ()] == ["Running"]
    assert status.conditions is not None and status.conditions[0].status == "True"
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


@pytest.mark.parametrize(
    "quantity",
    ["4", "500m", "16Gi", "1.5", ".5", "1.", "1e3", "1E18", "2e-3", "0", "100Ki", "1u", "7n", "8E"],
)
def test_kubernetes_quantities_are_accepted(quantity: str) -> None:
    assert spec(resources={"cpu": quantity, "memory": quantity}).resources.memory == quantity


@pytest.mark.parametrize(
    "quantity",
    [
        "1e1.5",  # Kubernetes reads the exponent as an integer
        ".5e.5",
        "1e19",  # exponents stop at 18, as the SI suffixes do
        "1e100000000",  # 10**100000000 costs the API server seconds and gigabytes
        "36e2239375680995486",
        "1" * 33,  # longer than any quantity needs
        "-1",
        "1 Gi",
        "1gi",
        "1e",
        "",
    ],
)
def test_quantities_kubernetes_cannot_parse_cheaply_are_refused(quantity: str) -> None:
    with pytest.raises(ValidationError) as err:
        spec(resources={"memory": quantity})
    assert "memory" in str(err.value)


def test_numeric_quantities_follow_the_api_server() -> None:
    """An integer (or a number with no fraction, as the API server stores it) is a quantity;
    a fraction must be written as a string."""
    assert spec(resources={"cpu": 8.0}).resources.cpu == "8"
    assert spec(resources={"memory": 2**63 - 1}).resources.memory == str(2**63 - 1)
    for bad in (0.5, -1, 2**63, True, float("inf")):
        with pytest.raises(ValidationError):
            spec(resources={"cpu": bad})


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"input": {"bucket": "scans", "expectedViews": "5"}}, "expectedViews"),
        ({"input": {"bucket": "scans", "expectedViews": True}}, "expectedViews"),
        ({"input": {"bucket": "scans", "expectedViews": 5.5}}, "expectedViews"),
        ({"storage": {"secure": "true"}}, "secure"),
        ({"storage": {"secure": 1}}, "secure"),
        ({"priority": "1"}, "priority"),
        ({"reconstruction": {"iterations": "100"}}, "iterations"),
        ({"resources": {"tolerations": [{"tolerationSeconds": 2**70}]}}, "tolerationSeconds"),
    ],
)
def test_values_of_the_wrong_json_type_are_refused(
    overrides: dict[str, object], field: str
) -> None:
    """The API server refuses "5" for an integer and "true" for a boolean; so does the model."""
    body: dict[str, object] = {"input": {"bucket": "scans"}, **overrides}
    with pytest.raises(ValidationError) as err:
        ReconJobSpec.model_validate(body)
    assert field in str(err.value)


def test_whole_numbers_are_integers_as_the_api_server_stores_them() -> None:
    s = spec(input={"bucket": "scans", "expectedViews": 5.0}, retries=1e0)
    assert (s.input.expected_views, s.retries) == (5, 1)
    assert isinstance(s.input.expected_views, int)


@pytest.mark.parametrize(
    "endpoint",
    ["minio.minio.svc:9000", "127.0.0.1:9000", "[::1]:9000", "s3.example.com", "minio_1:80"],
)
def test_storage_endpoints_are_host_and_port(endpoint: str) -> None:
    assert spec(storage={"endpoint": endpoint}).storage.endpoint == endpoint


@pytest.mark.parametrize(
    "endpoint",
    [
        "minio\u00a0svc:9000",  # no-break space: \s to pydantic, not to the API server
        "minio\u2003:9000",
        "minio\x0b:9000",  # vertical tab: not in Go's \s
        "minio svc:9000",
        "http://minio:9000",
        "minio:9000/path",
        "mínio:9000",
        "a" * 262,
    ],
)
def test_storage_endpoints_with_other_characters_are_refused(endpoint: str) -> None:
    with pytest.raises(ValidationError) as err:
        spec(storage={"endpoint": endpoint})
    assert "endpoint" in str(err.value)


@pytest.mark.parametrize(
    "labels",
    [
        {"gpu": "a100"},
        {"nvidia.com/gpu.product": "A100-SXM4-80GB"},
        {"kubernetes.io/arch": ""},
        {"a" * 253 + "/" + "b" * 63: "c" * 63},
    ],
)
def test_valid_node_selectors_are_accepted(labels: dict[str, str]) -> None:
    assert spec(resources={"nodeSelector": labels}).resources.node_selector == labels


@pytest.mark.parametrize(
    "labels",
    [
        {"gpu type": "a100"},
        {"gpu": "a100 80gb"},
        {"/gpu": "x"},
        {"Example.com/gpu": "x"},  # the prefix is a lower-case DNS name
        {"a/b/c": "x"},
        {"-gpu": "x"},
        {"gpu": "-x"},
        {"a" * 254 + "/b": "x"},
        {"b" * 64: "x"},
        {"gpu": "x" * 64},
        {f"k{i}": "v" for i in range(65)},
    ],
)
def test_invalid_node_selectors_are_refused(labels: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as err:
        spec(resources={"nodeSelector": labels})
    assert "nodeSelector" in str(err.value)


@pytest.mark.parametrize(
    "toleration",
    [
        {"operator": "Exists"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "gpu", "value": "yes"},
        {"key": "gpu", "operator": "Equal", "value": "", "effect": "PreferNoSchedule"},
        {"key": "gpu", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
    ],
)
def test_valid_tolerations_are_accepted(toleration: dict[str, object]) -> None:
    assert len(spec(resources={"tolerations": [toleration]}).resources.tolerations) == 1


@pytest.mark.parametrize(
    ("toleration", "needle"),
    [
        ({"key": "gpu", "effect": "NoSchedule", "tolerationSeconds": 60}, "NoExecute"),
        ({"key": "gpu", "tolerationSeconds": 60}, "NoExecute"),
        ({"key": "gpu", "operator": "Exists", "value": "yes"}, "value must be empty"),
        ({"operator": "Equal", "value": "yes"}, "operator must be Exists"),
        ({"value": "yes"}, "operator must be Exists"),
        ({"key": "gpu type", "operator": "Exists"}, "tolerations.0.key"),
        ({"key": "gpu", "value": "a b"}, "value"),
    ],
)
def test_inconsistent_tolerations_are_refused(toleration: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        spec(resources={"tolerations": [toleration]})
    assert "tolerations.0" in str(err.value) and needle in str(err.value)
