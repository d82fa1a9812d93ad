"""The PyTorch rasterizer against nvdiffrast's conventions, on geometry with known answers."""

import numpy as np
import pytest
import torch
from recon_runner.camera import Camera, backproject, clip_matrix, look_at, to_clip
from recon_runner.render import get_renderer

R = get_renderer("torch")


def _ndc_centres(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:h, 0:w]
    return (2 * cols + 1) / w - 1, (2 * rows + 1) / h - 1


def test_triangle_covers_exactly_the_pixel_centres_inside_it():
    pos = torch.tensor([[-1.0, -1.0, 0.0, 1.0], [1.0, -1.0, 0.0, 1.0], [-1.0, 1.0, 0.0, 1.0]])
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    rast = R.rasterize(pos, tri, (8, 10))
    assert rast.shape == (1, 8, 10, 4)
    nx, ny = _ndc_centres(8, 10)
    inside = nx + ny < 0
    off_edge = np.abs(nx + ny) > 1e-6
    covered = rast[0, ..., 3].numpy() == 1
    np.testing.assert_array_equal(covered[off_edge], inside[off_edge])
    # clip y = -1 is row 0: the corner at (-1, -1) is the top-left pixel.
    assert covered[0, 0] and not covered[-1, -1]
    assert (rast[0][~torch.from_numpy(covered)] == 0).all()


def test_barycentrics_and_depth_of_an_affine_triangle():
    pos = torch.tensor([[-1.0, -1.0, -0.5, 1.0], [3.0, -1.0, 0.5, 1.0], [-1.0, 3.0, 0.0, 1.0]])
    rast = R.rasterize(pos, torch.tensor([[0, 1, 2]], dtype=torch.int32), (4, 4))[0]
    nx, ny = _ndc_centres(4, 4)
    # Solve for the weights of vertices 1 and 2 directly (w = 1, so screen space is linear).
    b1 = (nx + 1) / 4
    b2 = (ny + 1) / 4
    np.testing.assert_allclose(rast[..., 0].numpy(), 1 - b1 - b2, atol=1e-6)
    np.testing.assert_allclose(rast[..., 1].numpy(), b1, atol=1e-6)
    np.testing.assert_allclose(rast[..., 2].numpy(), -0.5 * (1 - b1 - b2) + 0.5 * b1, atol=1e-6)


def test_nearest_surface_wins_whatever_the_draw_order():
    near = [[-1.0, -1.0, -0.2, 1.0], [1.0, -1.0, -0.2, 1.0], [-1.0, 1.0, -0.2, 1.0]]
    far = [[-1.0, -1.0, 0.3, 1.0], [1.0, -1.0, 0.3, 1.0], [1.0, 1.0, 0.3, 1.0]]
    for first, second, near_id in ((near, far, 1), (far, near, 2)):
        pos = torch.tensor(first + second)
        tri = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)
        ids = R.rasterize(pos, tri, (16, 16))[0, ..., 3]
        nx, ny = _ndc_centres(16, 16)
        both = (nx + ny < -0.1) & (nx > ny + 0.1)  # strictly inside both triangles
        assert (ids.numpy()[both] == near_id).all()


def test_fragments_outside_the_depth_range_are_clipped():
    pos = torch.tensor([[-1.0, -1.0, 1.5, 1.0], [1.0, -1.0, 1.5, 1.0], [-1.0, 1.0, 1.5, 1.0]])
    rast = R.rasterize(pos, torch.tensor([[0, 1, 2]], dtype=torch.int32), (8, 8))
    assert (rast == 0).all()


def _tilted_quad() -> tuple[Camera, torch.Tensor, torch.Tensor, torch.Tensor]:
    cam = Camera(70.0, 70.0, 32.0, 32.0, 64, 64, look_at([0.4, -2.0, 1.2], [0.0, 0.0, 0.0]))
    verts = torch.tensor(
        [[-0.6, -0.5, -0.3], [0.6, -0.5, 0.1], [0.6, 0.5, 0.3], [-0.6, 0.5, -0.1]],
        dtype=torch.float64,
    )
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    mat = torch.tensor(clip_matrix(cam, 0.5, 6.0)).unsqueeze(0)
    return cam, verts, faces, mat


def test_interpolated_world_position_lies_on_each_pixel_ray():
    """Perspective-correct interpolation: a pixel's interpolated surface point projects
    back to the pixel centre, and a constant attribute stays constant."""
    cam, verts, faces, mat = _tilted_quad()
    pos = to_clip(verts, mat)
    rast = R.rasterize(pos, faces, (cam.height, cam.width))
    covered = rast[0, ..., 3] > 0
    assert covered.sum() > 500
    attrs = torch.cat([verts, torch.full((4, 1), 7.0, dtype=torch.float64)], dim=1)
    out = R.interpolate(attrs, rast, faces)[0]
    np.testing.assert_allclose(out[..., 3][covered].numpy(), 7.0, atol=1e-9)
    assert (out[~covered] == 0).all()
    rows, cols = torch.nonzero(covered, as_tuple=True)
    world = out[rows, cols, :3].numpy()
    from recon_runner.camera import project

    pixels, _ = project(cam, world)
    np.testing.assert_allclose(pixels[:, 0], cols.numpy() + 0.5, atol=1e-6)
    np.testing.assert_allclose(pixels[:, 1], rows.numpy() + 0.5, atol=1e-6)
    # And it is the same point a depth map would give back.
    depth = -(world @ cam.w2c[:3, :3].T + cam.w2c[:3, 3])[:, 2]
    again = backproject(cam, pixels, depth)
    np.testing.assert_allclose(again, world, atol=1e-9)


def test_gradients_match_finite_differences():
    cam, verts, faces, mat = _tilted_quad()
    colours = torch.tensor(
        [[0.1, 0.9], [0.8, 0.3], [0.5, 0.5], [0.2, 0.1]], dtype=torch.float64, requires_grad=True
    )
    weights = torch.rand(1, cam.height, cam.width, 2, generator=torch.Generator().manual_seed(0))

    def ids(v: torch.Tensor) -> torch.Tensor:
        return R.rasterize(to_clip(v, mat), faces, (cam.height, cam.width))[0, ..., 3]

    # Interior pixels: covered by the same triangle under every perturbation tried below.
    eps = 1e-6
    base = ids(verts)
    stable = base > 0
    for i in range(4):
        for k in range(3):
            for s in (-eps, eps):
                moved = verts.clone()
                moved[i, k] += s
                stable &= ids(moved) == base
    mask = stable.unsqueeze(0).unsqueeze(-1).to(torch.float64)

    def loss(v: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        rast = R.rasterize(to_clip(v, mat), faces, (cam.height, cam.width))
        return (R.interpolate(c, rast, faces) * weights * mask).sum()

    v = verts.clone().requires_grad_(True)
    loss(v, colours).backward()
    assert v.grad is not None and colours.grad is not None
    numeric = torch.zeros_like(verts)
    for i in range(4):
        for k in range(3):
            plus, minus = verts.clone(), verts.clone()
            plus[i, k] += eps
            minus[i, k] -= eps
            with torch.no_grad():
                numeric[i, k] = (loss(plus, colours) - loss(minus, colours)) / (2 * eps)
    torch.testing.assert_close(v.grad, numeric, rtol=1e-4, atol=1e-6)
    assert v.grad.abs().max() > 1e-3
    # Attribute gradient: the loss is linear in the colours.
    with torch.no_grad():
        bumped = colours.clone()
        bumped[2, 0] += 1.0
        delta = loss(verts, bumped) - loss(verts, colours)
    assert colours.grad[2, 0].item() == pytest.approx(delta.item(), rel=1e-9)


def test_batched_views_match_single_views():
    _, verts, faces, mat = _tilted_quad()
    other = torch.tensor(
        clip_matrix(Camera(60.0, 60.0, 32.0, 32.0, 64, 64, look_at([2, 0, 0.5], [0, 0, 0])), 0.5, 6)
    ).unsqueeze(0)
    mats = torch.cat([mat, other])
    batched = R.rasterize(to_clip(verts, mats), faces, (64, 64))
    for b in range(2):
        single = R.rasterize(to_clip(verts, mats[b : b + 1])[0], faces, (64, 64))
        torch.testing.assert_close(batched[b : b + 1], single)
