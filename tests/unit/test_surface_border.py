"""The border cleanup: pinholes closed, dangling faces and small islands removed."""

from __future__ import annotations

import numpy as np
from recon_runner.stages.surface_border import clean_border, components, edge_neighbours, twin_faces
from recon_runner.surface_query import face_areas
from recon_runner.synthetic.shapes import icosphere

from tests.unit.grid_mesh import grid


def test_edge_neighbours_pair_the_faces_across_each_edge() -> None:
    faces = np.array([[0, 1, 2], [2, 1, 3]])
    neighbours = edge_neighbours(faces)
    assert neighbours.tolist() == [[-1, 1, -1], [0, -1, -1]]


def test_a_closed_mesh_has_a_neighbour_across_every_edge() -> None:
    sphere = icosphere(1.0, 2)
    assert (edge_neighbours(sphere.faces) >= 0).all()
    assert (components(edge_neighbours(sphere.faces), np.ones(len(sphere.faces), bool)) == 0).all()


def test_a_pinhole_inside_observed_surface_is_kept() -> None:
    sphere = icosphere(1.0, 3)
    areas = face_areas(sphere.vertices, sphere.faces)
    hole = [0, *edge_neighbours(sphere.faces)[0]]  # a face and the three across its edges
    observed = np.ones(len(sphere.faces), dtype=bool)
    observed[hole] = False
    hole_area = float(areas[hole].sum())
    keep = clean_border(sphere.faces, observed, areas, pinhole_area=1.5 * hole_area)
    assert keep.all()
    # A hole larger than the pinhole area is a real hole: it stays open, and only it.
    keep = clean_border(sphere.faces, observed, areas, pinhole_area=0.5 * hole_area)
    assert np.flatnonzero(~keep).tolist() == sorted(hole)


def test_a_small_patch_holding_a_face_no_reading_reached_stays_open() -> None:
    """A patch small enough for a pinhole is still a hole when one of its faces is known to
    be unmeasured: closing it would put back surface no reading supports."""
    sphere = icosphere(1.0, 3)
    areas = face_areas(sphere.vertices, sphere.faces)
    hole = [0, *edge_neighbours(sphere.faces)[0]]
    observed = np.ones(len(sphere.faces), dtype=bool)
    observed[hole] = False
    closable = np.ones(len(sphere.faces), dtype=bool)
    pinhole = 1.5 * float(areas[hole].sum())
    assert clean_border(sphere.faces, observed, areas, pinhole, closable=closable).all()
    closable[hole[1]] = False  # one face of the patch is beyond every reading
    keep = clean_border(sphere.faces, observed, areas, pinhole, closable=closable)
    assert np.flatnonzero(~keep).tolist() == sorted(hole)


def test_dangling_faces_and_small_islands_are_removed() -> None:
    vertices, faces = grid(10)
    areas = face_areas(vertices, faces)
    observed = np.zeros(len(faces), dtype=bool)
    cells = np.arange(len(faces)) // 2
    row = cells // 9
    lower = row < 5
    observed[lower] = True  # the lower half of the grid
    spike = 2 * (5 * 9 + 4)  # one triangle above the border, hanging by one edge
    observed[spike] = True
    island = 2 * (8 * 9 + 8)  # one cell far away in the corner
    observed[[island, island + 1]] = True
    keep = clean_border(faces, observed, areas, pinhole_area=0.0, island_fraction=0.05)
    assert not keep[spike]
    assert not keep[[island, island + 1]].any()
    # Of the lower half only its corner ears (one neighbour within it) may go.
    neighbours = edge_neighbours(faces)
    ears = ((neighbours >= 0) & lower[np.maximum(neighbours, 0)]).sum(axis=1) < 2
    assert keep[lower & ~ears].all()
    assert ears[lower & ~keep].all()
    # What is left is one piece whose every face has two or more kept neighbours.
    kept_neighbours = ((neighbours >= 0) & keep[np.maximum(neighbours, 0)]).sum(axis=1)
    assert (kept_neighbours[keep] >= 2).all()
    assert len(np.unique(components(neighbours, keep)[keep])) == 1


def test_nothing_observed_keeps_nothing() -> None:
    vertices, faces = grid(4)
    keep = clean_border(faces, np.zeros(len(faces), bool), face_areas(vertices, faces), 1.0)
    assert not keep.any()


def test_a_face_and_its_reversed_copy_are_both_twins() -> None:
    faces = np.array([[0, 1, 2], [2, 1, 3], [0, 2, 1], [1, 3, 4]])
    assert twin_faces(faces).tolist() == [True, False, True, False]
