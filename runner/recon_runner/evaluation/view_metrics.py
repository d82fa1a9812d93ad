"""How well the textured result reproduces the capture, seen from the capture's own cameras.

These are the figures a user sees in status.metrics without any ground truth: PSNR of the
re-rendered colour against the input images, IoU of the silhouettes against the masks, and
the depth error against the depth maps. The same renders make preview.png.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from recon_runner.camera import to_clip
from recon_runner.mesh import TexturedMesh
from recon_runner.render import Renderer
from recon_runner.stages.targets import Targets


@dataclass(frozen=True)
class ViewComparison:
    psnr: float  # dB, mean over views, on the input mask's pixels
    mask_iou: float  # mean over views
    depth_error_mm: float  # mean |rendered - input| where both have depth
    renders: list[npt.NDArray[np.uint8]]  # [H,W,4] per view, alpha = coverage
    inputs: list[npt.NDArray[np.uint8]]  # [H,W,4] per view, alpha = input mask


def compare_views(mesh: TexturedMesh, targets: Targets, renderer: Renderer) -> ViewComparison:
    device = targets.rgb.device
    vertices = torch.from_numpy(mesh.vertices).to(device)
    faces = torch.from_numpy(mesh.faces).to(device)
    uvs = torch.from_numpy(mesh.uvs).to(device)
    texture = torch.from_numpy(mesh.texture.astype(np.float32) / 255.0).to(device).unsqueeze(0)
    with torch.no_grad():
        pos = to_clip(vertices, targets.clip)
        rast = renderer.rasterize(pos, faces, targets.resolution)
        covered = rast[..., 3] > 0
        uv = renderer.interpolate(uvs.unsqueeze(0), rast, faces)
        colour = renderer.texture(texture, uv, filter_mode="linear", boundary_mode="clamp")
        colour = torch.where(covered.unsqueeze(-1), colour, torch.zeros_like(colour))
        depth = renderer.interpolate(pos[..., 3:4], rast, faces)[..., 0]

    psnrs, ious = [], []
    for b in range(len(targets.cameras)):
        mask = targets.mask[b]
        mse = float((colour[b][mask] - targets.rgb[b][mask]).square().mean())
        psnrs.append(math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse))
        union = int((mask | covered[b]).sum())
        ious.append(int((mask & covered[b]).sum()) / union if union else 1.0)
    both = covered & targets.surface
    depth_error = float((depth - targets.depth)[both].abs().mean()) if bool(both.any()) else 0.0

    def rgba(rgb: torch.Tensor, alpha: torch.Tensor) -> npt.NDArray[np.uint8]:
        image = torch.cat([rgb, alpha.unsqueeze(-1).to(rgb.dtype)], dim=-1)
        return np.clip(np.rint(image.cpu().numpy() * 255.0), 0, 255).astype(np.uint8)

    finite = [p for p in psnrs if math.isfinite(p)]
    return ViewComparison(
        psnr=float(np.mean(finite)) if finite else math.inf,
        mask_iou=float(np.mean(ious)),
        depth_error_mm=1000.0 * depth_error,
        renders=[rgba(colour[b], covered[b]) for b in range(len(targets.cameras))],
        inputs=[rgba(targets.rgb[b], targets.mask[b]) for b in range(len(targets.cameras))],
    )
