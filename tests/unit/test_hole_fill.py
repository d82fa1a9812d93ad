"""The membrane fill: free vertices on the harmonic surface spanned by the fixed ones."""

from __future__ import annotations

import numpy as np
from recon_runner.stages.hole_fill import membrane
from recon_runner.synthetic.shapes import icosphere

from tests.unit.grid_mesh import grid


def test_a_bulge_inside_a_flat_border_is_flattened_onto_the_plane() -> None:
    vertices, faces = grid(9)
    n = 9
    ys, xs = np.divmod(np.arange(n * n), n)
    border = (xs == 0) | (ys == 0) | (xs == n - 1) | (ys == n - 1)
    bulged = vertices.copy()
    bulged[~border, 2] = 3.0 + np.random.default_rng(0).random((~border).sum())
    bulged[~border, :2] += 0.3
    out = membrane(bulged, faces, fixed=border)
    # A regular grid is its own harmonic map: the fill is the flat grid again.
    np.testing.assert_allclose(out, vertices, atol=1e-9)


def test_every_free_vertex_is_the_mean_of_its_neighbours() -> None:
    sphere = icosphere(1.0, 3)
    fixed = sphere.vertices[:, 2] > -0.3
    out = membrane(sphere.vertices, sphere.faces, fixed)
    np.testing.assert_array_equal(out[fixed], sphere.vertices[fixed])
    for v in np.flatnonzero(~fixed)[:50]:
        ring = np.unique(sphere.faces[(sphere.faces == v).any(axis=1)])
        ring = ring[ring != v]
        np.testing.assert_allclose(out[v], out[ring].mean(axis=0), atol=1e-9)
    # The cap below the fixed border is replaced by a surface no lower than the border's
    # lowest point would allow: a membrane does not sag.
    assert out[~fixed, 2].min() >= sphere.vertices[fixed, 2].min() - 1e-9


def test_a_free_region_with_nothing_fixed_keeps_its_positions() -> None:
    sphere = icosphere(1.0, 1)
    out = membrane(sphere.vertices, sphere.faces, np.zeros(len(sphere.vertices), bool))
    np.testing.assert_array_equal(out, sphere.vertices)
