"""The observed surface: which faces of the refined mesh some camera actually measured.

Fusion closes the mesh everywhere, also where no camera looked (the underside of an object
standing on a table), and that guessed surface costs precision. After refinement each view
renders the mesh through the project's renderer and a face counts as observed when it is
the visible surface at a pixel whose depth reading agrees with the rendered depth (within
`AGREEMENT_VOXELS`, more on a surface the view sees at a slant: `agreement_tolerance`), when
all three of its corners project onto agreeing depth readings (a face smaller than a pixel
is found that way), or when a depth reading of some view lies on it in 3D (within
`PROXIMITY_VOXELS` of its centre: a surface seen at a grazing angle, where the pixel a
reading lands on often shows another face or none). That last test leaves out the readings
at a depth edge (next to a pixel without one): depth stored at a fraction of the colour
resolution and upsampled puts a block's reading on pixels beside the object too, points in
the air below and around it. Guessed surface spans the gaps between readings, so only its
rim comes that close to one, and `clean_border` tidies the cut. Whatever those tests say, a
face with no reading of any view within `REACH_VOXELS` plus one reading's spacing of its
centre was not measured (`reached_faces`, on the readings at the resolution they were
measured at), and an unobserved patch holding such a face is a hole, not a pinhole of the
test. By default the unobserved
faces are removed; with `closeHoles` they stay, on the membrane of `hole_fill`, and are
marked as filled so the export and metrics can tell.
The nearest readings come from scipy's k-d tree (`cKDTree`), one view at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from scipy.ndimage import binary_erosion
from scipy.spatial import cKDTree

from recon_runner.camera import to_clip
from recon_runner.errors import InvalidInputError
from recon_runner.mesh import Mesh
from recon_runner.render import Renderer
from recon_runner.stages.fusion import compact
from recon_runner.stages.hole_fill import membrane
from recon_runner.stages.surface_border import clean_border, components, edge_neighbours, twin_faces
from recon_runner.stages.tangles import cut_out_tangles
from recon_runner.stages.targets import Targets
from recon_runner.surface_query import face_areas

BoolArray = npt.NDArray[np.bool_]

# Rendered and measured depth agree within this many voxels on an observed face...
AGREEMENT_VOXELS = 2.0
# ... plus the depth change over this many pixels where the view sees the surface at a
# slant: a reading may come from a few pixels beside where the mesh lands. Phone depth is
# measured at a fraction of the colour resolution and shared over blocks of pixels (4x4 at
# a quarter: up to 3 pixels from where it was measured), and the pose error refinement
# leaves moves a reading by about a pixel more; on a surface seen at 60 degrees a 3-pixel
# shift alone is 5 pixel footprints of depth, past any fixed tolerance.
LATERAL_PIXELS = 3.0
# ... but never more than this many voxels, so a guessed surface the view sees through to a
# reading well behind it stays unobserved.
MAX_AGREEMENT_VOXELS = 8.0
# A face with a depth reading of some view this close to its centre was measured: fusion
# places the surface within a voxel of the readings it came from.
PROXIMITY_VOXELS = 1.0
# However a face passed the tests above, it was measured only if a reading of some view lies
# within this many voxels plus that view's spacing between readings (at the resolution the
# depth was measured at) of its centre. At a grazing pixel the slant tolerance accepts a
# rendered depth several voxels from the reading, and a small unobserved patch among faces
# accepted that way passed for a pinhole: on a phone-style orbit of the dumbbell, surface
# 5 cm from every reading and below the lowest one was kept.
REACH_VOXELS = 2.0
# Unobserved patches smaller than this many square voxels are misses of the test.
PINHOLE_VOXELS2 = 12.0
# Kept components under this fraction of the kept area are fragments of the cut.
ISLAND_FRACTION = 0.01


@dataclass(frozen=True)
class ObservedSurface:
    """The mesh to texture and export, and which of its faces are fill (none by default)."""

    mesh: Mesh
    filled: BoolArray  # [F] per face of `mesh`
    observed_area: float  # m^2 of `mesh` that some view measured
    filled_area: float  # m^2 of `mesh` that closeHoles added
    removed_area: float  # m^2 of the refined surface left out as unobserved

    @property
    def observed_fraction(self) -> float:
        total = self.observed_area + self.filled_area
        return 1.0 if total <= 0 else self.observed_area / total

    def metrics(self) -> dict[str, float]:
        total = self.observed_area + self.filled_area
        return {
            "observedFraction": round(self.observed_fraction, 5),
            "filledFraction": round(0.0 if total <= 0 else self.filled_area / total, 5),
            "observedAreaM2": round(self.observed_area, 7),
            "filledAreaM2": round(self.filled_area, 7),
            "unobservedRemovedAreaM2": round(self.removed_area, 7),
        }


def depth_slope(face_ids: torch.Tensor, rendered: torch.Tensor) -> torch.Tensor:
    """[H,W] how much the rendered depth changes from one pixel to the next (metres, both
    image axes together), each axis from the neighbour on the mesh that differs least, so
    a depth edge (the surface ends, another begins behind it) is not taken for a slant."""
    on = face_ids > 0
    none = torch.full_like(rendered, float("inf"))
    squared = torch.zeros_like(rendered)
    for dim in (0, 1):
        steps = []
        for shift in (1, -1):
            neighbour_on = on & torch.roll(on, shift, dim)
            step = (rendered - torch.roll(rendered, shift, dim)).abs()
            steps.append(torch.where(neighbour_on, step, none))
        least = torch.minimum(steps[0], steps[1])
        # roll wraps around: the first and last row or column have one true neighbour only
        edge = [slice(None), slice(None)]
        edge[dim] = slice(0, 1)
        least[tuple(edge)] = steps[1][tuple(edge)]
        edge[dim] = slice(-1, None)
        least[tuple(edge)] = steps[0][tuple(edge)]
        squared += torch.where(torch.isinf(least), torch.zeros_like(least), least) ** 2
    return squared.sqrt()


def agreement_tolerance(
    face_ids: torch.Tensor, rendered: torch.Tensor, voxel: float
) -> torch.Tensor:
    """[H,W] metres: how far a reading may be from the rendered depth at each pixel and
    still count as measuring that surface."""
    slanted = AGREEMENT_VOXELS * voxel + LATERAL_PIXELS * depth_slope(face_ids, rendered)
    return slanted.clamp(max=MAX_AGREEMENT_VOXELS * voxel)


def agreeing_faces(
    face_ids: torch.Tensor,
    rendered: torch.Tensor,
    measured: torch.Tensor,
    tolerance: float | torch.Tensor,
) -> torch.Tensor:
    """Face indices (0-based) visible at pixels whose measured depth agrees with the
    rendered one (`tolerance` one value, or one per pixel); `face_ids` is the rasterizer's
    triangle index + 1 (0 = no face)."""
    agree = (face_ids > 0) & (measured > 0) & ((rendered - measured).abs() < tolerance)
    return face_ids[agree].long() - 1


def agreeing_vertices(clip: torch.Tensor, measured: torch.Tensor, tolerance: float) -> torch.Tensor:
    """[V] bool: the vertex (clip position [V,4]) lands on a depth reading [H,W] within
    `tolerance` of its own depth."""
    height, width = measured.shape
    w = clip[:, 3]
    px = (clip[:, 0] / w + 1.0) * (0.5 * width)
    py = (clip[:, 1] / w + 1.0) * (0.5 * height)
    inside = (w > 0) & (px >= 0) & (px < width) & (py >= 0) & (py < height)
    col = px.floor().long().clamp(0, width - 1)
    row = py.floor().long().clamp(0, height - 1)
    depth = measured[row, col]
    return inside & (depth > 0) & ((w - depth).abs() < tolerance)


def observed_faces(mesh: Mesh, targets: Targets, renderer: Renderer, voxel: float) -> BoolArray:
    """[F] bool: some view measured the face (before border cleanup)."""
    device = targets.depth.device
    vertices = torch.from_numpy(np.ascontiguousarray(mesh.vertices, np.float32)).to(device)
    faces = torch.from_numpy(np.ascontiguousarray(mesh.faces, np.int32)).to(device)
    corner_tolerance = AGREEMENT_VOXELS * voxel
    hit = torch.zeros(len(mesh.faces), dtype=torch.bool, device=device)
    corner = torch.zeros(len(mesh.vertices), dtype=torch.bool, device=device)
    measured_all = torch.where(targets.surface, targets.depth, torch.zeros_like(targets.depth))
    with torch.no_grad():
        for b in range(len(targets.cameras)):  # one view at a time bounds the memory
            pos = to_clip(vertices, targets.clip[b : b + 1])
            rast = renderer.rasterize(pos, faces, targets.resolution)
            rendered = renderer.interpolate(pos[..., 3:4], rast, faces)[0, ..., 0]
            measured = measured_all[b]
            face_ids = rast[0, ..., 3]
            tolerance = agreement_tolerance(face_ids, rendered, voxel)
            hit[agreeing_faces(face_ids, rendered, measured, tolerance)] = True
            corner |= agreeing_vertices(pos[0], measured, corner_tolerance)
    all_corners = corner[faces.long()].all(dim=1)
    seen = (hit | all_corners).cpu().numpy()
    return seen | readings_on_faces(mesh, targets, PROXIMITY_VOXELS * voxel, skip=seen)


def readings_on_faces(
    mesh: Mesh,
    targets: Targets,
    reach: float | Sequence[float],
    skip: BoolArray,
    at_edges: bool = False,
) -> BoolArray:
    """[F] bool: a depth reading of some view lies within `reach` (one value, or one per
    view) of the face's centre (faces in `skip` are not looked up: they are known already).
    Readings at a depth edge count only with `at_edges`."""
    centres = mesh.vertices[mesh.faces].mean(axis=1, dtype=np.float64)
    found = np.zeros(len(mesh.faces), dtype=bool)
    reaches = [reach] * len(targets.cameras) if isinstance(reach, float | int) else list(reach)
    for b in range(len(targets.cameras)):  # one view's readings at a time bounds the memory
        open_ = np.flatnonzero(~(found | skip))
        if len(open_) == 0:
            break
        surface = targets.surface[b].cpu().numpy()
        used = surface if at_edges else binary_erosion(surface)
        readings = targets.points[b].cpu().numpy()[used]
        if len(readings) == 0:
            continue
        distance, _ = cKDTree(readings).query(centres[open_], distance_upper_bound=reaches[b])
        found[open_[np.isfinite(distance)]] = True
    return found


def reading_spacing(targets: Targets, view: int) -> float:
    """Metres between neighbouring readings of a view at its median depth."""
    depth = targets.depth[view]
    readings = depth[depth > 0]
    if len(readings) == 0:
        return 0.0
    return float(readings.median()) / targets.cameras[view].fx


def reached_faces(mesh: Mesh, readings: Targets, voxel: float) -> BoolArray:
    """[F] bool: some reading lies within `REACH_VOXELS` plus its view's reading spacing of
    the face's centre. `readings` holds the depth at the resolution it was measured at, so
    every reading sits on its own ray (edge readings included: none is a copy)."""
    reaches = [
        REACH_VOXELS * voxel + reading_spacing(readings, b) for b in range(len(readings.cameras))
    ]
    none = np.zeros(len(mesh.faces), dtype=bool)
    return readings_on_faces(mesh, readings, reaches, skip=none, at_edges=True)


def observed_surface(
    mesh: Mesh,
    targets: Targets,
    renderer: Renderer,
    voxel: float,
    close_holes: bool,
    readings: Targets | None = None,
) -> ObservedSurface:
    """The observed part of `mesh` (default), or all of it with the rest on a membrane.
    `readings`: the same views with depth at the resolution it was measured at, when
    `targets` has it at another (default: `targets`)."""
    mesh = compact(Mesh(mesh.vertices, mesh.faces[~twin_faces(mesh.faces)]))
    areas = face_areas(mesh.vertices, mesh.faces)
    reached = reached_faces(mesh, targets if readings is None else readings, voxel)
    seen = observed_faces(mesh, targets, renderer, voxel) & reached
    keep = clean_border(
        mesh.faces,
        seen,
        areas,
        PINHOLE_VOXELS2 * voxel * voxel,
        ISLAND_FRACTION,
        closable=reached,
    )
    if not keep.any():
        raise InvalidInputError(
            "transforms.json",
            "no part of the fused surface agrees with any depth map: check the camera poses "
            "and depth_unit_scale_factor",
        )
    observed_area = float(areas[keep].sum())
    if not close_holes:
        kept = compact(Mesh(mesh.vertices, mesh.faces[keep]))
        return ObservedSurface(
            mesh=kept,
            filled=np.zeros(len(kept.faces), dtype=bool),
            observed_area=observed_area,
            filled_area=0.0,
            removed_area=float(areas[~keep].sum()),
        )
    # Folds that decimation left are cut out and closed first (`tangles`): no fill over
    # them could be watertight. An observed face on a fold goes with it.
    vertices, faces, origin = cut_out_tangles(mesh.vertices, mesh.faces)
    keep = (origin >= 0) & keep[origin.clip(0)]
    # A part that shares no edge with any observed face (a closed bubble a fold leaves
    # behind, pinned only at vertices) has nothing to span: the membrane would shrink it
    # onto itself. It goes, as it would without closeHoles.
    parts = components(edge_neighbours(faces), np.ones(len(faces), dtype=bool))
    anchored = np.isin(parts, parts[keep])
    faces, keep = faces[anchored], keep[anchored]
    fixed = np.zeros(len(vertices), dtype=bool)
    fixed[faces[keep].reshape(-1)] = True
    vertices = membrane(vertices, faces, fixed).astype(np.float32)
    filled_mesh = compact(Mesh(vertices, faces.astype(mesh.faces.dtype)))
    filled_areas = face_areas(filled_mesh.vertices, filled_mesh.faces)
    return ObservedSurface(
        mesh=filled_mesh,
        filled=~keep,
        observed_area=float(filled_areas[keep].sum()),
        filled_area=float(filled_areas[~keep].sum()),
        removed_area=0.0,
    )
