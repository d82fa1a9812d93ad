"""Reconstruction settings: a preset of per-stage settings, then the fields a user may set.

Each stage keeps the typed settings it reads beside it (`FusionConfig`, `PoseConfig`,
`RefineConfig`, `TextureConfig`, `SelectionConfig`); a preset composes them, so the CLI,
the pod and the benchmarks agree on what `draft`, `standard` and `high` mean. A user
(spec.reconstruction, `recon run` flags, the pod's environment) sets only the fields of
`USER_SETTINGS`; each names the stage field it lands on and the bound of
`recon_api.setting_limits` it must keep, so the runner refuses what the API refuses. The
rest is tuning.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from recon_api.constants import MeshFormat, Preset
from recon_api.runner_params import RunnerParams
from recon_api.setting_limits import GRID_RESOLUTION, ITERATIONS, SEED, TEXTURE_SIZE, Limit

from recon_runner.stages.capture import Bounds
from recon_runner.stages.fusion import FusionConfig
from recon_runner.stages.pose_refine import PoseConfig
from recon_runner.stages.refine import RefineConfig, RefineWeights
from recon_runner.stages.texture import TextureConfig
from recon_runner.stages.view_selection import SelectionConfig

DEVICES = ("auto", "cuda", "cpu")


class DeviceUnavailableError(RuntimeError):
    """`cuda` was asked for on a machine without a usable CUDA device."""


@dataclass(frozen=True)
class UserSetting:
    """A preset value a user may override: where it lands and what bounds it."""

    stage: str  # the ReconConfig field holding the stage's settings
    field: str  # the field of that stage's config
    limit: Limit


# The integer settings a ReconJob, `recon run` and the pod's environment may override, by
# their Python name (spec.reconstruction's camelCase is `limit.field`).
USER_SETTINGS: dict[str, UserSetting] = {
    "grid_resolution": UserSetting("fusion", "grid_resolution", GRID_RESOLUTION),
    "iterations": UserSetting("refine", "iterations", ITERATIONS),
    "texture_size": UserSetting("texture", "size", TEXTURE_SIZE),
}


@dataclass(frozen=True, kw_only=True)
class ReconConfig:
    preset: Preset
    fusion: FusionConfig
    poses: PoseConfig
    refine: RefineConfig
    texture: TextureConfig
    views: SelectionConfig
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
        seed: int | None = None,
        device: str | None = None,
        formats: tuple[MeshFormat, ...] | None = None,
        close_holes: bool | None = None,
        bounds: Bounds | None = None,
        **settings: int | None,
    ) -> ReconConfig:
        """Apply the explicit fields a user set (`settings`: names of `USER_SETTINGS`);
        `None` keeps the preset's value."""
        unknown = sorted(set(settings) - set(USER_SETTINGS))
        if unknown:
            raise TypeError(f"not a user setting: {', '.join(unknown)}")
        stages: dict[str, Any] = {}
        for name, value in settings.items():
            if value is None:
                continue
            setting = USER_SETTINGS[name]
            stage = stages.get(setting.stage, getattr(self, setting.stage))
            stages[setting.stage] = replace(stage, **{setting.field: setting.limit.check(value)})
        run_fields: dict[str, Any] = {
            key: value
            for key, value in (
                ("seed", None if seed is None else SEED.check(seed)),
                ("device", device),
                ("formats", formats),
                ("close_holes", close_holes),
                ("bounds", bounds),
            )
            if value is not None
        }
        config = replace(self, **stages, **run_fields)
        config.validate()
        return config

    def validate(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device {self.device!r} must be one of {', '.join(DEVICES)}")
        for name, value in (
            ("refine resolution", self.refine.resolution),
            ("texture resolution", self.texture.resolution),
            ("face budget", self.fusion.face_budget),
        ):
            if value < 16:
                raise ValueError(f"{name} must be at least 16, got {value}")
        for name, value in (
            ("texture iterations", self.texture.iterations),
            ("pose rounds", self.poses.rounds),
        ):
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if self.views.limit < 1:
            raise ValueError(f"working views must be at least 1, got {self.views.limit}")
        if not self.formats:
            raise ValueError("at least one output format is needed")
        if self.bounds is not None and not all(
            lo < hi for lo, hi in zip(*self.bounds, strict=True)
        ):
            raise ValueError(f"bounds {self.bounds}: the minimum must be below the maximum")


PRESETS: dict[Preset, ReconConfig] = {
    Preset.DRAFT: ReconConfig(
        preset=Preset.DRAFT,
        fusion=FusionConfig(grid_resolution=128, face_budget=12_000),
        poses=PoseConfig(rounds=1, jointly=False),
        refine=RefineConfig(
            iterations=15,
            resolution=128,
            views_per_step=2,
            learning_rate=0.3,
            weights=RefineWeights(colour=0.0),
        ),
        texture=TextureConfig(size=512, iterations=0, resolution=256, chart_iterations=0),
        views=SelectionConfig(limit=12),
    ),
    Preset.STANDARD: ReconConfig(
        preset=Preset.STANDARD,
        fusion=FusionConfig(grid_resolution=192, face_budget=30_000),
        poses=PoseConfig(),
        refine=RefineConfig(
            iterations=60,
            resolution=256,
            views_per_step=2,
            learning_rate=0.2,
            weights=RefineWeights(colour=0.05),
        ),
        texture=TextureConfig(size=1024, iterations=20, resolution=512, chart_iterations=0),
        views=SelectionConfig(limit=24),
    ),
    Preset.HIGH: ReconConfig(
        preset=Preset.HIGH,
        fusion=FusionConfig(grid_resolution=256, face_budget=100_000),
        poses=PoseConfig(),
        refine=RefineConfig(
            iterations=200,
            resolution=512,
            views_per_step=3,
            learning_rate=0.2,
            weights=RefineWeights(colour=0.05),
        ),
        texture=TextureConfig(size=2048, iterations=60, resolution=1024, chart_iterations=1),
        views=SelectionConfig(limit=48),
    ),
}


def config_for(
    preset: Preset | str = Preset.STANDARD,
    *,
    seed: int | None = None,
    device: str | None = None,
    formats: tuple[MeshFormat, ...] | None = None,
    close_holes: bool | None = None,
    bounds: Bounds | None = None,
    **settings: int | None,
) -> ReconConfig:
    """The preset with the user's explicit fields on top (`settings`: `USER_SETTINGS`)."""
    return PRESETS[Preset(preset)].overridden(
        seed=seed,
        device=device,
        formats=formats,
        close_holes=close_holes,
        bounds=bounds,
        **settings,
    )


def config_from_params(params: RunnerParams) -> ReconConfig:
    """The pod's configuration, from the environment contract the operator fills in."""
    return config_for(
        params.preset,
        seed=params.seed,
        device=params.device,
        formats=params.formats,
        close_holes=params.close_holes,
        bounds=params.bounds,
        **{name: getattr(params, name) for name in USER_SETTINGS},
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
