"""Choosing a backend: nvdiffrast where CUDA is, the PyTorch rasterizer elsewhere.

`RECON_RENDERER` (auto | nvdiffrast | torch) overrides the caller's choice, so an operator
or a user can force the CPU path on a GPU node (or insist on nvdiffrast) without a code change.
"""

from __future__ import annotations

import os

import torch

from recon_runner.render.interface import Renderer

RENDERER_ENV = "RECON_RENDERER"
BACKENDS = ("auto", "nvdiffrast", "torch")


def get_renderer(backend: str = "auto", device: torch.device | str | None = None) -> Renderer:
    """A renderer for `backend`; `device` defaults to CUDA for nvdiffrast, CPU for torch."""
    forced = os.environ.get(RENDERER_ENV, "").strip().lower()
    if forced:
        backend = forced
    if backend not in BACKENDS:
        raise ValueError(f"unknown renderer backend {backend!r}; expected one of {BACKENDS}")
    if backend == "auto":
        wants_cpu = device is not None and torch.device(device).type != "cuda"
        backend = "nvdiffrast" if torch.cuda.is_available() and not wants_cpu else "torch"
    if backend == "nvdiffrast":
        from recon_runner.render.nvdiffrast_backend import NvdiffrastRenderer

        return NvdiffrastRenderer(device)
    from recon_runner.render.torch_backend import TorchRenderer

    return TorchRenderer(device)
