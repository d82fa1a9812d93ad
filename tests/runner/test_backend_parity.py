"""Both backends on the same meshes and cameras: the CPU path must stand in for nvdiffrast."""

import numpy as np
import pytest
import torch
import trimesh
from recon_runner.camera import camera_from_fov, clip_matrix, look_at, scene_near_far, to_clip
from recon_runner.render.nvdiffrast_backend import NvdiffrastRenderer
from recon_runner.render.torch_backend import TorchRenderer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA for nvdiffrast"),
]


def _meshes() -> dict[str, trimesh.Trimesh]:
    return {
        "sphere": trimesh.creation.icosphere(subdivisions=4, radius=0.5),
        "torus": trimesh.creation.torus(0.45, 0.15, major_sections=96, minor_sections=32),
        "box": trimesh.creation.box(extents=(0.8, 0.5, 0.3)),
    }


def _clip_matrices(size: int) -> torch.Tensor:
    mats = []
    for k in range(6):
        angle = 2 * np.pi * k / 6
        eye = [2.0 * np.cos(angle), 2.0 * np.sin(angle), 0.7 * (-1) ** k]
        cam = camera_from_fov(40.0, size, size, look_at(eye, [0.0, 0.0, 0.0]))
        mats.append(clip_matrix(cam, *scene_near_far(cam, [-0.7] * 3, [0.7] * 3)))
    return torch.tensor(np.stack(mats), dtype=torch.float32)


@pytest.mark.parametrize("name", ["sphere", "torus", "box"])
@pytest.mark.parametrize("size", [256, 512])
def test_triangle_ids_and_attributes_agree(name, size):
    mesh = _meshes()[name]
    verts = torch.tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.tensor(mesh.faces, dtype=torch.int32)
    pos = to_clip(verts, _clip_matrices(size))
    attr = torch.cat(
        [verts, torch.rand(len(verts), 2, generator=torch.Generator().manual_seed(0))], 1
    )

    cpu, gpu = TorchRenderer("cpu"), NvdiffrastRenderer("cuda")
    rast_c = cpu.rasterize(pos, faces, (size, size))
    rast_g = gpu.rasterize(pos.cuda(), faces.cuda(), (size, size))
    ids_c, ids_g = rast_c[..., 3], rast_g[..., 3].cpu()
    agree = (ids_c == ids_g).float().mean().item()
    assert agree >= 0.995, f"triangle ids agree on {agree:.4%} of pixels"

    # Attributes compared where both saw the same triangle; the rest are the edge pixels.
    out_c = cpu.interpolate(attr, rast_c, faces)
    out_g = gpu.interpolate(attr.cuda(), rast_g, faces.cuda()).cpu()
    same = (ids_c == ids_g) & (ids_c > 0)
    diff = (out_c - out_g).abs()[same].max().item()
    assert diff <= 1e-4, f"interpolated attributes differ by up to {diff:.2e}"


def test_gradients_agree():
    mesh = _meshes()["sphere"]
    faces = torch.tensor(mesh.faces, dtype=torch.int32)
    mats = _clip_matrices(128)
    grads = []
    for renderer, device in ((TorchRenderer("cpu"), "cpu"), (NvdiffrastRenderer("cuda"), "cuda")):
        verts = torch.tensor(mesh.vertices, dtype=torch.float32, device=device, requires_grad=True)
        pos = to_clip(verts, mats.to(device))
        rast = renderer.rasterize(pos, faces.to(device), (128, 128))
        out = renderer.interpolate(verts * verts, rast, faces.to(device))
        out.sum().backward()
        assert verts.grad is not None
        grads.append(verts.grad.cpu())
    scale = grads[1].abs().max().item()
    assert (grads[0] - grads[1]).abs().max().item() <= 2e-2 * scale


def test_antialiased_masks_agree():
    mesh = _meshes()["torus"]
    verts = torch.tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.tensor(mesh.faces, dtype=torch.int32)
    pos = to_clip(verts, _clip_matrices(256))
    masks = []
    for renderer, device in ((TorchRenderer("cpu"), "cpu"), (NvdiffrastRenderer("cuda"), "cuda")):
        p, f = pos.to(device), faces.to(device)
        rast = renderer.rasterize(p, f, (256, 256))
        mask = (rast[..., 3:] > 0).float()
        masks.append(renderer.antialias(mask, rast, p, f).cpu())
    # The two blend the same silhouettes; they may differ in which edge a corner pixel uses.
    assert (masks[0] - masks[1]).abs().mean().item() < 2e-3
    assert masks[0].sum().item() == pytest.approx(masks[1].sum().item(), rel=5e-3)


def _texture_and_uv() -> tuple[torch.Tensor, torch.Tensor]:
    """A non-square texture whose texels all differ (rows and columns told apart, so a
    swapped or flipped axis shows), sampled at uvs that reach outside [0, 1] on both axes
    (so wrap and clamp both matter)."""
    generator = torch.Generator().manual_seed(1)
    tex = torch.rand(1, 24, 40, 3, generator=generator)
    uv = torch.rand(2, 64, 64, 2, generator=generator) * 1.6 - 0.3
    return tex, uv


@pytest.mark.parametrize("boundary_mode", ["wrap", "clamp"])
@pytest.mark.parametrize("filter_mode", ["linear", "nearest"])
def test_texture_samples_agree(filter_mode: str, boundary_mode: str) -> None:
    tex, uv = _texture_and_uv()
    cpu, gpu = TorchRenderer("cpu"), NvdiffrastRenderer("cuda")
    out_c = cpu.texture(tex, uv, filter_mode=filter_mode, boundary_mode=boundary_mode)
    out_g = gpu.texture(tex.cuda(), uv.cuda(), filter_mode=filter_mode, boundary_mode=boundary_mode)
    diff = (out_c - out_g.cpu()).abs()
    if filter_mode == "nearest":
        # A uv on a texel boundary may round either way; such ties are rare in random uvs.
        assert (diff.amax(-1) > 1e-5).float().mean().item() < 1e-3
    else:
        assert diff.max().item() <= 1e-4, f"bilinear samples differ by up to {diff.max():.2e}"


def test_texture_v_indexes_rows_from_the_top_on_both_backends() -> None:
    """v = 0 is row 0 of the texture (glTF's convention) on both: the centre of texel
    (row 2, column 5) samples exactly that texel."""
    tex, _ = _texture_and_uv()
    _, rows, cols, _ = tex.shape
    uv = torch.tensor([[[[(5 + 0.5) / cols, (2 + 0.5) / rows]]]])
    for renderer, device in ((TorchRenderer("cpu"), "cpu"), (NvdiffrastRenderer("cuda"), "cuda")):
        for boundary_mode in ("wrap", "clamp"):
            out = renderer.texture(tex.to(device), uv.to(device), boundary_mode=boundary_mode)
            assert torch.allclose(out.cpu()[0, 0, 0], tex[0, 2, 5], atol=1e-5), (
                device,
                boundary_mode,
            )


@pytest.mark.parametrize("boundary_mode", ["wrap", "clamp"])
def test_texture_gradients_agree(boundary_mode: str) -> None:
    """Texturing optimises the texture through these gradients; view metrics do not, but
    refinement of uv-dependent colour does."""
    tex0, uv0 = _texture_and_uv()
    weights = torch.rand((*uv0.shape[:-1], 3), generator=torch.Generator().manual_seed(2))
    grads = []
    for renderer, device in ((TorchRenderer("cpu"), "cpu"), (NvdiffrastRenderer("cuda"), "cuda")):
        tex = tex0.to(device).requires_grad_(True)
        uv = uv0.to(device).requires_grad_(True)
        out = renderer.texture(tex, uv, filter_mode="linear", boundary_mode=boundary_mode)
        (out * weights.to(device)).sum().backward()
        assert tex.grad is not None and uv.grad is not None
        grads.append((tex.grad.cpu(), uv.grad.cpu()))
    (tex_c, uv_c), (tex_g, uv_g) = grads
    assert (tex_c - tex_g).abs().max().item() <= 1e-3 * tex_g.abs().max().item()
    # uv gradients jump at texel boundaries; compare away from the few that straddle one.
    close = (uv_c - uv_g).abs() <= 1e-2 * uv_g.abs().max()
    assert close.float().mean().item() > 0.995
