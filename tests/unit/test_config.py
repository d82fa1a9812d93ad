"""Presets and overrides: what a ReconJob's reconstruction fields mean to the runner."""

from __future__ import annotations

import pytest
import torch
from recon_api.constants import MeshFormat, Preset
from recon_api.runner_params import RunnerParams
from recon_api.setting_limits import GRID_RESOLUTION, ITERATIONS, SEED, TEXTURE_SIZE, Limit
from recon_runner.config import (
    PRESETS,
    USER_SETTINGS,
    DeviceUnavailableError,
    config_for,
    config_from_params,
    resolve_device,
    seed_everything,
)


def test_presets_trade_time_for_quality() -> None:
    draft, standard, high = (PRESETS[p] for p in (Preset.DRAFT, Preset.STANDARD, Preset.HIGH))
    for stage, field in (
        ("fusion", "grid_resolution"),
        ("fusion", "face_budget"),
        ("refine", "iterations"),
        ("texture", "size"),
    ):
        values = [getattr(getattr(p, stage), field) for p in (draft, standard, high)]
        assert values == sorted(values), (stage, field)
    assert draft.fusion.grid_resolution < high.fusion.grid_resolution


def test_explicit_fields_override_the_preset() -> None:
    config = config_for("draft", grid_resolution=200, iterations=7, texture_size=256, seed=5)
    assert config.preset is Preset.DRAFT
    assert config.fusion.grid_resolution == 200
    assert config.refine.iterations == 7
    assert config.texture.size == 256
    assert config.seed == 5
    # Fields not given keep the preset's value.
    draft = PRESETS[Preset.DRAFT]
    assert config.fusion.face_budget == draft.fusion.face_budget
    assert config.refine.resolution == draft.refine.resolution


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
    assert config.refine.iterations == 11 and config.seed == 3 and config.device == "cpu"
    assert config.fusion.grid_resolution == PRESETS[Preset.HIGH].fusion.grid_resolution
    assert config.formats == (MeshFormat.GLB, MeshFormat.PLY)


@pytest.mark.parametrize("bad", [{"grid_resolution": 4}, {"iterations": -1}, {"device": "tpu"}])
def test_rejects_nonsense(bad: dict) -> None:
    with pytest.raises(ValueError):
        config_for("standard", **bad)


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("grid_resolution", GRID_RESOLUTION),
        ("iterations", ITERATIONS),
        ("texture_size", TEXTURE_SIZE),
    ],
)
def test_the_runner_takes_exactly_what_the_api_takes(name: str, limit: Limit) -> None:
    """The runner's bounds are the ReconJob schema's: the values at each end are taken,
    one past either end is refused with the API's field name."""
    from recon_api.models import ReconstructionSpec

    assert USER_SETTINGS[name].limit is limit
    for value in (limit.minimum, limit.maximum):
        ReconstructionSpec.model_validate({limit.field: value})
        setting = USER_SETTINGS[name]
        stage = getattr(config_for("draft", **{name: value}), setting.stage)
        assert getattr(stage, setting.field) == value
    for value in (limit.minimum - 1, limit.maximum + 1):
        with pytest.raises(ValueError, match=limit.field):
            ReconstructionSpec.model_validate({limit.field: value})
        with pytest.raises(ValueError, match=limit.field):
            config_for("draft", **{name: value})


def test_a_seed_the_api_refuses_is_refused() -> None:
    with pytest.raises(ValueError, match="seed"):
        config_for("draft", seed=SEED.maximum + 1)


def test_a_setting_no_user_may_set_is_not_taken_as_an_override() -> None:
    with pytest.raises(TypeError, match="face_budget"):
        config_for("draft", face_budget=10)


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
