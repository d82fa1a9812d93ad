"""Per-view exposure gains and the highlight-robust blend of the texture's views."""

from __future__ import annotations

import torch
from recon_runner.stages.exposure import fit_gains, robust_blend


def views_of(surface: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    return (surface.unsqueeze(0) * gains[:, None, :]).clamp(0.0, 1.0)


def test_gains_come_back_from_views_that_share_texels() -> None:
    generator = torch.Generator().manual_seed(0)
    surface = 0.2 + 0.5 * torch.rand(4000, 3, generator=generator)
    true_gains = torch.tensor(
        [[1.1, 1.0, 0.95], [0.9, 0.92, 0.88], [1.05, 1.1, 1.0], [0.95, 1.0, 1.15]]
    )
    true_gains = true_gains / true_gains.log().mean(dim=0).exp()
    colours = views_of(surface, true_gains)
    weights = torch.rand(4, 4000, generator=generator) + 0.1
    # A highlight in view 0 over a tenth of the texels must not bias its gain.
    colours[0, :400] = 1.0
    gains = fit_gains(colours, weights)
    assert torch.allclose(gains, true_gains, atol=0.01), (gains, true_gains)


def test_the_blend_leaves_out_what_one_view_alone_sees() -> None:
    surface = torch.full((100, 3), 0.4)
    colours = surface.unsqueeze(0).repeat(3, 1, 1)
    colours[1, :50] = 0.95  # a highlight: the best-facing view sees it
    weights = torch.tensor([[0.5], [1.0], [0.5]]).repeat(1, 100)
    blend = robust_blend(colours, weights)
    assert torch.allclose(blend, surface, atol=0.01)
    mean = (weights.unsqueeze(2) * colours).sum(0) / weights.sum(0).unsqueeze(1)
    assert float(mean[:50].mean()) > 0.6  # what the plain weighted mean would have painted
