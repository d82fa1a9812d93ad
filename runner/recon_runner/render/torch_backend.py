"""The pure-PyTorch backend: runs wherever torch does (CPU in CI, or any device)."""

from __future__ import annotations

import torch

from recon_runner.render import torch_antialias, torch_interpolate, torch_raster, torch_texture


class TorchRenderer:
    name = "torch"

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device if device is not None else "cpu")
        self._topology_key: tuple[int, int, tuple[int, ...]] | None = None
        self._neighbours: torch.Tensor | None = None

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
        return torch_antialias.antialias(color, rast, pos, tri, self._edge_neighbours(tri))

    def _edge_neighbours(self, tri: torch.Tensor) -> torch.Tensor:
        """Face adjacency, rebuilt only when a different (or modified) face tensor comes in:
        an optimisation loop renders one topology hundreds of times."""
        key = (tri.data_ptr(), tri._version, tuple(tri.shape))
        if self._neighbours is None or key != self._topology_key:
            self._neighbours = torch_antialias.edge_neighbours(tri.to(self.device))
            self._topology_key = key
        return self._neighbours
