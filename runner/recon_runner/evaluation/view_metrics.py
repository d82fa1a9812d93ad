"""How well the textured result reproduces the capture, seen from the capture's own cameras.

These are the figures a user sees in status.metrics without any ground truth: PSNR of the
re-rendered colour against the input images, IoU of the silhouettes against the masks, and
the depth error against the depth maps, over every view of the capture. The renders of up
to `PREVIEW_VIEWS` of them make preview.png.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from recon_runner.camera import to_clip
from recon_runner.control import StopToken
from recon_runner.mesh import TexturedMesh
from recon_runner.render import Renderer
from recon_runner.stages.targets import Targets

# Views rendered together at full resolution: bounds the comparison's memory.
COMPARE_CHUNK = 4
# Views preview.png shows at most (input beside render): a glance, not a contact sheet.
PREVIEW_VIEWS = 12


@dataclass(frozen=True)
class ViewComparison:
    psnr: float  # dB, mean over views, on the input mask's pixels
    mask_iou: float  # mean over views
    depth_error_mm: float  # mean |rendered - input| where both have depth
    renders: list[npt.NDArray[np.uint8]]  # [H,W,4] per preview view, alpha = coverage
    inputs: list[npt.NDArray[np.uint8]]  # [H,W,4] per preview view, alpha = input mask


def preview_views(count: int, limit: int = PREVIEW_VIEWS) -> list[int]:
    """Which views preview.png shows: all of a small capture, else `limit` spread evenly
    from the first to the last."""
    if count <= limit:
        return list(range(count))
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def compare_views(
    mesh: TexturedMesh,
    targets_of: Callable[[Sequence[int]], Targets],
    count: int,
    renderer: Renderer,
    chunk: int = COMPARE_CHUNK,
    stop: StopToken | None = None,
) -> ViewComparison:
    """Every one of the `count` views compared, `chunk` at a time (`targets_of` prepares
    the given views), so memory stays that of one chunk whatever the capture's size; the
    renders and inputs are kept for the preview's views only. `stop` is checked between
    chunks."""
    device = renderer.device
    vertices = torch.from_numpy(mesh.vertices).to(device)
    faces = torch.from_numpy(mesh.faces).to(device)
    uvs = torch.from_numpy(mesh.uvs).to(device)
    texture = torch.from_numpy(mesh.texture.astype(np.float32) / 255.0).to(device).unsqueeze(0)
    shown = set(preview_views(count))
    psnrs: list[float] = []
    ious: list[float] = []
    error_sum, error_count = 0.0, 0
    renders: list[npt.NDArray[np.uint8]] = []
    inputs: list[npt.NDArray[np.uint8]] = []
    for start in range(0, count, chunk):
        if stop is not None:
            stop.check()  # hundreds of views take a while: a stop is honoured between chunks
        indices = list(range(start, min(start + chunk, count)))
        targets = targets_of(indices)
        with torch.no_grad():
            pos = to_clip(vertices, targets.clip)
            rast = renderer.rasterize(pos, faces, targets.resolution)
            covered = rast[..., 3] > 0
            uv = renderer.interpolate(uvs.unsqueeze(0), rast, faces)
            colour = renderer.texture(texture, uv, filter_mode="linear", boundary_mode="clamp")
            colour = torch.where(covered.unsqueeze(-1), colour, torch.zeros_like(colour))
            depth = renderer.interpolate(pos[..., 3:4], rast, faces)[..., 0]
        for b, index in enumerate(indices):
            mask = targets.mask[b]
            mse = float((colour[b][mask] - targets.rgb[b][mask]).square().mean())
            psnrs.append(math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse))
            union = int((mask | covered[b]).sum())
            ious.append(int((mask & covered[b]).sum()) / union if union else 1.0)
            if index in shown:
                renders.append(_rgba(colour[b], covered[b]))
                inputs.append(_rgba(targets.rgb[b], targets.mask[b]))
        both = covered & targets.surface
        error_sum += float((depth - targets.depth)[both].abs().sum())
        error_count += int(both.sum())

    finite = [p for p in psnrs if math.isfinite(p)]
    return ViewComparison(
        psnr=float(np.mean(finite)) if finite else math.inf,
        mask_iou=float(np.mean(ious)),
        depth_error_mm=1000.0 * error_sum / error_count if error_count else 0.0,
        renders=renders,
        inputs=inputs,
    )


def _rgba(rgb: torch.Tensor, alpha: torch.Tensor) -> npt.NDArray[np.uint8]:
    image = torch.cat([rgb, alpha.unsqueeze(-1).to(rgb.dtype)], dim=-1)
    return np.clip(np.rint(image.cpu().numpy() * 255.0), 0, 255).astype(np.uint8)
