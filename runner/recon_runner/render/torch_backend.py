"""The pure-PyTorch backend: runs wherever torch does (CPU in CI, or any device)."""

from __future__ import annotations

import torch

from recon_runner.render import torch_interpolate, torch_raster, torch_texture


class TorchRenderer:
    name = "torch"

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device if device is not None else "cpu")

    def rasterize(
        self, pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]
    ) -> torch.Tensor:
        return torch_raster.rasterize(pos, tri, resolution)

    def interpolate(
        self, attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor
    ) -> torch.Tensor:
        return torch_interpolate.interpolate(attr, rast, tri)

    def texture(
        self,
        tex: torch.Tensor,
        uv: torch.Tensor,
        filter_mode: str = "linear",
        boundary_mode: str = "wrap",
    ) -> torch.Tensor:
        return torch_texture.texture(tex, uv, filter_mode, boundary_mode)

    def antialias(
        self, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor
    ) -> torch.Tensor:
        """Returned unchanged: this backend has no edge antialiasing, so silhouettes are
        hard and a mask loss alone moves no vertices (depth and colour losses still do)."""
        return color
