"""Folds cut out of a closed mesh and the cut closed: the result is watertight again."""

from __future__ import annotations

import numpy as np
import trimesh
from recon_runner.stages.tangles import boundary_loops, cut_out_tangles, tangled_faces
from recon_runner.synthetic.shapes import icosphere


def two_tetrahedra_on_one_edge() -> tuple[np.ndarray, np.ndarray]:
    """Two closed tetrahedra sharing the edge 0-1: four faces on that edge."""
    vertices = np.array(
        [[0, 0, 0], [1, 0, 0], [0.5, 1, 0.2], [0.5, 0.3, 1], [0.5, -1, 0.2], [0.5, -0.3, -1]],
        dtype=np.float32,
    )
    first = trimesh.Trimesh(vertices[[0, 1, 2, 3]], [[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    trimesh.repair.fix_normals(first)
    second = trimesh.Trimesh(vertices[[0, 1, 4, 5]], [[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    trimesh.repair.fix_normals(second)
    lookup_first, lookup_second = np.array([0, 1, 2, 3]), np.array([0, 1, 4, 5])
    faces = np.concatenate([lookup_first[first.faces], lookup_second[second.faces]])
    return vertices, faces


def test_a_closed_mesh_without_folds_comes_back_unchanged() -> None:
    sphere = icosphere(1.0, 2)
    vertices, faces, origin = cut_out_tangles(sphere.vertices, sphere.faces)
    assert not tangled_faces(sphere.faces).any()
    np.testing.assert_array_equal(faces, sphere.faces)
    np.testing.assert_array_equal(vertices, sphere.vertices.astype(np.float32))
    np.testing.assert_array_equal(origin, np.arange(len(sphere.faces)))


def test_an_edge_of_four_faces_is_cut_out_and_the_cut_closed_watertight() -> None:
    vertices, faces = two_tetrahedra_on_one_edge()
    assert not trimesh.Trimesh(vertices, faces, process=False).is_watertight
    assert tangled_faces(faces).sum() == 4
    out_v, out_f, origin = cut_out_tangles(vertices, faces)
    mesh = trimesh.Trimesh(out_v, out_f, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    # The four faces on the shared edge are gone; the others are kept as they were.
    kept = origin[origin >= 0]
    assert sorted(kept.tolist()) == sorted(np.flatnonzero(~tangled_faces(faces)).tolist())
    np.testing.assert_array_equal(out_f[origin >= 0], faces[kept])
    # Each tetrahedron's cut (four edges) is closed by a fan around one new vertex.
    assert len(out_v) == len(vertices) + 2 and (origin < 0).sum() == 8


def test_an_edge_two_faces_run_the_same_way_counts_as_a_fold() -> None:
    sphere = icosphere(1.0, 1)
    faces = sphere.faces.copy()
    faces[0] = faces[0][::-1]  # its three edges now run the same way as a neighbour's
    tangled = tangled_faces(faces)
    assert tangled[0] and tangled.sum() == 4


def test_a_cut_that_touches_itself_at_a_vertex_is_two_simple_loops() -> None:
    # Two triangles meeting at vertex 0 only: their outer boundary passes vertex 0 twice.
    faces = np.array([[0, 1, 2], [0, 3, 4]])
    loops = boundary_loops(faces)
    assert sorted(sorted(loop) for loop in loops) == [[0, 1, 2], [0, 3, 4]]
    assert all(len(set(loop)) == len(loop) for loop in loops)
