"""Attribute interpolation in pure PyTorch, the same sums as nvdiffrast's kernel."""

from __future__ import annotations

import torch

from recon_runner.render.interface import batched_attributes


def interpolate(attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """[B,H,W,C]: u*a0 + v*a1 + (1-u-v)*a2 of the pixel's triangle, zero on background.

    Only covered pixels are computed (gathered, then scattered back), so the cost follows
    the object's screen area rather than the image size."""
    attr = batched_attributes(attr)
    batch, height, width, _ = rast.shape
    channels = attr.shape[-1]
    flat = rast.reshape(-1, 4)
    face = flat[:, 3].detach().long() - 1
    pix = torch.nonzero(face >= 0).squeeze(1)
    face = face[pix]
    image = torch.div(pix, height * width, rounding_mode="floor")
    if attr.shape[0] == 1:
        image = torch.zeros_like(image)
    elif attr.shape[0] != batch:
        raise ValueError(f"attr batch {attr.shape[0]} does not match rast batch {batch}")
    corners = attr[image.unsqueeze(1), tri.to(device=attr.device, dtype=torch.long)[face]]
    uv = flat[pix, :2].to(attr.dtype)
    u, v = uv[:, :1], uv[:, 1:]
    values = u * corners[:, 0] + v * corners[:, 1] + (1.0 - u - v) * corners[:, 2]
    out = torch.zeros(batch * height * width, channels, dtype=values.dtype, device=attr.device)
    out = out.index_put((pix,), values)
    return out.reshape(batch, height, width, channels)
