"""Reconstruction settings: a preset, then the few fields a ReconJob may override.

Presets trade time for quality in one place so the CLI, the pod and the benchmark agree on
what `draft`, `standard` and `high` mean. Only `grid_resolution`, `iterations`,
`texture_size` and `seed` are user-facing (they are spec fields); the rest are tuning.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace

import numpy as np
import torch
from recon_api.constants import MeshFormat, Preset
from recon_api.runner_params import RunnerParams

from recon_runner.stages.capture import Bounds

DEVICES = ("auto", "cuda", "cpu")


class DeviceUnavailableError(RuntimeError):
    """`cuda` was asked for on a machine without a usable CUDA device."""


@dataclass(frozen=True, kw_only=True)
class ReconConfig:
    preset: Preset
    # Fusion: voxels along the longest side of the capture's bounding box.
    grid_resolution: int
    # Faces kept after marching cubes; refinement cost grows with it.
    face_budget: int
    # Refinement: Adam steps on vertex positions, at `refine_resolution` pixels (longest
    # image side; the capture is downsampled, never upsampled).
    iterations: int
    refine_resolution: int
    # Views rendered per step, cycling through the capture: a third of the views per step
    # costs a third as much and converges almost as well.
    refine_views_per_step: int
    refine_lr: float
    # Weights of the refinement loss terms (depth in units of the voxel size); the presets
    # share all but the colour weight.
    depth_weight: float = 1.0
    mask_weight: float = 1.0
    colour_weight: float
    laplacian_weight: float = 0.1
    normal_weight: float = 0.5
    smoothing: float = 2.0
    # Texture: atlas size in texels and Adam steps optimising it through the renderer.
    texture_size: int
    # xatlas chart growing passes: 0 is about twice as fast as 1 on large meshes.
    chart_iterations: int
    texture_iterations: int
    texture_resolution: int
    texture_lr: float = 0.001
    # Pose refinement: rounds of aligning every view's depth to the fused surface (each
    # followed by fusing again with the corrected poses; 0 keeps the given poses), then
    # whether `refine` corrects the cameras further with the geometry, at these Adam steps
    # (radians, voxels). Views that already agree are left as given (pose_refine).
    pose_rounds: int = 2
    refine_poses: bool = True
    pose_rotation_lr: float = 2e-4
    pose_translation_lr: float = 0.03
    seed: int = 0
    device: str = "auto"
    formats: tuple[MeshFormat, ...] = (MeshFormat.GLB,)
    # Keep the unobserved surface, on a membrane spanned by the observed border, and mark it
    # as fill (spec.reconstruction.closeHoles); by default it is removed.
    close_holes: bool = False
    # spec.reconstruction.bounds / `--bounds`: the object's box in the capture's world
    # frame, (min corner, max corner); None: everything the depth measures.
    bounds: Bounds | None = None

    def overridden(
        self,
        *,
        grid_resolution: int | None = None,
        iterations: int | None = None,
        texture_size: int | None = None,
        seed: int | None = None,
        device: str | None = None,
        formats: tuple[MeshFormat, ...] | None = None,
        close_holes: bool | None = None,
        bounds: Bounds | None = None,
    ) -> ReconConfig:
        """Apply the explicit fields a user set; `None` keeps the preset's value."""
        changes: dict[str, object] = {
            key: value
            for key, value in (
                ("grid_resolution", grid_resolution),
                ("iterations", iterations),
                ("texture_size", texture_size),
                ("seed", seed),
                ("device", device),
                ("formats", formats),
                ("close_holes", close_holes),
                ("bounds", bounds),
            )
            if value is not None
        }
        config = replace(self, **changes)  # type: ignore[arg-type]
        config.validate()
        return config

    def validate(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device {self.device!r} must be one of {', '.join(DEVICES)}")
        for name in ("grid_resolution", "texture_size", "refine_resolution", "face_budget"):
            if getattr(self, name) < 16:
                raise ValueError(f"{name} must be at least 16, got {getattr(self, name)}")
        for name in ("iterations", "texture_iterations", "pose_rounds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if not self.formats:
            raise ValueError("at least one output format is needed")
        if self.bounds is not None and not all(
            lo < hi for lo, hi in zip(*self.bounds, strict=True)
        ):
            raise ValueError(f"bounds {self.bounds}: the minimum must be below the maximum")


PRESETS: dict[Preset, ReconConfig] = {
    Preset.DRAFT: ReconConfig(
        preset=Preset.DRAFT,
        grid_resolution=128,
        face_budget=12_000,
        iterations=15,
        refine_resolution=128,
        refine_views_per_step=2,
        refine_lr=0.3,
        colour_weight=0.0,
        pose_rounds=1,
        refine_poses=False,
        texture_size=512,
        chart_iterations=0,
        texture_iterations=0,
        texture_resolution=256,
    ),
    Preset.STANDARD: ReconConfig(
        preset=Preset.STANDARD,
        grid_resolution=192,
        face_budget=30_000,
        iterations=60,
        refine_resolution=256,
        refine_views_per_step=2,
        refine_lr=0.2,
        colour_weight=0.05,
        texture_size=1024,
        chart_iterations=0,
        texture_iterations=20,
        texture_resolution=512,
    ),
    Preset.HIGH: ReconConfig(
        preset=Preset.HIGH,
        grid_resolution=256,
        face_budget=100_000,
        iterations=200,
        refine_resolution=512,
        refine_views_per_step=3,
        refine_lr=0.2,
        colour_weight=0.05,
        texture_size=2048,
        chart_iterations=1,
        texture_iterations=60,
        texture_resolution=1024,
    ),
}


def config_for(
    preset: Preset | str = Preset.STANDARD,
    *,
    grid_resolution: int | None = None,
    iterations: int | None = None,
    texture_size: int | None = None,
    seed: int | None = None,
    device: str | None = None,
    formats: tuple[MeshFormat, ...] | None = None,
    close_holes: bool | None = None,
    bounds: Bounds | None = None,
) -> ReconConfig:
    """The preset with the user's explicit fields on top."""
    return PRESETS[Preset(preset)].overridden(
        grid_resolution=grid_resolution,
        iterations=iterations,
        texture_size=texture_size,
        seed=seed,
        device=device,
        formats=formats,
        close_holes=close_holes,
        bounds=bounds,
    )


def config_from_params(params: RunnerParams) -> ReconConfig:
    """The pod's configuration, from the environment contract the operator fills in."""
    return config_for(
        params.preset,
        grid_resolution=params.grid_resolution,
        iterations=params.iterations,
        texture_size=params.texture_size,
        seed=params.seed,
        device=params.device,
        formats=params.formats,
        close_holes=params.close_holes,
        bounds=params.bounds,
    )


def resolve_device(requested: str) -> torch.device:
    """`auto` prefers CUDA; an explicit `cuda` without a GPU is an error, not a silent
    fallback, because the user asked for the production path on purpose."""
    if requested == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise DeviceUnavailableError("--device cuda was requested but CUDA is not available")
    if requested not in DEVICES:
        raise ValueError(f"device {requested!r} must be one of {', '.join(DEVICES)}")
    return torch.device("cuda" if available else "cpu")


def seed_everything(seed: int) -> None:
    """Same seed, same machine, same mesh: seed every generator the stages draw from and
    ask torch for deterministic kernels where it has them (warn, never fail, where not)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
