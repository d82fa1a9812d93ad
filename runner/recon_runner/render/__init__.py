"""Differentiable rendering behind one interface, with an nvdiffrast and a PyTorch backend."""

from recon_runner.render.interface import Renderer
from recon_runner.render.select import RENDERER_ENV, get_renderer

__all__ = ["RENDERER_ENV", "Renderer", "get_renderer"]
