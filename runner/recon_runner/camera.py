"""Pinhole cameras in the capture's convention, and the maps between world, pixels and clip space.

Conventions (DESIGN.md, transforms.json): `c2w` is camera-to-world in the OpenGL/Blender
convention, the camera looks down its -Z axis with +Y up and +X right. Pixel coordinates are
continuous with (0, 0) at the top-left corner of the image, so the centre of the pixel in row
i, column j is (u, v) = (j + 0.5, i + 0.5). Depth is z-depth: the distance along the viewing
axis, positive in front of the camera.

Every function takes numpy arrays or torch tensors and answers in the same kind, so the
loader, fusion (numpy) and the refinement (torch, on any device) share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TypeVar, overload

import numpy as np
import numpy.typing as npt
import torch

Array = TypeVar("Array", npt.NDArray[np.floating], torch.Tensor)
Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Camera:
    """Intrinsics in pixels and a camera-to-world pose (OpenGL axes)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    c2w: Matrix = field(repr=False)

    def __post_init__(self) -> None:
        c2w = np.asarray(self.c2w, dtype=np.float64)
        if c2w.shape != (4, 4):
            raise ValueError(f"c2w must be 4x4, got {c2w.shape}")
        object.__setattr__(self, "c2w", c2w)

    @property
    def w2c(self) -> Matrix:
        return np.asarray(np.linalg.inv(self.c2w), dtype=np.float64)

    @property
    def position(self) -> Matrix:
        return self.c2w[:3, 3].copy()

    @property
    def forward(self) -> Matrix:
        """Unit viewing direction in world coordinates (the camera's -Z axis)."""
        d = -self.c2w[:3, 2]
        return d / np.linalg.norm(d)

    def resized(self, width: int, height: int) -> Camera:
        """The same camera rendering a differently sized image (intrinsics scaled), so a
        stage can work at a lower resolution than the capture and still line up with it."""
        sx, sy = width / self.width, height / self.height
        return replace(
            self,
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=self.cx * sx,
            cy=self.cy * sy,
            width=width,
            height=height,
        )


def same_rays(a: Camera, b: Camera) -> bool:
    """Whether two cameras share a pose, so that a pixel of one and the pixel of the other
    on the same ray see the same surface point at the same z-depth (a colour camera and
    the depth camera of one frame)."""
    return bool(np.allclose(a.c2w, b.c2w, atol=1e-9))


def pixel_lookup(
    dst: Camera, src: Camera
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """For every pixel of `dst`, the (row, column) of the `src` pixel its centre's ray falls
    in, and whether it falls inside `src` at all: nearest-neighbour resampling between two
    cameras with the same pose and different intrinsics (depth at another resolution than
    colour). Z-depth is the same along the shared ray, so depth resamples unchanged."""
    if not same_rays(dst, src):
        raise ValueError("pixel_lookup needs two cameras with the same pose")
    centres = pixel_centres(dst)
    x = (centres[..., 0] - dst.cx) / dst.fx
    y = (centres[..., 1] - dst.cy) / dst.fy
    cols = np.floor(x * src.fx + src.cx).astype(np.int64)
    rows = np.floor(y * src.fy + src.cy).astype(np.int64)
    inside = (cols >= 0) & (cols < src.width) & (rows >= 0) & (rows < src.height)
    return np.clip(rows, 0, src.height - 1), np.clip(cols, 0, src.width - 1), inside


def resample_nearest(
    image: npt.NDArray[np.generic], src: Camera, dst: Camera, fill: float | bool = 0
) -> npt.NDArray[np.generic]:
    """`image` [H,W,...] as `src` saw it, as `dst` (same pose) would: nearest pixel on the
    same ray, `fill` where the ray leaves `src`'s image."""
    rows, cols, inside = pixel_lookup(dst, src)
    out = image[rows, cols]
    if not np.all(inside):
        out = out.copy()
        out[~inside] = fill
    return out


def look_at(
    eye: npt.ArrayLike,
    target: npt.ArrayLike,
    up: npt.ArrayLike = (0.0, 0.0, 1.0),
) -> Matrix:
    """Camera-to-world matrix (OpenGL axes) of a camera at `eye` looking at `target`."""
    eye_v = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye_v
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-9:  # looking along `up`: any perpendicular will do
        right = np.cross(forward, np.array([1.0, 0.0, 0.0]))
        if np.linalg.norm(right) < 1e-9:
            right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    c2w = np.eye(4)
    c2w[:3, 0] = right
    c2w[:3, 1] = true_up
    c2w[:3, 2] = -forward
    c2w[:3, 3] = eye_v
    return c2w


def camera_from_fov(fov_y_degrees: float, width: int, height: int, c2w: npt.ArrayLike) -> Camera:
    """A camera with square pixels, the principal point at the image centre and the given
    vertical field of view."""
    f = 0.5 * height / np.tan(np.radians(fov_y_degrees) / 2.0)
    return Camera(f, f, width / 2.0, height / 2.0, width, height, np.asarray(c2w))


def _as_like(matrix: Matrix, like: Array) -> Array:
    if isinstance(like, torch.Tensor):
        return torch.as_tensor(matrix, dtype=like.dtype, device=like.device)
    return np.asarray(matrix, dtype=like.dtype if like.dtype.kind == "f" else np.float64)


def _stack(parts: list[Array]) -> Array:
    if isinstance(parts[0], torch.Tensor):
        return torch.stack(parts, dim=-1)
    return np.stack(parts, axis=-1)


def _transform(matrix: Matrix, points: Array) -> Array:
    m = _as_like(matrix, points)
    return points @ m[:3, :3].T + m[:3, 3]


def world_to_camera(camera: Camera, points: Array) -> Array:
    """Points [...,3] in the world frame to the camera frame (OpenGL axes: z < 0 in front)."""
    return _transform(camera.w2c, points)


def project(camera: Camera, points: Array) -> tuple[Array, Array]:
    """World points [...,3] to continuous pixel coordinates [...,2] (u right, v down,
    (0, 0) the top-left image corner) and their z-depth [...]."""
    pc = world_to_camera(camera, points)
    depth = -pc[..., 2]
    u = camera.fx * pc[..., 0] / depth + camera.cx
    v = camera.cy - camera.fy * pc[..., 1] / depth
    return _stack([u, v]), depth


def backproject(camera: Camera, pixels: Array, depth: Array) -> Array:
    """Continuous pixel coordinates [...,2] with z-depth [...] to world points [...,3]."""
    x = (pixels[..., 0] - camera.cx) / camera.fx * depth
    y = -(pixels[..., 1] - camera.cy) / camera.fy * depth
    return _transform(camera.c2w, _stack([x, y, -depth]))


@overload
def pixel_centres(camera: Camera, like: None = None) -> npt.NDArray[np.float64]: ...
@overload
def pixel_centres(camera: Camera, like: Array) -> Array: ...
def pixel_centres(camera: Camera, like: Array | None = None) -> Array | npt.NDArray[np.float64]:
    """(u, v) of every pixel centre, [H,W,2], row 0 at the top of the image."""
    u = np.arange(camera.width, dtype=np.float64) + 0.5
    v = np.arange(camera.height, dtype=np.float64) + 0.5
    grid = np.stack(np.meshgrid(u, v, indexing="xy"), axis=-1)
    return grid if like is None else _as_like(grid, like)


def backproject_depth(camera: Camera, depth: Array) -> Array:
    """A z-depth map [H,W] (row 0 at the top) to world points [H,W,3] at the pixel centres.
    Pixels without a surface (depth 0) come back too; the caller masks them."""
    return backproject(camera, pixel_centres(camera, depth), depth)


def clip_matrix(camera: Camera, near: float, far: float) -> Matrix:
    """4x4 world-to-clip matrix for the rasterizer (nvdiffrast semantics).

    nvdiffrast puts clip y = -1 on row 0 of its output, so y here grows downwards in the
    image: the rendered image comes out with row 0 at the top, the same orientation as the
    capture's PNGs, and no flip is needed afterwards. Pixel centres land exactly where
    `project` puts them. NDC z runs from -1 at `near` to +1 at `far`; clip w is the z-depth.
    """
    w, h = camera.width, camera.height
    proj = np.array(
        [
            [2.0 * camera.fx / w, 0.0, 1.0 - 2.0 * camera.cx / w, 0.0],
            [0.0, -2.0 * camera.fy / h, 1.0 - 2.0 * camera.cy / h, 0.0],
            [0.0, 0.0, -(far + near) / (far - near), -2.0 * far * near / (far - near)],
            [0.0, 0.0, -1.0, 0.0],
        ]
    )
    return proj @ camera.w2c


def scene_near_far(
    camera: Camera, bounds_min: npt.ArrayLike, bounds_max: npt.ArrayLike, margin: float = 0.05
) -> tuple[float, float]:
    """Near and far planes that enclose an axis-aligned box, with a relative margin, so the
    depth buffer's precision is spent on the scene. The near plane stays positive."""
    lo = np.asarray(bounds_min, dtype=np.float64)
    hi = np.asarray(bounds_max, dtype=np.float64)
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    depth = -world_to_camera(camera, corners)[:, 2]
    extent = float(np.linalg.norm(hi - lo))
    far = float(depth.max()) + margin * extent
    near = max(float(depth.min()) - margin * extent, 1e-3 * far)
    return near, far


def to_clip(points: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """World points [V,3] through world-to-clip matrices [B,4,4] to clip positions [B,V,4],
    the `pos` the rasterizer takes; differentiable in the points."""
    homo = torch.cat([points, torch.ones_like(points[:, :1])], dim=1)
    return torch.einsum("vj,bij->bvi", homo, matrices)
