"""The contract between the operator and the runner: the runner's parameters as environment.

The operator builds a `RunnerParams` from a ReconJob and puts `to_env()` into the Job's pod
template (credentials separately, through secretKeyRef); the runner reads it back with
`from_env()`. Keeping both directions in one place is what keeps the two sides in step.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from recon_api.constants import MeshFormat, Preset

ENV_PREFIX = "RECON_"
ACCESS_KEY_ENV = "RECON_STORAGE_ACCESS_KEY"
SECRET_KEY_ENV = "RECON_STORAGE_SECRET_KEY"


Corner = tuple[float, float, float]
BOUNDS_ENV = "RECON_BOUNDS"


def bounds_to_text(bounds: tuple[Corner, Corner]) -> str:
    """`min_x,min_y,min_z,max_x,max_y,max_z`, each number as repr writes it (exact)."""
    return ",".join(repr(float(v)) for corner in bounds for v in corner)


def bounds_from_text(text: str, name: str = BOUNDS_ENV) -> tuple[Corner, Corner]:
    """The inverse of bounds_to_text, for the environment and `recon run --bounds`."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 6 or not all(math.isfinite(v) for v in values):
        raise RunnerParamsError(
            f"{name}={text!r} must be six numbers: min_x,min_y,min_z,max_x,max_y,max_z"
        )
    lo, hi = (values[0], values[1], values[2]), (values[3], values[4], values[5])
    if not all(a < b for a, b in zip(lo, hi, strict=True)):
        raise RunnerParamsError(f"{name}={text!r}: the minimum must be below the maximum")
    return lo, hi


class RunnerParamsError(ValueError):
    """An environment variable the runner needs is missing or malformed."""


@dataclass(frozen=True)
class RunnerParams:
    job_name: str
    job_namespace: str
    job_uid: str
    input_bucket: str
    input_prefix: str
    expected_views: int
    output_bucket: str
    output_prefix: str
    storage_endpoint: str
    storage_secure: bool = False
    formats: tuple[MeshFormat, ...] = (MeshFormat.GLB,)
    preset: Preset = Preset.STANDARD
    grid_resolution: int | None = None
    iterations: int | None = None
    texture_size: int | None = None
    seed: int = 0
    device: str = "auto"  # auto | cuda | cpu
    close_holes: bool = False
    # spec.reconstruction.bounds as (min, max) corners, in the capture's world frame.
    bounds: tuple[Corner, Corner] | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def to_env(self) -> dict[str, str]:
        env = {
            "RECON_JOB_NAME": self.job_name,
            "RECON_JOB_NAMESPACE": self.job_namespace,
            "RECON_JOB_UID": self.job_uid,
            "RECON_INPUT_BUCKET": self.input_bucket,
            "RECON_INPUT_PREFIX": self.input_prefix,
            "RECON_EXPECTED_VIEWS": str(self.expected_views),
            "RECON_OUTPUT_BUCKET": self.output_bucket,
            "RECON_OUTPUT_PREFIX": self.output_prefix,
            "RECON_OUTPUT_FORMATS": ",".join(f.value for f in self.formats),
            "RECON_STORAGE_ENDPOINT": self.storage_endpoint,
            "RECON_STORAGE_SECURE": "true" if self.storage_secure else "false",
            "RECON_PRESET": self.preset.value,
            "RECON_SEED": str(self.seed),
            "RECON_DEVICE": self.device,
            "RECON_CLOSE_HOLES": "true" if self.close_holes else "false",
        }
        for key, value in (
            ("RECON_GRID_RESOLUTION", self.grid_resolution),
            ("RECON_ITERATIONS", self.iterations),
            ("RECON_TEXTURE_SIZE", self.texture_size),
        ):
            if value is not None:
                env[key] = str(value)
        if self.bounds is not None:
            env[BOUNDS_ENV] = bounds_to_text(self.bounds)
        env.update(self.extra)
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RunnerParams:
        env = os.environ if environ is None else environ

        def need(key: str) -> str:
            value = env.get(key)
            if value is None or value == "":
                raise RunnerParamsError(f"environment variable {key} is not set")
            return value

        def as_int(key: str, value: str) -> int:
            try:
                return int(value)
            except ValueError:
                raise RunnerParamsError(f"{key}={value!r} is not an integer") from None

        def opt_int(key: str) -> int | None:
            value = env.get(key)
            return None if value in (None, "") else as_int(key, value)

        try:
            formats = tuple(
                MeshFormat(f.strip())
                for f in env.get("RECON_OUTPUT_FORMATS", "glb").split(",")
                if f.strip()
            )
            preset = Preset(env.get("RECON_PRESET", Preset.STANDARD.value))
        except ValueError as e:
            raise RunnerParamsError(str(e)) from None
        device = env.get("RECON_DEVICE", "auto")
        if device not in ("auto", "cuda", "cpu"):
            raise RunnerParamsError(f"RECON_DEVICE={device!r} must be auto, cuda or cpu")
        close_holes = env.get("RECON_CLOSE_HOLES", "false").strip().lower()
        if close_holes not in ("true", "false"):
            raise RunnerParamsError(f"RECON_CLOSE_HOLES={close_holes!r} must be true or false")
        return cls(
            job_name=need("RECON_JOB_NAME"),
            job_namespace=need("RECON_JOB_NAMESPACE"),
            job_uid=env.get("RECON_JOB_UID", ""),
            input_bucket=need("RECON_INPUT_BUCKET"),
            input_prefix=env.get("RECON_INPUT_PREFIX", ""),
            expected_views=as_int("RECON_EXPECTED_VIEWS", need("RECON_EXPECTED_VIEWS")),
            output_bucket=need("RECON_OUTPUT_BUCKET"),
            output_prefix=need("RECON_OUTPUT_PREFIX"),
            storage_endpoint=need("RECON_STORAGE_ENDPOINT"),
            storage_secure=env.get("RECON_STORAGE_SECURE", "false").lower() == "true",
            formats=formats or (MeshFormat.GLB,),
            preset=preset,
            grid_resolution=opt_int("RECON_GRID_RESOLUTION"),
            iterations=opt_int("RECON_ITERATIONS"),
            texture_size=opt_int("RECON_TEXTURE_SIZE"),
            seed=as_int("RECON_SEED", env.get("RECON_SEED", "0")),
            device=device,
            close_holes=close_holes == "true",
            bounds=bounds_from_text(env[BOUNDS_ENV]) if env.get(BOUNDS_ENV) else None,
        )
