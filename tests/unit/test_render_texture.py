import pytest
import torch
from recon_runner.render import get_renderer

R = get_renderer("torch")


def _tex() -> torch.Tensor:
    # 2 rows x 4 columns, one channel: value = 10*row + column.
    return torch.tensor([[0.0, 1.0, 2.0, 3.0], [10.0, 11.0, 12.0, 13.0]]).reshape(1, 2, 4, 1)


def _at(u: float, v: float) -> torch.Tensor:
    return torch.tensor([u, v]).reshape(1, 1, 1, 2)


def test_texel_centres_return_the_texel_and_v_indexes_rows_from_the_top():
    tex = _tex()
    assert R.texture(tex, _at(0.125, 0.25)).item() == pytest.approx(0.0)
    assert R.texture(tex, _at(0.625, 0.25)).item() == pytest.approx(2.0)
    assert R.texture(tex, _at(0.375, 0.75)).item() == pytest.approx(11.0)


def test_bilinear_between_centres_and_nearest_snaps():
    tex = _tex()
    assert R.texture(tex, _at(0.25, 0.5)).item() == pytest.approx((0 + 1 + 10 + 11) / 4)
    assert R.texture(tex, _at(0.26, 0.3), filter_mode="nearest").item() == pytest.approx(1.0)


def test_boundary_modes():
    tex = _tex()
    # Half a texel left of column 0's centre: wrap blends with the last column, clamp does not.
    assert R.texture(tex, _at(0.0, 0.25)).item() == pytest.approx(1.5)
    assert R.texture(tex, _at(0.0, 0.25), boundary_mode="clamp").item() == pytest.approx(0.0)
    assert R.texture(tex, _at(-0.125, 0.25), boundary_mode="zero").item() == pytest.approx(0.0)


def test_gradients_reach_texels_and_coordinates():
    tex = _tex().clone().requires_grad_(True)
    uv = _at(0.3, 0.4).clone().requires_grad_(True)
    R.texture(tex, uv).sum().backward()
    assert tex.grad is not None and uv.grad is not None
    assert tex.grad.sum().item() == pytest.approx(1.0)
    # Moving right by one texel width adds one (columns step by 1); down by a row adds 10.
    assert uv.grad[0, 0, 0, 0].item() == pytest.approx(4.0)
    assert uv.grad[0, 0, 0, 1].item() == pytest.approx(20.0)


def test_one_texture_serves_a_batch():
    uv = torch.cat([_at(0.125, 0.25), _at(0.875, 0.75)])
    out = R.texture(_tex(), uv)
    assert out.flatten().tolist() == pytest.approx([0.0, 13.0])
