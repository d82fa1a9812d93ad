"""Silhouette antialiasing: coverage-like edges, and gradients for the silhouette's position."""

import torch
from recon_runner.render import get_renderer
from recon_runner.render.torch_antialias import edge_neighbours

R = get_renderer("torch")
SIZE = 64


def _triangle(offset_x: float = 0.0) -> torch.Tensor:
    return torch.tensor(
        [[-0.71 + offset_x, -0.63, 0.0, 1.0], [0.77 + offset_x, -0.41, 0.0, 1.0],
         [-0.23 + offset_x, 0.83, 0.0, 1.0]],
        dtype=torch.float64,
    )  # fmt: skip


TRI = torch.tensor([[0, 1, 2]], dtype=torch.int32)


def _area_pixels(pos: torch.Tensor) -> torch.Tensor:
    s = pos[:, :2] / pos[:, 3:] * (SIZE / 2)
    e1, e2 = s[1] - s[0], s[2] - s[0]
    return 0.5 * torch.abs(e1[0] * e2[1] - e1[1] * e2[0])


def _mask(pos: torch.Tensor, antialiased: bool) -> torch.Tensor:
    rast = R.rasterize(pos, TRI, (SIZE, SIZE))
    ones = R.interpolate(torch.ones(3, 1, dtype=pos.dtype), rast, TRI)
    return R.antialias(ones, rast, pos, TRI) if antialiased else ones


def test_edges_blend_towards_true_coverage():
    pos = _triangle()
    hard, soft = _mask(pos, False), _mask(pos, True)
    area = _area_pixels(pos).item()
    assert abs(soft.sum().item() - area) < 0.25 * abs(hard.sum().item() - area) + 1.0
    assert ((soft > 0) & (soft < 1)).sum() > 40  # the edge pixels are fractional
    assert soft.min() >= 0 and soft.max() <= 1


def test_mask_loss_moves_the_silhouette_like_the_area_does():
    pos = _triangle().requires_grad_(True)
    _mask(pos, True).sum().backward()
    analytic = pos.detach().clone().requires_grad_(True)
    _area_pixels(analytic).backward()
    assert pos.grad is not None and analytic.grad is not None
    got, want = pos.grad[:, :2], analytic.grad[:, :2]
    assert torch.nn.functional.cosine_similarity(got.flatten(), want.flatten(), dim=0) > 0.97
    torch.testing.assert_close(got.norm(), want.norm(), rtol=0.15, atol=0.0)
    # Without antialiasing the mask says nothing about where the edge is.
    hard_pos = _triangle().requires_grad_(True)
    hard = _mask(hard_pos, False).sum()
    assert not hard.requires_grad or torch.autograd.grad(hard, hard_pos)[0].abs().max() == 0


def test_edges_inside_a_surface_do_not_blend():
    pos = torch.tensor(
        [[-0.6, -0.6, 0.0, 1.0], [0.6, -0.6, 0.0, 1.0], [0.6, 0.6, 0.0, 1.0], [-0.6, 0.6, 0.0, 1.0]]
    )
    quad = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    rast = R.rasterize(pos, quad, (SIZE, SIZE))
    face_colour = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    color = face_colour[(rast[..., 3].long() - 1).clamp(min=0)] * (rast[..., 3:] > 0)
    out = R.antialias(color, rast, pos, quad)
    # Pixels whose four neighbours are all on the quad see only the internal diagonal, where
    # the colour jumps but the surface continues: they must be left as they are.
    interior = _away_from_border(rast)
    faces_seen = rast[0, ..., 3][interior].unique()
    assert faces_seen.tolist() == [1.0, 2.0]
    torch.testing.assert_close(out[0][interior], color[0][interior])
    assert not torch.equal(out, color)  # while the outer silhouette is blended


def _away_from_border(rast: torch.Tensor) -> torch.Tensor:
    covered = rast[0, ..., 3] > 0
    shrunk = covered.clone()
    shrunk[1:] &= covered[:-1]
    shrunk[:-1] &= covered[1:]
    shrunk[:, 1:] &= covered[:, :-1]
    shrunk[:, :-1] &= covered[:, 1:]
    return shrunk


def test_edge_neighbours_of_a_quad():
    quad = torch.tensor([[0, 1, 2], [0, 2, 3]])
    # Face 0's edge 1-2... its edge (2, 0) is shared with face 1's edge (0, 2).
    assert edge_neighbours(quad).tolist() == [[-1, -1, 1], [0, -1, -1]]
