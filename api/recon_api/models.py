"""The ReconJob spec and status as pydantic models: the single source of truth for the API.

The CRD in `crds/` is generated from these classes (`python -m recon_api.crd --write`), so
field descriptions here are what `kubectl explain` shows, and bounds here are what the API
server enforces. The operator and the runner read and write resources through these models.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from recon_api.constants import MeshFormat, Phase, Preset, Stage
from recon_api.setting_limits import GRID_RESOLUTION, ITERATIONS, SEED, TEXTURE_SIZE, Limit

# Kubernetes resource.Quantity, unsigned (a negative cpu or memory request makes no sense):
# a decimal number, then a binary SI suffix (Ki..Ei), a decimal SI suffix (n, u, m, k..E) or a
# decimal exponent. Kubernetes reads the exponent as an integer and builds 10**exponent, so
# a fractional one ("1e1.5") is refused by the Job API and a huge one ("1e100000000") costs
# the API server seconds of CPU and gigabytes of memory: exponents stop at 18, as the SI
# suffixes do (E = 1e18).
QUANTITY_PATTERN = (
    r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)"
    r"([KMGTPE]i|[numkMGTPE]|[eE][+-]?(1[0-8]|[0-9]))?$"
)
MAX_QUANTITY_LENGTH = 32
# Names of buckets as S3/MinIO accept them.
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# An object key prefix: relative, and either empty or ending in "/" so it names a folder.
PREFIX_PATTERN = r"^$|^[^/].*/$"
# DNS-1123 subdomain, the shape of Secret and PriorityClass names.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# host:port, a DNS name or an IP address (IPv6 in brackets). Spelled out in ASCII because
# \s is ASCII whitespace to the API server (Go RE2) but Unicode whitespace to pydantic.
ENDPOINT_PATTERN = r"^[-A-Za-z0-9._:\[\]]+$"
MAX_ENDPOINT_LENGTH = 261  # a 253-character DNS name, ":" and a port

# Label keys (nodeSelector keys, toleration keys) as Kubernetes checks them: an optional
# DNS-subdomain prefix and "/", then a name. The first pattern checks the shape, the second
# the lengths (prefix at most 253, name at most 63); a key must match both.
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_KEY_LENGTHS_PATTERN = r"^([^/]{1,253}/)?[^/]{1,63}$"
MAX_LABEL_KEY_LENGTH = 253 + 1 + 63
# Label values: empty, or up to 63 alphanumerics, "-", "_" and "." that start and end
# alphanumeric.
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
MAX_LABEL_VALUE_LENGTH = 63
MAX_NODE_SELECTOR_LABELS = 64
MAX_TOLERATIONS = 64
LABEL_KEY_RULE = (
    "a label key: an optional DNS subdomain prefix of at most 253 characters and '/', then "
    "a name of at most 63 characters (letters, digits, '-', '_' and '.', starting and "
    "ending with a letter or digit)"
)
LABEL_VALUE_RULE = (
    "a label value: empty, or at most 63 characters (letters, digits, '-', '_' and '.', "
    "starting and ending with a letter or digit)"
)
TOLERATION_SECONDS_RULE = "tolerationSeconds needs effect NoExecute"
EXISTS_VALUE_RULE = "value must be empty when operator is Exists"
EMPTY_KEY_RULE = "operator must be Exists when key is empty (that matches every taint)"

MAX_EXPECTED_VIEWS = 1024
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _cel_string(pattern: str) -> str:
    """A regular expression as a CEL single-quoted string literal."""
    return "'" + pattern.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_label_key(key: str) -> bool:
    return (
        re.fullmatch(LABEL_KEY_PATTERN, key) is not None
        and re.fullmatch(LABEL_KEY_LENGTHS_PATTERN, key) is not None
    )


def _json_integer(value: object) -> object:
    """What the API server takes for an integer: a JSON integer, or a number with no
    fractional part (5.0, 1e3), within int64. Strings and booleans are refused, as the API
    server refuses them."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer, not a fraction")
        value = int(value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("must fit in a 64-bit integer")
    return value


def _quantity_to_str(value: object) -> object:
    # YAML turns `cpu: 4` into an int; Kubernetes accepts an integer (or a number with no
    # fractional part) and a string, so do we. Fractions must be strings ("0.5", "500m").
    if isinstance(value, bool):
        raise ValueError("must be a quantity string or a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError('must be a whole number or a quantity string such as "500m"')
        value = int(value)
    if isinstance(value, int):
        if not 0 <= value <= INT64_MAX:
            raise ValueError(f"must be between 0 and {INT64_MAX}")
        return str(value)
    return value


# Integers and booleans as the API server reads them: no "5" for 5, no "true" for true.
JSON_INTEGER = BeforeValidator(_json_integer)
Int = Annotated[int, JSON_INTEGER]


def _within(limit: Limit) -> Any:
    """The schema bounds of a setting whose range `setting_limits` keeps."""
    return Field(ge=limit.minimum, le=limit.maximum)


Bool = Annotated[bool, Strict()]
Quantity = Annotated[
    str,
    BeforeValidator(_quantity_to_str),
    StringConstraints(pattern=QUANTITY_PATTERN, max_length=MAX_QUANTITY_LENGTH),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "minimum": 0,
            "maxLength": MAX_QUANTITY_LENGTH,
            "pattern": QUANTITY_PATTERN,
        }
    ),
]
LabelValue = Annotated[
    str, StringConstraints(pattern=LABEL_VALUE_PATTERN, max_length=MAX_LABEL_VALUE_LENGTH)
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
    expected_views: Int = Field(
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
    """The S3 endpoint and credentials; each field falls back to the operator's settings.

    The platform decides which storage may be reached: an endpoint it has not allowed, or
    a Secret it has not labelled, is refused before anything connects."""

    endpoint: str | None = Field(
        default=None,
        description=(
            'S3/MinIO endpoint as host:port (e.g. "minio.minio.svc:9000"). '
            "Defaults to the operator's RECON_STORAGE_ENDPOINT. Any other endpoint must "
            "be allowed by the platform (the operator's RECON_STORAGE_ALLOWED_ENDPOINTS, "
            "chart value storage.allowedEndpoints); one that is not fails validation "
            "(InputsValid=False, reason EndpointNotAllowed) before any connection."
        ),
        min_length=1,
        max_length=MAX_ENDPOINT_LENGTH,
        pattern=ENDPOINT_PATTERN,
    )
    secure: Bool | None = Field(
        default=None,
        description=(
            "Use HTTPS. Defaults to the operator's RECON_STORAGE_SECURE. false is refused "
            "(reason InsecureStorageNotAllowed) where the platform sets "
            "RECON_STORAGE_ALLOW_INSECURE=false."
        ),
    )
    credentials_secret: str | None = Field(
        default=None,
        description=(
            "Name of a Secret in the ReconJob's namespace with keys accessKey and secretKey. "
            "Defaults to the operator's RECON_STORAGE_SECRET. The Secret is used only when "
            'labelled recon.dev/storage-credentials: "true"; until then the job waits in '
            "Validating (reason CredentialsNotLabelled)."
        ),
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
    )


# A crop box's coordinates, in the capture's world frame (its units, usually metres): finite
# and within a range no capture's world frame plausibly leaves.
MAX_COORDINATE = 1e6
BOUNDS_RULE = "bounds.min must be below bounds.max on every axis"


def _json_number(value: object) -> object:
    """What the API server takes for a number: a JSON number, never a string or boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


Coordinate = Annotated[
    float, Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE), BeforeValidator(_json_number)
]


class Bounds(ApiModel):
    """An axis-aligned box around the object, in the capture's world frame (the frame of
    transforms.json's camera poses)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.min[0] < self.max[0] && self.min[1] < self.max[1] && "
                    "self.min[2] < self.max[2]",
                    "message": BOUNDS_RULE,
                }
            ]
        }
    )

    min: list[Coordinate] = Field(
        min_length=3, max_length=3, description="The box's lowest corner, [x, y, z]."
    )
    max: list[Coordinate] = Field(
        min_length=3, max_length=3, description="The box's highest corner, [x, y, z]."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if not all(lo < hi for lo, hi in zip(self.min, self.max, strict=True)):
            raise ValueError(BOUNDS_RULE)
        return self

    def corners(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        lo, hi = self.min, self.max
        return (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])


class ReconstructionSpec(ApiModel):
    """Quality settings: a preset, and optional overrides of its individual values."""

    preset: Preset = Field(
        default=Preset.STANDARD,
        description=(
            "Quality preset: draft (fast preview), standard, or high (slow, detailed). "
            "The fields below override single values of the preset."
        ),
    )
    grid_resolution: Annotated[int, _within(GRID_RESOLUTION), JSON_INTEGER] | None = Field(
        default=None,
        description="TSDF voxel grid resolution along the longest side of the object.",
    )
    iterations: Annotated[int, _within(ITERATIONS), JSON_INTEGER] | None = Field(
        default=None,
        description="Mesh refinement iterations (0 skips refinement).",
    )
    texture_size: Annotated[int, _within(TEXTURE_SIZE), JSON_INTEGER] | None = Field(
        default=None,
        description="Texture atlas width and height in pixels.",
    )
    seed: Int = Field(
        default=0,
        ge=SEED.minimum,
        le=SEED.maximum,
        description="Random seed; the same seed and input give the same result.",
    )
    close_holes: bool = Field(
        default=False,
        description=(
            "Close the surface no camera observed with a smooth membrane spanned by the "
            "observed border, coloured from it and marked as fill (a separate GLB primitive), "
            "for a watertight mesh. By default unobserved surface is removed."
        ),
    )
    bounds: Bounds | None = Field(
        default=None,
        description=(
            "Crop box {min: [x, y, z], max: [x, y, z]} around the object, in the capture's "
            "world frame. Where a frame has no mask (no alpha, no mask_path), the object is "
            "what the depth measures inside this box; without a box, everything the depth "
            "measures. Pixels without depth are never taken for background."
        ),
    )


class Toleration(ApiModel):
    """A core/v1 Toleration, copied onto the runner's pod."""

    model_config = ConfigDict(
        json_schema_extra={
            # The cross-field rules of the Pod API, so a toleration the Job would be refused
            # for is refused at `kubectl apply`, naming the field.
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.tolerationSeconds) || "
                    "(has(self.effect) && self.effect == 'NoExecute')",
                    "message": TOLERATION_SECONDS_RULE,
                    "fieldPath": ".tolerationSeconds",
                },
                {
                    "rule": "!has(self.operator) || self.operator != 'Exists' || "
                    "!has(self.value) || self.value == ''",
                    "message": EXISTS_VALUE_RULE,
                    "fieldPath": ".value",
                },
                {
                    "rule": "(has(self.key) && self.key != '') || "
                    "(has(self.operator) && self.operator == 'Exists')",
                    "message": EMPTY_KEY_RULE,
                    "fieldPath": ".operator",
                },
            ]
        }
    )

    key: str | None = Field(
        default=None,
        description="Taint key the toleration applies to (a label key); empty with operator "
        "Exists matches every taint.",
        max_length=MAX_LABEL_KEY_LENGTH,
        pattern=r"^$|" + LABEL_KEY_PATTERN,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self == '' || self.matches({_cel_string(LABEL_KEY_LENGTHS_PATTERN)})",
                    "message": f"must be {LABEL_KEY_RULE}",
                }
            ]
        },
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None,
        description="Exists or Equal (the default).",
    )
    value: str | None = Field(
        default=None,
        description="Taint value to match when operator is Equal (a label value); empty "
        "when operator is Exists.",
        max_length=MAX_LABEL_VALUE_LENGTH,
        pattern=LABEL_VALUE_PATTERN,
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None,
        description="Taint effect to match; empty matches all effects.",
    )
    toleration_seconds: Int | None = Field(
        default=None,
        description="For effect NoExecute only: how long the pod stays bound after the "
        "taint appears.",
        json_schema_extra={"format": "int64"},
    )

    @field_validator("key")
    @classmethod
    def _label_key(cls, key: str | None) -> str | None:
        if key and not _is_label_key(key):
            raise ValueError(f"must be {LABEL_KEY_RULE}")
        return key

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError(TOLERATION_SECONDS_RULE)
        if self.operator == "Exists" and self.value:
            raise ValueError(EXISTS_VALUE_RULE)
        if not self.key and self.operator != "Exists":
            raise ValueError(EMPTY_KEY_RULE)
        return self


class ResourcesSpec(ApiModel):
    """What the runner's pod asks the scheduler for, and where it may run."""

    gpus: Int = Field(
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
    node_selector: dict[str, LabelValue] = Field(
        default_factory=dict,
        description="Node labels the runner's pod must match (label keys and values).",
        max_length=MAX_NODE_SELECTOR_LABELS,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(k, k.matches("
                    + _cel_string(LABEL_KEY_PATTERN)
                    + ") && k.matches("
                    + _cel_string(LABEL_KEY_LENGTHS_PATTERN)
                    + "))",
                    "message": f"every key must be {LABEL_KEY_RULE}",
                }
            ]
        },
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        description="Tolerations for the runner's pod (e.g. for tainted GPU nodes).",
        max_length=MAX_TOLERATIONS,
    )
    priority_class_name: str = Field(
        default="",
        description="PriorityClass for the runner's pod; empty uses the cluster default.",
        max_length=253,
        pattern=r"^$|" + DNS_SUBDOMAIN_PATTERN,
    )

    @field_validator("node_selector")
    @classmethod
    def _label_keys(cls, labels: dict[str, str]) -> dict[str, str]:
        bad = [key for key in labels if not _is_label_key(key)]
        if bad:
            raise ValueError(f"every key must be {LABEL_KEY_RULE}; {bad[0][:80]!r} is not")
        return labels


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
        description=(
            "S3/MinIO connection; every field defaults to the operator's settings. The "
            "endpoint must be one the platform allows (RECON_STORAGE_ALLOWED_ENDPOINTS) and "
            'the credentials Secret labelled recon.dev/storage-credentials: "true".'
        ),
    )
    reconstruction: ReconstructionSpec = Field(
        default_factory=ReconstructionSpec,
        description="Quality preset and overrides.",
    )
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec,
        description="Compute requests and placement of the runner's pod.",
    )
    priority: Int = Field(
        default=0,
        ge=-1_000_000,
        le=1_000_000,
        description="Queue priority: higher runs first; equal priority runs in creation order.",
    )
    timeout_seconds: Int = Field(
        default=3600,
        ge=1,
        le=7 * 24 * 3600,
        description="Wall-clock limit of the run (the Job's activeDeadlineSeconds).",
    )
    retries: Int = Field(
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


# The longest condition message the schema takes.
CONDITION_MESSAGE_MAX = 32768


class Condition(ApiModel):
    """A condition in the Kubernetes API conventions."""

    type: str = Field(
        description=(
            "Condition type: InputsValid, Admitted, Scheduled, Running, CancelRequested, "
            "Succeeded, Failed or Cancelled; and Reconciling (True until the job is queued) "
            "and Stalled (True when it failed, with Failed's reason and message), which "
            "kstatus-based tools such as Flux read."
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
        max_length=CONDITION_MESSAGE_MAX,
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
    observed_fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Fraction of the mesh's area that some camera observed (1 unless closeHoles).",
    )
    filled_fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Fraction of the mesh's area that closeHoles filled (0 by default).",
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
        description=(
            "1-based place in the admission queue; only while Queued. Exact for places 1-10;"
            " further back an upper bound at most 10% above the true place, refreshed when"
            " it drifts further."
        ),
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
        default=None,
        ge=0,
        description="metadata.generation the operator last acted on; set on every write.",
    )


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
