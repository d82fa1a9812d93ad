"""Fuse the depth maps into a truncated signed distance volume and extract a mesh.

This gives the refinement a watertight starting surface within about a voxel of the truth.
Depth is integrated at its own resolution through its own camera (a phone's depth map is a
quarter of its colour image), each reading weighted by its confidence. A given mask carves
free space as well as depth does; a mask derived from depth carves nothing, because a pixel
without depth is a hole in the measurement, not background. Voxels no view saw in front of
a surface count as solid when more views put them behind a surface (or inside a given
mask) than see them through a hole in the depth, so the few views of a capture still close
the mesh (a visual hull where depth is silent) instead of leaving holes or a second inner
wall, and a voxel beside the object that one view's shadow hides stays empty; where holes
are all that looked, no surface is drawn at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import fast_simplification
import numpy as np
import numpy.typing as npt
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.measure import marching_cubes

from recon_runner.camera import Camera, project
from recon_runner.control import StopToken
from recon_runner.mesh import Mesh
from recon_runner.stages.capture import Capture, View

# Margin around the back-projected points, as a fraction of the box's longest side.
BOX_MARGIN = 0.08
# Half-width of the signed distance band, in voxels.
TRUNCATION_VOXELS = 3.0
# Voxels per integration chunk: bounds memory on CPU and GPU alike.
CHUNK = 1 << 21


@dataclass(frozen=True)
class FusionConfig:
    """What a preset sets of fusion."""

    # Voxels along the longest side of the capture's bounding box (spec gridResolution).
    grid_resolution: int
    # Faces kept after marching cubes; every later stage's cost grows with it.
    face_budget: int


FractionSink = Callable[[float, str], None]


@dataclass(frozen=True)
class Grid:
    """Sample points at origin + index * voxel, shape (nx, ny, nz)."""

    origin: npt.NDArray[np.float64]
    voxel: float
    shape: tuple[int, int, int]

    def points(self, start: int, stop: int, device: torch.device) -> torch.Tensor:
        """World positions of flat sample indices [start, stop), x slowest."""
        idx = torch.arange(start, stop, device=device, dtype=torch.int64)
        _nx, ny, nz = self.shape
        ijk = torch.stack((idx // (ny * nz), (idx // nz) % ny, idx % nz), dim=1)
        origin = torch.tensor(self.origin, device=device, dtype=torch.float32)
        return origin + ijk.to(torch.float32) * self.voxel


@dataclass(frozen=True)
class FusionResult:
    mesh: Mesh
    voxel_size: float


def grid_around(points: npt.NDArray[np.float32], resolution: int) -> Grid:
    """A grid over the points' bounding box plus margin, `resolution` samples along its
    longest side, so cubic voxels cover thin and flat objects alike."""
    low = points.min(axis=0).astype(np.float64)
    high = points.max(axis=0).astype(np.float64)
    longest = float(np.max(high - low))
    margin = BOX_MARGIN * longest + 1e-6
    low, high = low - margin, high + margin
    voxel = float(np.max(high - low)) / (resolution - 1)
    shape = tuple(math.ceil((h - lo) / voxel) + 1 for lo, h in zip(low, high, strict=True))
    return Grid(origin=low, voxel=voxel, shape=(shape[0], shape[1], shape[2]))


def integrate(
    capture: Capture,
    grid: Grid,
    device: torch.device,
    on_fraction: FractionSink | None = None,
    stop: StopToken | None = None,
    carve: bool = True,
) -> npt.NDArray[np.float32]:
    """The fused field on the grid: positive outside, negative inside, in units of the
    truncation band (clamped to [-1, 1]); NaN where only holes in the depth looked.
    `carve=False` ignores the given masks (see `fuse`)."""
    truncation = TRUNCATION_VOXELS * grid.voxel
    cameras = [_ViewTensors.of(view, device, carve) for view in capture.views]
    total = grid.shape[0] * grid.shape[1] * grid.shape[2]
    field = torch.empty(total, dtype=torch.float32)
    for start in range(0, total, CHUNK):
        if stop is not None:
            stop.check()
        end = min(start + CHUNK, total)
        points = grid.points(start, end, device)
        field[start:end] = _fuse_chunk(points, cameras, truncation).cpu()
        if on_fraction is not None:
            on_fraction(end / total, "integrating depth")
    return field.reshape(grid.shape).numpy()


def _lookup(
    camera: Camera, points: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(flat pixel index, visible, z-depth) of world points in one camera's image."""
    pixels, z = project(camera, points)
    col = torch.floor(pixels[:, 0]).to(torch.int64)
    row = torch.floor(pixels[:, 1]).to(torch.int64)
    visible = (z > 1e-6) & (col >= 0) & (col < width) & (row >= 0) & (row < height)
    flat = (row.clamp(0, height - 1) * width + col.clamp(0, width - 1)).view(-1)
    return flat, visible, z


def _fuse_chunk(points: torch.Tensor, views: list[_ViewTensors], truncation: float) -> torch.Tensor:
    n = points.shape[0]
    device = points.device
    total = torch.zeros(n, device=device)
    weight = torch.zeros(n, device=device)
    solid_votes = torch.zeros(n, device=device)
    hole_votes = torch.zeros(n, device=device)
    for view in views:
        height, width = view.depth.shape
        flat, visible, z = _lookup(view.depth_camera, points, height, width)
        depth = view.depth.view(-1)[flat]
        confidence = view.weight.view(-1)[flat]
        has_depth = visible & (depth > 0)
        sdf = torch.clamp((depth - z) / truncation, -1.0, 1.0)
        measured = has_depth & (depth - z > -truncation)
        behind = has_depth & ~measured
        value, use = sdf, measured.to(torch.float32) * confidence
        if view.mask is not None:
            mask_h, mask_w = view.mask.shape
            flat_c, visible_c, _ = _lookup(view.camera, points, mask_h, mask_w)
            inside = view.mask.view(-1)[flat_c]
            # Outside a given silhouette is free space, whatever the depth says.
            free = visible_c & ~inside
            value = torch.where(free, torch.ones_like(sdf), sdf)
            use = torch.where(free, torch.ones_like(use), use)
            solid_votes += ((behind | (visible_c & inside & ~has_depth)) & ~free).to(torch.float32)
        else:
            solid_votes += behind.to(torch.float32)
            hole_votes += (visible & ~has_depth).to(torch.float32)
        total += value * use
        weight += use
    fused = total / weight.clamp(min=1e-6)
    # Unmeasured: solid where more views put it behind a surface (or inside a given
    # silhouette) than look at it through a hole in the depth.
    solid = (solid_votes > 0) & (solid_votes > hole_votes)
    unmeasured = torch.where(solid, -torch.ones_like(fused), torch.ones_like(fused))
    # Seen only through holes in the depth: unknown, and no surface is drawn against it
    # (the band behind a surface would otherwise close off into a skirt at silhouettes).
    unmeasured = torch.where(~solid & (hole_votes > 0), torch.nan, unmeasured)
    return torch.where(weight > 0, fused, unmeasured)


@dataclass(frozen=True)
class _ViewTensors:
    camera: Camera  # colour camera, the mask's
    depth_camera: Camera
    depth: torch.Tensor  # [Hd, Wd] metres, 0 = none
    weight: torch.Tensor  # [Hd, Wd] confidence weight of each reading
    mask: torch.Tensor | None  # [H, W] bool, only when the capture gave a mask

    @staticmethod
    def of(view: View, device: torch.device, carve: bool = True) -> _ViewTensors:
        return _ViewTensors(
            camera=view.camera,
            depth_camera=view.depth_cam,
            depth=torch.from_numpy(view.depth).to(device),
            weight=torch.from_numpy(view.weight).to(device),
            mask=torch.from_numpy(view.mask).to(device) if view.mask_given and carve else None,
        )


def extract_surface(field: npt.NDArray[np.float32], grid: Grid) -> Mesh:
    """Marching cubes at the zero level, in world coordinates, faces wound outward."""
    padded = np.pad(field, 1, mode="constant", constant_values=1.0)
    known = np.isfinite(padded)
    if not np.any(padded[known] < 0.0):
        return Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32))
    mask = None if known.all() else known
    padded = np.where(known, padded, 1.0).astype(np.float32)
    verts, faces, _, _ = marching_cubes(padded, level=0.0, spacing=(grid.voxel,) * 3, mask=mask)
    verts = verts - grid.voxel + grid.origin
    mesh = Mesh(verts.astype(np.float32), faces.astype(np.int32))
    if signed_volume(mesh) < 0:
        mesh = Mesh(mesh.vertices, mesh.faces[:, ::-1].copy())
    return mesh


def signed_volume(mesh: Mesh) -> float:
    """Positive when faces wind counter-clockwise seen from outside."""
    v = mesh.vertices.astype(np.float64)[mesh.faces]
    return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0)


def largest_component(mesh: Mesh) -> Mesh:
    """Drop floaters: the object is the component with the most faces."""
    if len(mesh.faces) == 0:
        return mesh
    n = len(mesh.vertices)
    f = mesh.faces.astype(np.int64)
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    adjacency = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(adjacency, directed=False)
    face_labels = labels[f[:, 0]]
    keep_label = np.bincount(face_labels).argmax()
    return compact(Mesh(mesh.vertices, mesh.faces[face_labels == keep_label]))


def compact(mesh: Mesh) -> Mesh:
    """Drop vertices no face uses and renumber."""
    used, inverse = np.unique(mesh.faces.reshape(-1), return_inverse=True)
    return Mesh(
        mesh.vertices[used].astype(np.float32),
        inverse.reshape(-1, 3).astype(np.int32),
    )


def simplify(mesh: Mesh, face_budget: int) -> Mesh:
    """Quadric decimation down to the face budget; a mesh already under it is kept."""
    if len(mesh.faces) <= face_budget:
        return mesh
    reduction = 1.0 - face_budget / len(mesh.faces)
    verts, faces = fast_simplification.simplify(
        mesh.vertices.astype(np.float32), mesh.faces.astype(np.int32), target_reduction=reduction
    )
    return compact(Mesh(np.asarray(verts, np.float32), np.asarray(faces, np.int32)))


def fuse(
    capture: Capture,
    resolution: int,
    face_budget: int,
    device: torch.device,
    on_fraction: FractionSink | None = None,
    stop: StopToken | None = None,
    carve: bool = True,
) -> FusionResult:
    """`carve=False`: depth alone, the masks left out. The surface pose refinement aligns
    the views to is fused that way: a silhouette seen through a wrong pose carves away
    the object's edge where the other views put it, and the views would align to the cut."""
    points = capture.points()
    if capture.bounds is not None:
        # The box is the user's statement of where the object is: no margin beyond it.
        lo, hi = (np.asarray(b, dtype=np.float32) for b in capture.bounds)
        points = np.clip(points, lo, hi)
    grid = grid_around(points, resolution)

    def integrating(fraction: float, message: str) -> None:
        if on_fraction is not None:
            on_fraction(0.7 * fraction, message)

    field = integrate(capture, grid, device, integrating, stop, carve)
    if stop is not None:
        stop.check()
    mesh = largest_component(extract_surface(field, grid))
    if on_fraction is not None:
        on_fraction(0.85, f"marching cubes: {len(mesh.faces)} faces")
    mesh = largest_component(simplify(mesh, face_budget))
    if on_fraction is not None:
        on_fraction(1.0, f"fused mesh: {len(mesh.faces)} faces")
    return FusionResult(mesh=mesh, voxel_size=grid.voxel)
