"""The ReconJob spec and status as pydantic models: the single source of truth for the API.

The CRD in `crds/` is generated from these classes (`python -m recon_api.crd --write`), so
field descriptions here are what `kubectl explain` shows, and bounds here are what the API
server enforces. The operator and the runner read and write resources through these models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

from recon_api.constants import MeshFormat, Phase, Preset, Stage

# Kubernetes resource.Quantity, unsigned (a negative cpu or memory request makes no sense).
QUANTITY_PATTERN = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# Names of buckets as S3/MinIO accept them.
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# An object key prefix: relative, and either empty or ending in "/" so it names a folder.
PREFIX_PATTERN = r"^$|^[^/].*/$"
# DNS-1123 subdomain, the shape of Secret and PriorityClass names.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

MAX_EXPECTED_VIEWS = 1024


def _quantity_to_str(value: object) -> object:
    # YAML turns `cpu: 4` into an int; Kubernetes accepts both, so do we.
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_quantity_to_str),
    StringConstraints(pattern=QUANTITY_PATTERN),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
        }
    ),
]


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are kept out."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_enum_values=False,
        extra="ignore",
    )

    def to_api(self) -> dict[str, Any]:
        """The resource form: camelCase keys, unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# ---------------------------------------------------------------------------- spec


class InputSpec(ApiModel):
    """Where the capture (transforms.json, images/, depth/) lives."""

    bucket: str = Field(
        description="Bucket that holds the capture.",
        pattern=BUCKET_PATTERN,
    )
    prefix: str = Field(
        default="",
        description=(
            'Dataset root inside the bucket, ending in "/" (e.g. "chair-001/"); it holds '
            "transforms.json, images/ and depth/. Empty means the bucket root."
        ),
        pattern=PREFIX_PATTERN,
        max_length=1024,
    )
    expected_views: int = Field(
        default=6,
        ge=1,
        le=MAX_EXPECTED_VIEWS,
        description=(
            "Number of frames transforms.json must list; a capture with a different count "
            "is rejected before any GPU is requested."
        ),
    )


class OutputSpec(ApiModel):
    """Where the mesh, preview and metrics are written."""

    bucket: str | None = Field(
        default=None,
        description="Bucket for the outputs. Defaults to the input bucket.",
        pattern=BUCKET_PATTERN,
    )
    prefix: str | None = Field(
        default=None,
        description=(
            'Key prefix for the outputs, ending in "/". Defaults to '
            '"<input.prefix>output/<metadata.uid>/", so two runs never overwrite each other.'
        ),
        pattern=PREFIX_PATTERN,
        max_length=1024,
    )
    formats: list[MeshFormat] = Field(
        default_factory=lambda: [MeshFormat.GLB],
        min_length=1,
        max_length=len(MeshFormat),
        description=(
            "Mesh formats to write: glb (mesh.glb), obj (mesh.obj, mesh.mtl, texture.png), "
            "ply (mesh.ply). Each at most once."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )

    @field_validator("formats")
    @classmethod
    def _unique_formats(cls, formats: list[MeshFormat]) -> list[MeshFormat]:
        if len(set(formats)) != len(formats):
            raise ValueError("formats must not repeat")
        return formats


class StorageSpec(ApiModel):
    """The S3 endpoint and credentials; each field falls back to the operator's settings."""

    endpoint: str | None = Field(
        default=None,
        description=(
            'S3/MinIO endpoint as host:port (e.g. "minio.minio.svc:9000"). '
            "Defaults to the operator's RECON_STORAGE_ENDPOINT."
        ),
        min_length=1,
        max_length=512,
        pattern=r"^[^/\s]+$",
    )
    secure: bool | None = Field(
        default=None,
        description="Use HTTPS. Defaults to the operator's RECON_STORAGE_SECURE.",
    )
    credentials_secret: str | None = Field(
        default=None,
        description=(
            "Name of a Secret in the ReconJob's namespace with keys accessKey and secretKey. "
            "Defaults to the operator's RECON_STORAGE_SECRET."
        ),
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
    )


class ReconstructionSpec(ApiModel):
    """Quality settings: a preset, and optional overrides of its individual values."""

    preset: Preset = Field(
        default=Preset.STANDARD,
        description=(
            "Quality preset: draft (fast preview), standard, or high (slow, detailed). "
            "The fields below override single values of the preset."
        ),
    )
    grid_resolution: int | None = Field(
        default=None,
        ge=32,
        le=1024,
        description="TSDF voxel grid resolution along the longest side of the object.",
    )
    iterations: int | None = Field(
        default=None,
        ge=0,
        le=20000,
        description="Mesh refinement iterations (0 skips refinement).",
    )
    texture_size: int | None = Field(
        default=None,
        ge=64,
        le=8192,
        description="Texture atlas width and height in pixels.",
    )
    seed: int = Field(
        default=0,
        ge=0,
        le=2**31 - 1,
        description="Random seed; the same seed and input give the same result.",
    )


class Toleration(ApiModel):
    """A core/v1 Toleration, copied onto the runner's pod."""

    key: str | None = Field(
        default=None,
        description="Taint key the toleration applies to; empty with operator Exists "
        "matches every taint.",
        max_length=317,
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None,
        description="Exists or Equal (the default).",
    )
    value: str | None = Field(
        default=None,
        description="Taint value to match when operator is Equal.",
        max_length=63,
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None,
        description="Taint effect to match; empty matches all effects.",
    )
    toleration_seconds: int | None = Field(
        default=None,
        description="For NoExecute: how long the pod stays bound after the taint appears.",
        json_schema_extra={"format": "int64"},
    )


class ResourcesSpec(ApiModel):
    """What the runner's pod asks the scheduler for, and where it may run."""

    gpus: int = Field(
        default=1,
        ge=0,
        le=16,
        description="GPUs to request (the operator's GPU resource name); 0 runs on CPU.",
    )
    cpu: Quantity = Field(
        default="4",
        description='CPU request and limit as a Kubernetes quantity (e.g. "4", "500m").',
    )
    memory: Quantity = Field(
        default="16Gi",
        description='Memory request and limit as a Kubernetes quantity (e.g. "16Gi").',
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="Node labels the runner's pod must match.",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        description="Tolerations for the runner's pod (e.g. for tainted GPU nodes).",
    )
    priority_class_name: str = Field(
        default="",
        description="PriorityClass for the runner's pod; empty uses the cluster default.",
        max_length=253,
        pattern=r"^$|" + DNS_SUBDOMAIN_PATTERN,
    )


class ReconJobSpec(ApiModel):
    """A reconstruction request. Immutable once created: a new reconstruction is a new
    ReconJob."""

    input: InputSpec = Field(description="The capture to reconstruct.")
    output: OutputSpec = Field(
        default_factory=OutputSpec,
        description="Where the outputs go; every field has a default.",
    )
    storage: StorageSpec = Field(
        default_factory=StorageSpec,
        description="S3/MinIO connection; every field defaults to the operator's settings.",
    )
    reconstruction: ReconstructionSpec = Field(
        default_factory=ReconstructionSpec,
        description="Quality preset and overrides.",
    )
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec,
        description="Compute requests and placement of the runner's pod.",
    )
    priority: int = Field(
        default=0,
        ge=-1_000_000,
        le=1_000_000,
        description="Queue priority: higher runs first; equal priority runs in creation order.",
    )
    timeout_seconds: int = Field(
        default=3600,
        ge=1,
        le=7 * 24 * 3600,
        description="Wall-clock limit of the run (the Job's activeDeadlineSeconds).",
    )
    retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description=(
            "Retries after transient failures (storage unreachable, pod evicted). "
            "Invalid input is never retried."
        ),
    )

    def output_bucket(self) -> str:
        """The bucket outputs go to: output.bucket, else the input bucket."""
        return self.output.bucket or self.input.bucket

    def output_prefix(self, uid: str) -> str:
        """The output prefix: output.prefix, else `<input.prefix>output/<uid>/`.

        Keyed by the ReconJob's uid so a re-created job of the same name never writes over
        (or, on cancel, deletes) the outputs of an earlier one."""
        if self.output.prefix:
            return self.output.prefix
        if not uid:
            raise ValueError("the ReconJob's uid is needed to derive the output prefix")
        return f"{self.input.prefix}output/{uid}/"


# ---------------------------------------------------------------------------- status


class Progress(ApiModel):
    """Written by the runner as it works; updatedAt doubles as its heartbeat."""

    percent: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Overall progress, 0..100; never decreases within an attempt.",
    )
    stage: Stage | None = Field(
        default=None,
        description="Current stage: download, fuse, refine, texture, export or upload.",
    )
    message: str | None = Field(
        default=None,
        description='Human-readable detail, e.g. "iteration 168/400".',
        max_length=1024,
    )
    updated_at: datetime | None = Field(
        default=None,
        description="Time of the runner's last progress patch (its heartbeat).",
    )
    eta_seconds: int | None = Field(
        default=None,
        ge=0,
        description="Estimated seconds until the run finishes.",
    )


class Condition(ApiModel):
    """A condition in the Kubernetes API conventions."""

    type: str = Field(
        description=(
            "Condition type: InputsValid, Admitted, Scheduled, Running, CancelRequested, "
            "Succeeded, Failed or Cancelled."
        ),
        max_length=316,
    )
    status: Literal["True", "False", "Unknown"] = Field(
        description="True, False or Unknown.",
    )
    reason: str | None = Field(
        default=None,
        description="CamelCase machine-readable reason for the last transition.",
        max_length=1024,
    )
    message: str | None = Field(
        default=None,
        description="Human-readable detail of the last transition.",
        max_length=32768,
    )
    last_transition_time: datetime | None = Field(
        default=None,
        description="When the status last changed.",
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="metadata.generation the condition was set for.",
    )


class CancelStatus(ApiModel):
    """A pending cancel request, waiting for confirmation."""

    requested_at: datetime | None = Field(
        default=None, description="When recon.dev/cancel=requested was seen."
    )
    expires_at: datetime | None = Field(
        default=None,
        description="A recon.dev/cancel=confirmed after this time is refused.",
    )


class Outputs(ApiModel):
    """s3:// URLs of the written results."""

    mesh: str | None = Field(default=None, description="URL of the mesh (first format asked).")
    preview: str | None = Field(
        default=None, description="URL of preview.png: input views beside re-rendered views."
    )
    metrics: str | None = Field(default=None, description="URL of metrics.json.")


class Metrics(ApiModel):
    """Quality and size of the result, copied from metrics.json."""

    vertices: int | None = Field(default=None, ge=0, description="Vertices in the mesh.")
    faces: int | None = Field(default=None, ge=0, description="Triangles in the mesh.")
    seconds: float | None = Field(default=None, ge=0, description="Runtime of the run.")
    psnr: float | None = Field(
        default=None, description="Mean PSNR (dB) of re-rendered views against the inputs."
    )
    mask_iou: float | None = Field(
        default=None,
        alias="maskIoU",
        ge=0,
        le=1,
        description="Mean IoU of re-rendered silhouettes against the input masks.",
    )
    depth_error_mm: float | None = Field(
        default=None, ge=0, description="Mean absolute depth error in millimetres."
    )


class ReconJobStatus(ApiModel):
    """Observed state, written by the operator (and status.progress by the runner)."""

    phase: Phase | None = Field(
        default=None,
        description="Pending, Validating, Queued, Running, Succeeded, Failed or Cancelled.",
    )
    queue_position: int | None = Field(
        default=None,
        ge=1,
        description="1-based place in the admission queue; only while Queued.",
    )
    progress: Progress | None = Field(default=None, description="The runner's progress.")
    conditions: list[Condition] | None = Field(
        default=None,
        description="Latest observations of the job's state, one per type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    job_name: str | None = Field(
        default=None, description="Name of the child batch/v1 Job running this reconstruction."
    )
    node_name: str | None = Field(default=None, description="Node the runner's pod runs on.")
    attempts: int | None = Field(
        default=None, ge=0, description="Runner pods started so far (retries included)."
    )
    started_at: datetime | None = Field(default=None, description="When the run was admitted.")
    finished_at: datetime | None = Field(
        default=None, description="When the job reached Succeeded, Failed or Cancelled."
    )
    cancel: CancelStatus | None = Field(
        default=None, description="The pending cancel request, if any."
    )
    outputs: Outputs | None = Field(default=None, description="Where the results were written.")
    metrics: Metrics | None = Field(default=None, description="Quality and size of the result.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the operator last acted on."
    )

    def condition(self, type_: str) -> Condition | None:
        """The condition of one type, if set."""
        for cond in self.conditions or ():
            if cond.type == type_:
                return cond
        return None


class ReconJob(ApiModel):
    """A ReconJob resource as read from the API server."""

    api_version: str = Field(default="recon.dev/v1alpha1", alias="apiVersion")
    kind: str = Field(default="ReconJob")
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ReconJobSpec
    status: ReconJobStatus = Field(default_factory=ReconJobStatus)

    @property
    def uid(self) -> str:
        return str(self.metadata.get("uid", ""))

    def output_bucket(self) -> str:
        return self.spec.output_bucket()

    def output_prefix(self) -> str:
        return self.spec.output_prefix(self.uid)
