"""The axis and pixel conventions of the source formats, mapped onto the capture layout's.

The layout (DESIGN.md "Input layout") stores camera-to-world matrices with OpenGL camera
axes (+X right, +Y up, the camera looking down -Z) and measures pixels from the top-left
corner of the image, so the centre of pixel (row i, column j) is (j + 0.5, i + 0.5).
Sources in the OpenCV/computer-vision convention (TUM, ScanNet, Redwood) differ in both:
their camera looks down +Z with +Y down, and their principal point counts pixel centres
from 0, so it moves by half a pixel. Quaternions go through scipy's Rotation (maintained,
and explicit about the scalar-last order TUM and Record3D use) rather than hand-written
algebra.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from recon_runner.errors import InvalidInputError

Matrix = npt.NDArray[np.float64]

# Right-multiplying a camera-to-world matrix by this flips the camera's Y and Z axes:
# OpenCV (Y down, looking down +Z) <-> OpenGL (Y up, looking down -Z). Its own inverse.
OPENCV_TO_OPENGL: Matrix = np.diag([1.0, -1.0, -1.0, 1.0])
# Centre-origin pixel coordinates (OpenCV) to corner-origin ones (the layout's).
OPENCV_PIXEL_SHIFT = 0.5
# How far R^T R may stray from the identity before a source's rotation is refused rather
# than re-orthonormalised: loose enough for six-digit text exports, tight enough to catch
# a scaled or sheared matrix.
ORTHONORMAL_TOLERANCE = 1e-2


def opencv_to_opengl(c2w: Matrix) -> Matrix:
    """A camera-to-world matrix with OpenCV camera axes, as the layout stores it."""
    return np.asarray(c2w, dtype=np.float64) @ OPENCV_TO_OPENGL


def pose_from_quaternion(translation: Sequence[float], xyzw: Sequence[float]) -> Matrix:
    """A 4x4 camera-to-world matrix from a position and a scalar-last unit quaternion.

    The quaternion is normalised first: text files round it to a few digits. scipy is
    imported here, not at the top: it costs seconds, and most formats never need it."""
    from scipy.spatial.transform import Rotation

    quaternion = np.asarray(xyzw, dtype=np.float64)
    norm = float(np.linalg.norm(quaternion))
    if not np.isfinite(norm) or norm < 1e-6:
        raise ValueError(f"quaternion {list(xyzw)} has no direction")
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_quat(quaternion / norm).as_matrix()
    matrix[:3, 3] = np.asarray(translation, dtype=np.float64)
    return matrix


def checked_pose(values: npt.ArrayLike, where: str) -> Matrix:
    """A 4x4 rigid camera-to-world matrix, or bad input naming `where`.

    A 3x4 matrix gets the [0, 0, 0, 1] row. The rotation is re-orthonormalised when it is
    within tolerance (text exports round to six digits), so the layout's stricter check
    never sees rounding noise; a scaled, sheared or mirrored matrix is refused."""
    try:
        matrix = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(where, "camera pose is not a matrix of numbers") from None
    if matrix.shape == (3, 4):
        matrix = np.vstack([matrix, [0.0, 0.0, 0.0, 1.0]])
    if matrix.shape != (4, 4):
        raise InvalidInputError(where, f"camera pose has shape {matrix.shape}, not 4x4")
    if not np.all(np.isfinite(matrix)):
        raise InvalidInputError(where, "camera pose contains NaN or infinity")
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise InvalidInputError(where, f"camera pose's last row is {matrix[3].tolist()}")
    rotation = matrix[:3, :3]
    gram_error = float(np.abs(rotation.T @ rotation - np.eye(3)).max())
    if gram_error > ORTHONORMAL_TOLERANCE or np.linalg.det(rotation) <= 0:
        raise InvalidInputError(
            where, "camera pose's rotation is not orthonormal (scaled, sheared or mirrored)"
        )
    # The nearest rotation (polar decomposition by SVD) removes rounding noise only.
    u, _, vt = np.linalg.svd(rotation)
    matrix = matrix.copy()
    matrix[:3, :3] = u @ vt
    return matrix


def is_valid_pose(values: npt.ArrayLike) -> bool:
    """False for the poses exporters write for frames tracking lost (ScanNet's -inf)."""
    matrix = np.asarray(values, dtype=np.float64)
    return bool(np.all(np.isfinite(matrix)))


def parse_pinhole(text: str) -> tuple[float, float, float, float]:
    """`fx,fy,cx,cy` from the command line (argparse type)."""
    import argparse

    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(np.isfinite(values)) or values[0] <= 0 or values[1] <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give fx,fy,cx,cy as four numbers")
    return values[0], values[1], values[2], values[3]
