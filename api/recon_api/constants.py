"""Public names from DESIGN.md: group, annotations, phases, conditions, stages, exit codes.

Everything here is interface that manifests in Git, dashboards and the runner rely on;
change a value only on purpose and everywhere at once.
"""

from __future__ import annotations

from enum import StrEnum

GROUP = "recon.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ReconJob"
PLURAL = "reconjobs"
SINGULAR = "reconjob"
SHORT_NAMES = ("rj",)

CANCEL_ANNOTATION = f"{GROUP}/cancel"
CANCEL_REQUESTED = "requested"
CANCEL_CONFIRMED = "confirmed"
FINALIZER = f"{GROUP}/cleanup"
# A Secret serves as storage credentials only when it carries this label set to "true".
STORAGE_CREDENTIALS_LABEL = f"{GROUP}/storage-credentials"
# Kueue's own labels: a ReconJob carrying the queue name is admitted by Kueue (its child Job
# carries both labels, Kueue's documented batch/v1 Job integration).
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"


class Phase(StrEnum):
    PENDING = "Pending"
    VALIDATING = "Validating"
    QUEUED = "Queued"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED)


class ConditionType(StrEnum):
    INPUTS_VALID = "InputsValid"
    ADMITTED = "Admitted"
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    CANCEL_REQUESTED = "CancelRequested"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    # kstatus's abnormal-true conditions, read by Flux (see lifecycle.health).
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class Stage(StrEnum):
    DOWNLOAD = "download"
    FUSE = "fuse"
    REFINE = "refine"
    TEXTURE = "texture"
    EXPORT = "export"
    UPLOAD = "upload"


# Each stage's share of status.progress.percent: (start, end).
STAGE_SPANS: dict[Stage, tuple[int, int]] = {
    Stage.DOWNLOAD: (0, 5),
    Stage.FUSE: (5, 25),
    Stage.REFINE: (25, 75),
    Stage.TEXTURE: (75, 90),
    Stage.EXPORT: (90, 95),
    Stage.UPLOAD: (95, 100),
}


class ExitCode:
    """Runner exit codes; the Job's podFailurePolicy keys on them."""

    SUCCESS = 0
    INVALID_INPUT = 3
    TRANSIENT = 75
    TERMINATED = 143


# Pixels per capture image, checked by the operator from PNG headers before admission and by
# the runner before decoding: a plausible header can describe an image that would be decoded
# at gigabyte scale.
MAX_IMAGE_PIXELS = 4096 * 4096


class Preset(StrEnum):
    DRAFT = "draft"
    STANDARD = "standard"
    HIGH = "high"


class MeshFormat(StrEnum):
    GLB = "glb"
    OBJ = "obj"
    PLY = "ply"
