"""What a run measured: metrics.json, and the headline of it that `status.metrics` shows.

The runner writes metrics.json next to the mesh and copies its headline figures into the
ReconJob's `status.metrics` (`models.Metrics`, the CRD's schema). Both are built from the
one `RunMetrics` here, so a number has one name, one unit and one meaning in both places;
each field's description is what the number means (README's outputs section points here).
`headline` is the only way from the one to the other, so the status can never show a
figure the file does not hold, under another name.
"""

from __future__ import annotations

import math

from pydantic import Field

from recon_api.models import ApiModel, Metrics


class PoseCorrection(ApiModel):
    """How far refinement moved one view's camera from the pose the capture gave."""

    view: str = Field(description="The view's colour image, as transforms.json names it.")
    rotation_deg: float = Field(ge=0, description="Rotation of the correction, in degrees.")
    translation_m: float = Field(ge=0, description="How far the camera centre moved, in metres.")
    transform_matrix: list[list[float]] = Field(
        description="The refined camera-to-world matrix, in transforms.json's convention."
    )


class RunMetrics(ApiModel):
    """metrics.json: the result's size and quality, how it was made, and how long it took."""

    vertices: int = Field(ge=0, description="Vertices in the mesh.")
    faces: int = Field(ge=0, description="Triangles in the mesh.")
    psnr: float = Field(
        description=(
            "Mean PSNR (dB) of the textured mesh re-rendered from every input camera against "
            "the input colour, inside the object's silhouette (infinite if identical)."
        )
    )
    mask_iou: float = Field(
        alias="maskIoU",
        ge=0,
        le=1,
        description="Mean IoU of the re-rendered silhouettes against the input masks.",
    )
    depth_error_mm: float = Field(
        ge=0,
        description="Mean absolute difference of re-rendered and input depth, in millimetres.",
    )
    observed_fraction: float = Field(
        ge=0,
        le=1,
        description=(
            "Share of the mesh's area that some camera observed (depth agreeing with the "
            "surface); 1 unless closeHoles filled something."
        ),
    )
    filled_fraction: float = Field(
        ge=0, le=1, description="Share of the mesh's area that closeHoles filled; 0 by default."
    )
    observed_area_m2: float = Field(ge=0, description="Observed area of the mesh, in m².")
    filled_area_m2: float = Field(ge=0, description="Area closeHoles filled, in m².")
    unobserved_removed_area_m2: float = Field(
        ge=0, description="Area no camera observed, removed from the mesh (default), in m²."
    )
    preset: str = Field(description="The preset the run used: draft, standard or high.")
    grid_resolution: int = Field(ge=1, description="Cells along the fusion grid's longest side.")
    iterations: int = Field(ge=0, description="Refinement steps.")
    texture_size: int = Field(ge=1, description="Side of the texture atlas, in pixels.")
    seed: int = Field(description="Random seed of the run.")
    device: str = Field(description="Where it ran: cuda or cpu.")
    renderer: str = Field(description="The rasterizer: nvdiffrast on a GPU, the CPU one else.")
    voxel_size_mm: float = Field(gt=0, description="Edge of one fusion voxel, in millimetres.")
    views: int = Field(ge=1, description="Views of the capture used.")
    working_views: int = Field(
        ge=1,
        description="Views refinement, the observed-surface test and texturing held: all of "
        "them up to the preset's limit, else those chosen for covering the surface.",
    )
    close_holes: bool = Field(description="Whether unobserved surface was filled (closeHoles).")
    poses_refined: bool = Field(
        description="Whether the views' poses were refined (false when they already agreed)."
    )
    pose_correction_mean_deg: float = Field(
        ge=0, description="Mean rotation of the pose corrections, in degrees."
    )
    pose_correction_max_deg: float = Field(
        ge=0, description="Largest rotation of a pose correction, in degrees."
    )
    pose_correction_mean_m: float = Field(
        ge=0, description="Mean camera-centre move of the pose corrections, in metres."
    )
    pose_correction_max_m: float = Field(
        ge=0, description="Largest camera-centre move of a pose correction, in metres."
    )
    pose_corrections: list[PoseCorrection] = Field(
        default_factory=list, description="Each view's correction, in capture order."
    )
    seconds: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Wall-clock seconds of each pipeline stage, and `total` for the whole pipeline "
            "(status.metrics.seconds: the whole run, in a pod download and upload included)."
        ),
    )

    def total_seconds(self) -> float:
        return self.seconds.get("total", sum(self.seconds.values()))

    def headline(self) -> Metrics:
        """status.metrics: the figures a `kubectl get -o yaml` reader needs, same names and
        units. A value JSON cannot carry (an infinite PSNR) is left out of the status."""
        figures: dict[str, float | int] = {
            "vertices": self.vertices,
            "faces": self.faces,
            "seconds": self.total_seconds(),
            "psnr": self.psnr,
            "maskIoU": self.mask_iou,
            "depthErrorMm": self.depth_error_mm,
            "observedFraction": self.observed_fraction,
            "filledFraction": self.filled_fraction,
        }
        return Metrics.model_validate(
            {k: v for k, v in figures.items() if isinstance(v, int) or math.isfinite(v)}
        )

    def to_document(self) -> dict[str, object]:
        """metrics.json's content: every field, camelCase (an infinite PSNR as JSON's
        `Infinity`, which Python's and JavaScript's readers take)."""
        return self.model_dump(mode="python", by_alias=True)
