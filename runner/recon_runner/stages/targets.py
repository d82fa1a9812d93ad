"""The capture as batched tensors at a working resolution: what rendered views are compared to.

Refinement, texturing and the run's metrics all render the mesh from the capture's cameras
and compare with the inputs; they share this one preparation so they agree on pixel
alignment (same `Camera.resized` intrinsics) and on which pixels count.

Everything is on the colour camera's grid: depth captured at another resolution is first
brought onto it along the shared rays (`View.depth_at_colour`). Only a mask the capture gave
pulls the silhouette in (`outside`); where the mask was derived from depth, `outside` is
zero, so a hole in the depth never carves the surface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from scipy.ndimage import distance_transform_edt

from recon_runner.camera import Camera, backproject_depth, clip_matrix, scene_near_far
from recon_runner.stages.capture import Capture, View


@dataclass(frozen=True)
class Targets:
    cameras: tuple[Camera, ...]  # at the working resolution
    clip: torch.Tensor  # [B,4,4] world-to-clip
    rgb: torch.Tensor  # [B,H,W,3] in 0..1
    mask: torch.Tensor  # [B,H,W] bool
    depth: torch.Tensor  # [B,H,W] metres, 0 = none
    points: torch.Tensor  # [B,H,W,3] world points of `depth` (meaningless where depth is 0)
    outside: torch.Tensor  # [B,H,W] pixels from the nearest mask pixel, 0 inside the mask
    # (and everywhere in a view whose mask was derived from depth)
    weight: torch.Tensor  # [B,H,W] confidence of each depth reading, 0 = none

    @property
    def resolution(self) -> tuple[int, int]:
        return int(self.depth.shape[1]), int(self.depth.shape[2])

    def subset(self, indices: Sequence[int]) -> Targets:
        """The given views only, for steps that look at a few views at a time."""
        if list(indices) == list(range(len(self.cameras))):
            return self
        index = torch.tensor(list(indices), device=self.depth.device)
        return Targets(
            cameras=tuple(self.cameras[i] for i in indices),
            clip=self.clip[index],
            rgb=self.rgb[index],
            mask=self.mask[index],
            depth=self.depth[index],
            points=self.points[index],
            outside=self.outside[index],
            weight=self.weight[index],
        )

    @property
    def surface(self) -> torch.Tensor:
        """Pixels that constrain the surface: inside the mask with a depth reading."""
        return self.mask & (self.depth > 0)


def working_size(view: View, longest: int) -> tuple[int, int, int]:
    """(height, width, factor): the capture reduced by an integer factor so that its longest
    side is at most `longest`; an integer factor keeps pixel blocks exact."""
    factor = max(1, -(-max(view.camera.height, view.camera.width) // longest))
    return view.camera.height // factor, view.camera.width // factor, factor


def depth_longest(capture: Capture) -> int:
    """The longest side of the coarsest depth map: refinement compares depth on no finer a
    grid. Depth measured at a fraction of the colour resolution and brought onto a finer
    grid repeats each reading over pixels whose rays meet the surface elsewhere; near a
    silhouette those rays meet it farther away, so the repeated reading says the surface is
    nearer than it is, and refinement inflated the surface by about the size of a reading's
    footprint (2.5 mm on a knot seen by 60 views of 512x512 with 128x128 depth)."""
    return min(max(v.depth_cam.width, v.depth_cam.height) for v in capture.views)


def prepare_targets(
    capture: Capture,
    longest: int,
    bounds: tuple[npt.ArrayLike, npt.ArrayLike],
    device: torch.device,
) -> Targets:
    """Every view at the working resolution, with clip matrices whose near and far planes
    enclose `bounds` (the scene box), so depth precision is spent on the object."""
    cameras, clips, rgbs, masks, depths, points, outsides, weights = ([] for _ in range(8))
    for view in capture.views:
        height, width, factor = working_size(view, longest)
        camera = view.camera.resized(width, height)
        rgb, mask, depth, weight = _reduce(view, height, width, factor)
        near, far = scene_near_far(camera, *bounds, margin=0.1)
        cameras.append(camera)
        clips.append(clip_matrix(camera, near, far))
        rgbs.append(rgb)
        masks.append(mask)
        depths.append(depth)
        points.append(backproject_depth(camera, depth.astype(np.float64)).astype(np.float32))
        if view.mask_given:
            outsides.append(distance_transform_edt(~mask).astype(np.float32))
        else:
            outsides.append(np.zeros(mask.shape, dtype=np.float32))
        weights.append(weight)

    def stack(arrays: Sequence[npt.NDArray[Any]]) -> torch.Tensor:
        return torch.from_numpy(np.stack(arrays)).to(device)

    return Targets(
        cameras=tuple(cameras),
        clip=stack(clips).to(torch.float32),
        rgb=stack(rgbs),
        mask=stack(masks),
        depth=stack(depths),
        points=stack(points),
        outside=stack(outsides),
        weight=stack(weights),
    )


def _reduce(
    view: View, height: int, width: int, factor: int
) -> tuple[
    npt.NDArray[np.float32], npt.NDArray[np.bool_], npt.NDArray[np.float32], npt.NDArray[np.float32]
]:
    """Average factor x factor blocks: colour over the block, mask by majority, depth over
    blocks whose pixels all have depth (a block straddling an edge has no single depth),
    confidence the block's least."""
    depth_full, weight_full = view.depth_at_colour()
    if factor == 1:
        depth = np.where(view.mask, depth_full, 0.0).astype(np.float32)
        weight = np.where(depth > 0, weight_full, 0.0).astype(np.float32)
        return view.rgb.astype(np.float32) / 255.0, view.mask, depth, weight

    def blocks(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        a = a[: height * factor, : width * factor]
        return a.reshape(height, factor, width, factor, *a.shape[2:])

    rgb = (blocks(view.rgb).mean(axis=(1, 3)) / 255.0).astype(np.float32)
    mask = blocks(view.mask.astype(np.float32)).mean(axis=(1, 3)) >= 0.5
    depth_blocks = blocks(depth_full)
    full = np.all(depth_blocks > 0, axis=(1, 3))
    depth = np.where(full & mask, depth_blocks.mean(axis=(1, 3)), 0.0).astype(np.float32)
    weight = np.where(depth > 0, blocks(weight_full).min(axis=(1, 3)), 0.0).astype(np.float32)
    return rgb, mask, depth, weight
