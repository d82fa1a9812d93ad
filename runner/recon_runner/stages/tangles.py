"""Cutting out the folds that quadric decimation leaves in a closed mesh, and closing the cut.

fast_simplification can fold a few faces of a thin part onto each other, so that three or
four faces share one edge. Such an edge can never be part of a watertight surface, so a
`closeHoles` fill spanned over it could not be one either. The fold carries no measured
shape (it lies where no camera looked, or the decimation would not have folded it), so it
is cut out whole: every face on such an edge (or on an edge two faces run the same way)
goes, until none is left, and each loop of the cut is closed by a
fan around one new vertex. The new vertices are free, and the membrane of `hole_fill` puts
them where the surrounding surface says. The rules are topological (half-edges and their
loops) and use numpy only; trimesh's own hole filling closes only three- and four-edge holes.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]

# Cutting a fold out can leave a smaller one at its rim; a few passes reach the end.
CUT_PASSES = 8


def _half_edges(faces: I64) -> I64:
    return np.stack([faces, np.roll(faces, -1, axis=1)], axis=2).reshape(-1, 2)


def tangled_faces(faces: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """[F] bool: faces on an edge that more than two faces share, or that two faces run
    the same way (a fold turned inside out)."""
    f = np.asarray(faces, dtype=np.int64)
    half = _half_edges(f)
    key = np.sort(half, axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    forward = (half[:, 0] < half[:, 1]).astype(np.int64)
    forwards = np.bincount(inverse, weights=forward, minlength=len(counts))
    same_way = (counts == 2) & (forwards != 1)
    bad = (counts > 2) | same_way
    tangled: npt.NDArray[np.bool_] = bad[inverse].reshape(-1, 3).any(axis=1)
    return tangled


def boundary_loops(faces: npt.ArrayLike) -> list[list[int]]:
    """Each loop of half-edges that no face runs the other way, in the faces' own
    direction, every loop simple: where the cut touches itself at a vertex (a figure
    eight), the walk closes the part it has gone round as a loop of its own, since a fan
    over a loop that passes a vertex twice would share that spoke among four faces."""
    f = np.asarray(faces, dtype=np.int64)
    half = _half_edges(f)
    present = {(int(a), int(b)) for a, b in half}
    outgoing: dict[int, list[int]] = defaultdict(list)
    for a, b in half:
        if (int(b), int(a)) not in present:
            outgoing[int(a)].append(int(b))
    loops: list[list[int]] = []
    for start in sorted(outgoing):
        while outgoing[start]:
            walk = [start]
            at = {start: 0}
            here = outgoing[start].pop()
            while True:
                if here in at:
                    begin = at[here]
                    loop = walk[begin:]
                    if len(loop) >= 3:
                        loops.append(loop)
                    for vertex in loop[1:]:
                        del at[vertex]
                    del walk[begin + 1 :]
                    if here == start:
                        break
                else:
                    at[here] = len(walk)
                    walk.append(here)
                if not outgoing[here]:
                    break  # an open chain: not part of a closed mesh's cut
                here = outgoing[here].pop()
    return loops


def cut_out_tangles(vertices: npt.ArrayLike, faces: npt.ArrayLike) -> tuple[F32, I64, I64]:
    """(vertices, faces, origin): the mesh without its folds, each loop of the cut closed by
    a fan around a new vertex (appended after the given ones, at the loop's centroid).
    `origin[i]` is the input face that output face i is, or -1 for a fan's face. A mesh
    without folds comes back unchanged."""
    v = np.asarray(vertices, dtype=np.float32)
    f = np.asarray(faces, dtype=np.int64)
    origin = np.arange(len(f))
    for _ in range(CUT_PASSES):
        tangled = tangled_faces(f[origin])
        if not tangled.any():
            break
        origin = origin[~tangled]
    if len(origin) == len(f):
        return v, f, origin
    kept = f[origin]
    centres: list[npt.NDArray[np.float32]] = []
    fans: list[I64] = []
    for loop in boundary_loops(kept):
        ring = np.asarray(loop, dtype=np.int64)
        centre = len(v) + len(centres)
        centres.append(v[ring].mean(axis=0))
        # The cut runs the kept faces' way; the fan runs it back, so each edge pairs up.
        fans.append(np.stack([np.roll(ring, -1), ring, np.full(len(ring), centre)], axis=1))
    out_v = np.concatenate([v, np.asarray(centres, dtype=np.float32).reshape(-1, 3)])
    out_f = np.concatenate([kept, *fans])
    fan_faces = len(out_f) - len(kept)
    return out_v, out_f, np.concatenate([origin, np.full(fan_faces, -1, dtype=np.int64)])
