"""Presets and overrides: what a ReconJob's reconstruction fields mean to the runner."""

from __future__ import annotations

import pytest
import torch
from recon_api.constants import MeshFormat, Preset
from recon_api.runner_params import RunnerParams
from recon_runner.config import (
    PRESETS,
    DeviceUnavailableError,
    config_for,
    config_from_params,
    resolve_device,
    seed_everything,
)


def test_presets_trade_time_for_quality() -> None:
    draft, standard, high = (PRESETS[p] for p in (Preset.DRAFT, Preset.STANDARD, Preset.HIGH))
    for field in ("grid_resolution", "iterations", "texture_size", "face_budget"):
        assert getattr(draft, field) <= getattr(standard, field) <= getattr(high, field)
    assert draft.grid_resolution < high.grid_resolution


def test_explicit_fields_override_the_preset() -> None:
    config = config_for("draft", grid_resolution=200, iterations=7, texture_size=256, seed=5)
    assert config.preset is Preset.DRAFT
    assert (config.grid_resolution, config.iterations, config.texture_size, config.seed) == (
        200,
        7,
        256,
        5,
    )
    # Fields not given keep the preset's value.
    assert config.face_budget == PRESETS[Preset.DRAFT].face_budget


def test_from_runner_params() -> None:
    params = RunnerParams(
        job_name="j",
        job_namespace="ns",
        job_uid="u",
        input_bucket="in",
        input_prefix="p/",
        expected_views=6,
        output_bucket="out",
        output_prefix="o/",
        storage_endpoint="minio:9000",
        formats=(MeshFormat.GLB, MeshFormat.PLY),
        preset=Preset.HIGH,
        iterations=11,
        seed=3,
        device="cpu",
        bounds=((-1.0, -1.0, 0.0), (1.0, 1.0, 2.0)),
    )
    config = config_from_params(params)
    assert config.bounds == ((-1.0, -1.0, 0.0), (1.0, 1.0, 2.0))
    assert config.preset is Preset.HIGH
    assert config.iterations == 11 and config.seed == 3 and config.device == "cpu"
    assert config.grid_resolution == PRESETS[Preset.HIGH].grid_resolution
    assert config.formats == (MeshFormat.GLB, MeshFormat.PLY)


@pytest.mark.parametrize("bad", [{"grid_resolution": 4}, {"iterations": -1}, {"device": "tpu"}])
def test_rejects_nonsense(bad: dict) -> None:
    with pytest.raises(ValueError):
        config_for("standard", **bad)


def test_device_resolution() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError):
            resolve_device("cuda")


def test_same_seed_same_draws() -> None:
    seed_everything(4)
    a = torch.rand(5)
    seed_everything(4)
    assert torch.equal(a, torch.rand(5))
