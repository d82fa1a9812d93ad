"""The renderer interface the pipeline codes against: nvdiffrast's primitives and semantics.

Both backends take and return the same tensors as `nvdiffrast.torch`, so a stage written
against this interface runs unchanged on a GPU (nvdiffrast) and on a CPU (pure PyTorch):

- `rasterize(pos [B,V,4] or [V,4] clip space, tri [F,3] int32, (H, W))` -> rast [B,H,W,4]:
  perspective-correct barycentrics (u, v) of vertices 0 and 1, z/w, triangle index + 1
  (0 where no triangle covers the pixel centre). Pixel centres sit at half-integers in NDC;
  clip y = -1 is row 0 (see `camera.clip_matrix`, which makes row 0 the image top).
  Gradients flow from u and v to `pos`; z/w carries none (as in nvdiffrast), so a depth
  loss interpolates depth as an attribute.
- `interpolate(attr [B,V,C], [1,V,C] or [V,C], rast, tri)` -> [B,H,W,C]:
  u*a0 + v*a1 + (1-u-v)*a2, zero on background; differentiable in `attr` and `rast`.
- `texture(tex [B or 1,Ht,Wt,C], uv [B,H,W,2], filter_mode, boundary_mode)` -> [B,H,W,C]:
  uv (0, 0) is the corner of texel row 0, column 0 (the glTF convention of `mesh.py`).
- `antialias(color, rast, pos, tri)` -> color with silhouette edges blended, which gives a
  mask or colour loss gradients with respect to the silhouette's position.
"""

from __future__ import annotations

from typing import Protocol

import torch


class Renderer(Protocol):
    name: str
    device: torch.device

    def rasterize(
        self, pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]
    ) -> torch.Tensor: ...

    def interpolate(
        self, attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor
    ) -> torch.Tensor: ...

    def texture(
        self,
        tex: torch.Tensor,
        uv: torch.Tensor,
        filter_mode: str = "linear",
        boundary_mode: str = "wrap",
    ) -> torch.Tensor: ...

    def antialias(
        self, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor
    ) -> torch.Tensor: ...


def batched_positions(pos: torch.Tensor) -> torch.Tensor:
    """Accept [V,4] as a batch of one, the way callers rendering a single view write it."""
    if pos.dim() == 2:
        pos = pos.unsqueeze(0)
    if pos.dim() != 3 or pos.shape[-1] != 4:
        raise ValueError(f"pos must be [B,V,4] or [V,4], got {tuple(pos.shape)}")
    return pos


def batched_attributes(attr: torch.Tensor) -> torch.Tensor:
    """Accept [V,C] as attributes shared by every image of the batch."""
    if attr.dim() == 2:
        attr = attr.unsqueeze(0)
    if attr.dim() != 3:
        raise ValueError(f"attr must be [B,V,C] or [V,C], got {tuple(attr.shape)}")
    return attr
