"""Per-view exposure and white-balance gains, and a colour blend robust to highlights.

A phone meters every frame anew: the same surface comes out a few tenths of a stop brighter
or warmer from one view than from the next, and a glossy surface shows a highlight in the
one view that catches the light. A plain weighted mean of the views then paints each view's
exposure into the texels it sees best (visible seams where the best view changes) and
smears every highlight over the surface.

Here the views' colours at the texels they see are compared with a robust consensus: each
view's gain per channel is the median ratio of its colours to the consensus over the
texels it shares with other views (a median, so highlights and misregistered edges do not
bias it), with the gains' geometric mean held at 1 so the capture's average exposure is
the texture's. The consensus is a weighted median across views (what one view sees as a
highlight, the others don't), refined by a few Cauchy-weighted means around it, so where
the views agree the blend is as smooth as a mean.
"""

from __future__ import annotations

import torch

# Texels that at least this many views see inform the gains.
SHARED_VIEWS = 2
# Scale of the Cauchy weights, in colour units (0..1): disagreements well beyond it, such
# as a highlight, count little.
ROBUST_SCALE = 0.05
ROBUST_ITERATIONS = 3
GAIN_ROUNDS = 3
# Gains are kept within this factor of 1: beyond it the view is not an exposure change.
MAX_GAIN = 2.0


def weighted_median(colours: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per texel, the view colour [N,3] at the weighted median of the views' luminance.

    colours [V,N,3], weights [V,N] (0 where the view does not see the texel). One whole
    view's colour is taken, never a mix of channels from several."""
    luminance = colours.mean(dim=2)
    order = torch.argsort(luminance, dim=0)
    sorted_w = torch.gather(weights, 0, order)
    cumulative = sorted_w.cumsum(dim=0)
    half = 0.5 * cumulative[-1:]
    pick = (cumulative >= half).to(torch.int64).argmax(dim=0)  # first view past half
    view = torch.gather(order, 0, pick.unsqueeze(0))[0]
    return colours[view, torch.arange(colours.shape[1], device=colours.device)]


def robust_blend(colours: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[N,3]: the views' colours blended around their weighted median with Cauchy weights."""
    blend = weighted_median(colours, weights)
    for _ in range(ROBUST_ITERATIONS):
        residual = (colours - blend.unsqueeze(0)).norm(dim=2)
        w = weights / (1.0 + (residual / ROBUST_SCALE).square())
        total = w.sum(dim=0).clamp(min=1e-12)
        blend = (w.unsqueeze(2) * colours).sum(dim=0) / total.unsqueeze(1)
    return blend


def fit_gains(colours: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[V,3] per-view gains: the view recorded gain * the surface's colour."""
    views = colours.shape[0]
    gains = torch.ones(views, 3, dtype=colours.dtype, device=colours.device)
    shared = (weights > 0).sum(dim=0) >= SHARED_VIEWS
    if views < 2 or not bool(shared.any()):
        return gains
    c, w = colours[:, shared], weights[:, shared]
    for _ in range(GAIN_ROUNDS):
        consensus = robust_blend(c / gains[:, None, :], w)
        for v in range(views):
            seen = (w[v] > 0) & (consensus.min(dim=1).values > 0.02)
            if int(seen.sum()) < 16:
                continue
            ratio = c[v, seen] / consensus[seen]
            gains[v] = ratio.median(dim=0).values.clamp(1.0 / MAX_GAIN, MAX_GAIN)
        gains = gains / gains.log().mean(dim=0).exp()
    return gains
