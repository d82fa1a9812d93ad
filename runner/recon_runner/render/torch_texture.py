"""Texture sampling in pure PyTorch with nvdiffrast's coordinate convention.

uv (0, 0) is the outer corner of texel [0, 0] and (1, 1) the far corner of the last texel, so
texel centres sit at half-integers divided by the size (align_corners=False), and v indexes
rows: row 0 of the texture is v = 0, which is also glTF's convention (see `mesh.py`).
"""

from __future__ import annotations

import torch


def texture(
    tex: torch.Tensor,
    uv: torch.Tensor,
    filter_mode: str = "linear",
    boundary_mode: str = "wrap",
) -> torch.Tensor:
    """Sample tex [B or 1,Ht,Wt,C] at uv [B,H,W,2]; differentiable in both.

    filter_mode: "linear" (bilinear) or "nearest"; "auto" means linear here, since no mip
    pyramid is kept. boundary_mode: "wrap" (nvdiffrast's default), "clamp" or "zero"."""
    if filter_mode == "auto":
        filter_mode = "linear"
    if filter_mode not in ("linear", "nearest"):
        raise ValueError(f"unsupported filter_mode {filter_mode!r}")
    if boundary_mode not in ("wrap", "clamp", "zero"):
        raise ValueError(f"unsupported boundary_mode {boundary_mode!r}")
    batch, height, width, _ = uv.shape
    if tex.shape[0] not in (1, batch):
        raise ValueError(f"tex batch {tex.shape[0]} does not match uv batch {batch}")
    tex_h, tex_w, channels = tex.shape[1], tex.shape[2], tex.shape[3]
    flat_tex = tex.reshape(tex.shape[0], tex_h * tex_w, channels)
    x = uv[..., 0].reshape(batch, -1) * tex_w - 0.5
    y = uv[..., 1].reshape(batch, -1) * tex_h - 0.5
    if filter_mode == "nearest":
        taps = [(torch.floor(x + 0.5), torch.floor(y + 0.5), torch.ones_like(x))]
    else:
        x0, y0 = torch.floor(x), torch.floor(y)
        fx, fy = x - x0, y - y0
        taps = [
            (x0, y0, (1 - fx) * (1 - fy)),
            (x0 + 1, y0, fx * (1 - fy)),
            (x0, y0 + 1, (1 - fx) * fy),
            (x0 + 1, y0 + 1, fx * fy),
        ]
    out = torch.zeros(batch, height * width, channels, dtype=tex.dtype, device=tex.device)
    for tx, ty, weight in taps:
        ix, iy = tx.detach().long(), ty.detach().long()
        valid = None
        if boundary_mode == "wrap":
            ix, iy = ix.remainder(tex_w), iy.remainder(tex_h)
        else:
            if boundary_mode == "zero":
                valid = (ix >= 0) & (ix < tex_w) & (iy >= 0) & (iy < tex_h)
            ix, iy = ix.clamp(0, tex_w - 1), iy.clamp(0, tex_h - 1)
        index = (iy * tex_w + ix).unsqueeze(-1).expand(-1, -1, channels)
        if tex.shape[0] == 1 and batch > 1:
            sample = flat_tex.expand(batch, -1, -1).gather(1, index)
        else:
            sample = flat_tex.gather(1, index)
        w = weight.to(tex.dtype).unsqueeze(-1)
        if valid is not None:
            w = w * valid.unsqueeze(-1)
        out = out + w * sample
    return out.reshape(batch, height, width, channels)
