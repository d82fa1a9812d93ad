"""The production backend: nvdiffrast's CUDA rasterizer (compiled on first use)."""

from __future__ import annotations

from typing import Any

import torch

from recon_runner.render.interface import batched_attributes, batched_positions


class NvdiffrastRenderer:
    name = "nvdiffrast"

    def __init__(self, device: torch.device | str | None = None) -> None:
        import nvdiffrast.torch as dr

        self.device = torch.device(device if device is not None else "cuda")
        if self.device.type != "cuda":
            raise ValueError(f"nvdiffrast needs a CUDA device, got {self.device}")
        self._dr: Any = dr
        self._ctx = dr.RasterizeCudaContext(device=self.device)

    def rasterize(
        self, pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]
    ) -> torch.Tensor:
        pos = batched_positions(pos).float().contiguous()
        tri = tri.to(device=pos.device, dtype=torch.int32).contiguous()
        rast, _ = self._dr.rasterize(self._ctx, pos, tri, (int(resolution[0]), int(resolution[1])))
        return rast

    def interpolate(
        self, attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor
    ) -> torch.Tensor:
        attr = batched_attributes(attr).float().contiguous()
        tri = tri.to(device=attr.device, dtype=torch.int32).contiguous()
        out, _ = self._dr.interpolate(attr, rast, tri)
        return out

    def texture(
        self,
        tex: torch.Tensor,
        uv: torch.Tensor,
        filter_mode: str = "linear",
        boundary_mode: str = "wrap",
    ) -> torch.Tensor:
        return self._dr.texture(
            tex.float().contiguous(),
            uv.float().contiguous(),
            filter_mode=filter_mode,
            boundary_mode=boundary_mode,
        )

    def antialias(
        self, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor
    ) -> torch.Tensor:
        pos = batched_positions(pos).float().contiguous()
        tri = tri.to(device=pos.device, dtype=torch.int32).contiguous()
        return self._dr.antialias(color.contiguous(), rast, pos, tri)
