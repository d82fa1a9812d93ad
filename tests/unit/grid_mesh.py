"""A flat triangulated grid: the smallest open mesh whose borders and cells are known."""

from __future__ import annotations

import numpy as np


def grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """An n x n vertex grid of unit spacing in the z = 0 plane, two triangles a cell."""
    ys, xs = np.mgrid[0:n, 0:n]
    vertices = np.column_stack([xs.ravel(), ys.ravel(), np.zeros(n * n)]).astype(np.float32)
    faces = []
    for r in range(n - 1):
        for c in range(n - 1):
            v = r * n + c
            faces += [[v, v + 1, v + n + 1], [v, v + n + 1, v + n]]
    return vertices, np.asarray(faces, dtype=np.int32)
