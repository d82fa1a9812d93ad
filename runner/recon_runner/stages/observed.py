"""The observed surface: which faces of the refined mesh some camera actually measured.

Fusion closes the mesh everywhere, also where no camera looked (the underside of an object
standing on a table), and that guessed surface costs precision. After refinement each view
renders the mesh through the project's renderer and a face counts as observed when it is
the visible surface at a pixel whose depth reading agrees with the rendered depth (within
`AGREEMENT_VOXELS`), or when all three of its corners project onto agreeing depth readings
(a face smaller than a pixel is found that way). `surface_border.clean_border` then tidies
the cut. By default the unobserved faces are removed; with `closeHoles` they stay, on the
membrane of `hole_fill`, and are marked as filled so the export and metrics can tell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

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

# Rendered and measured depth agree within this many voxels on an observed face.
AGREEMENT_VOXELS = 2.0
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


def agreeing_faces(
    face_ids: torch.Tensor, rendered: torch.Tensor, measured: torch.Tensor, tolerance: float
) -> torch.Tensor:
    """Face indices (0-based) visible at pixels whose measured depth agrees with the
    rendered one; `face_ids` is the rasterizer's triangle index + 1 (0 = no face)."""
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
    tolerance = AGREEMENT_VOXELS * voxel
    hit = torch.zeros(len(mesh.faces), dtype=torch.bool, device=device)
    corner = torch.zeros(len(mesh.vertices), dtype=torch.bool, device=device)
    measured_all = torch.where(targets.surface, targets.depth, torch.zeros_like(targets.depth))
    with torch.no_grad():
        for b in range(len(targets.cameras)):  # one view at a time bounds the memory
            pos = to_clip(vertices, targets.clip[b : b + 1])
            rast = renderer.rasterize(pos, faces, targets.resolution)
            rendered = renderer.interpolate(pos[..., 3:4], rast, faces)[0, ..., 0]
            measured = measured_all[b]
            hit[agreeing_faces(rast[0, ..., 3], rendered, measured, tolerance)] = True
            corner |= agreeing_vertices(pos[0], measured, tolerance)
    all_corners = corner[faces.long()].all(dim=1)
    return (hit | all_corners).cpu().numpy()


def observed_surface(
    mesh: Mesh, targets: Targets, renderer: Renderer, voxel: float, close_holes: bool
) -> ObservedSurface:
    """The observed part of `mesh` (default), or all of it with the rest on a membrane."""
    mesh = compact(Mesh(mesh.vertices, mesh.faces[~twin_faces(mesh.faces)]))
    areas = face_areas(mesh.vertices, mesh.faces)
    seen = observed_faces(mesh, targets, renderer, voxel)
    keep = clean_border(mesh.faces, seen, areas, PINHOLE_VOXELS2 * voxel * voxel, ISLAND_FRACTION)
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
