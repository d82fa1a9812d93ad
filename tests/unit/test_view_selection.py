"""The working set of a large capture: views chosen for covering the surface, squarely, at
most the preset's limit; small captures keep every view in order; depth is refined at its
own resolution; the comparison covers every view while preview.png shows a few."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from recon_runner.evaluation.view_metrics import PREVIEW_VIEWS, preview_views
from recon_runner.render import get_renderer
from recon_runner.stages.capture import load_capture
from recon_runner.stages.targets import depth_longest
from recon_runner.stages.view_selection import (
    SelectionConfig,
    choose_views,
    vertex_weights,
    view_scores,
    working_set,
)
from recon_runner.synthetic import sphere_object, write_capture
from recon_runner.synthetic.writer import CaptureStyle

CENTRE = (0.05, -0.02, 0.1)
RADIUS = 0.3
VOXEL = 0.01


def test_complementary_views_are_picked_before_a_copy_of_one_already_chosen() -> None:
    weights = np.ones(4)
    scores = np.array(
        [
            [1.0, 1.0, 0.0, 0.0],  # sees the left half
            [1.0, 1.0, 0.0, 0.0],  # the same again
            [0.0, 0.0, 1.0, 1.0],  # the right half
            [0.5, 0.0, 0.0, 0.0],  # part of the left, obliquely
        ],
        dtype=np.float32,
    )
    chosen = choose_views(scores, weights, limit=3)
    # The two halves, then nothing adds anything: the picks stop below the limit.
    assert sorted(chosen) == [0, 2] or sorted(chosen) == [1, 2]
    assert len(chosen) == 2


def test_a_square_view_wins_over_an_oblique_view_of_the_same_surface() -> None:
    scores = np.array([[0.3, 0.3], [0.9, 0.9]], dtype=np.float32)
    assert choose_views(scores, np.ones(2), limit=1) == [1]


def test_the_picks_stop_at_the_limit_and_weigh_surface_area() -> None:
    scores = np.eye(5, dtype=np.float32)  # each view sees one vertex of its own
    weights = np.array([1.0, 5.0, 2.0, 4.0, 3.0])
    assert choose_views(scores, weights, limit=3) == [1, 3, 4]
    with pytest.raises(ValueError, match="at least 1"):
        choose_views(scores, weights, limit=0)


def test_vertex_weights_share_out_the_surface_area() -> None:
    sphere = sphere_object(RADIUS, CENTRE, subdivisions=3)
    weights = vertex_weights(sphere.mesh)
    assert weights.min() > 0
    assert weights.sum() == pytest.approx(4 * np.pi * RADIUS**2, rel=0.02)


@pytest.fixture(scope="module")
def ring_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sphere seen by 16 cameras around it (alternately above and below), JPEG colour
    and depth at a quarter of the colour resolution, as a phone stores them."""
    root = tmp_path_factory.mktemp("ring")
    sphere = sphere_object(RADIUS, CENTRE, subdivisions=4)
    style = CaptureStyle(colour_format="jpeg", alpha=False, depth_scale=4)
    write_capture(sphere, root, views=16, width=96, height=64, style=style)
    return root


def test_a_few_chosen_views_see_what_all_of_them_see(ring_capture: Path) -> None:
    capture = load_capture(ring_capture)
    sphere = sphere_object(RADIUS, CENTRE, subdivisions=4)
    renderer = get_renderer("auto", torch.device("cpu"))
    scores = view_scores(sphere.mesh, capture, VOXEL, renderer, torch.device("cpu"))
    chosen = working_set(
        sphere.mesh, capture, VOXEL, SelectionConfig(limit=6), renderer, torch.device("cpu")
    )
    assert len(chosen) == 6 and len(set(chosen)) == 6
    weights = vertex_weights(sphere.mesh)
    seen_by_all = weights[scores.max(axis=0) > 0].sum()
    seen_by_chosen = weights[scores[chosen].max(axis=0) > 0].sum()
    assert seen_by_chosen >= 0.95 * seen_by_all
    # Each view sees about half the sphere, never the far side.
    seen = (scores > 0).mean(axis=1)
    assert np.all((seen > 0.3) & (seen < 0.6))


def test_a_capture_within_the_limit_keeps_every_view_in_order(ring_capture: Path) -> None:
    capture = load_capture(ring_capture)
    sphere = sphere_object(RADIUS, CENTRE, subdivisions=3)
    renderer = get_renderer("auto", torch.device("cpu"))
    chosen = working_set(
        sphere.mesh, capture, VOXEL, SelectionConfig(limit=16), renderer, torch.device("cpu")
    )
    assert chosen == list(range(16))
    assert [v.image_file for v in capture.subset([3, 1]).views] == [
        capture.views[3].image_file,
        capture.views[1].image_file,
    ]


def test_depth_is_refined_at_the_resolution_it_was_measured_at(ring_capture: Path) -> None:
    capture = load_capture(ring_capture)
    assert depth_longest(capture) == 24  # 96x64 colour, depth at a quarter: 24x16


def test_the_preview_shows_every_view_of_a_small_capture_and_a_spread_of_a_large_one() -> None:
    assert preview_views(5) == [0, 1, 2, 3, 4]
    many = preview_views(200)
    assert len(many) == PREVIEW_VIEWS
    assert many[0] == 0 and many[-1] == 199 and many == sorted(set(many))
    gaps = np.diff(many)
    assert gaps.max() - gaps.min() <= 1
