"""The working set: which of a large capture's views the surface stages hold, by coverage.

Fusion and pose alignment take the views one at a time, so they use every view at a cost
that only grows linearly. Refinement, the observed-surface test and texturing hold their
views as batched tensors at a working resolution and revisit them at every step, so their
memory, and how often each view is looked at in a fixed number of steps, depend on how many
they hold. A phone capture of 200 keyframes sees each part of the object from dozens of
nearly identical positions; a few of them, chosen so that together they see what all of
them see and each part squarely, constrain the surface as well at a fixed cost, and each
is revisited often enough to matter.

The choice is a greedy weighted maximum coverage over the fused mesh's vertices: a view
scores, for each vertex it sees, the cosine of the angle it sees the surface at, weighted by
the vertex's share of the surface area; each pick is the view that raises the sum of every
vertex's best score the most. Greedy picks come out complementary (the second looks where
the first did not), so refinement, which cycles through the working set in order, spreads
each run of steps over the whole object. The picks stop at the preset's limit or once no
view adds anything. A capture with no more views than the limit keeps all of them, in their
own order, so small captures are reconstructed as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from recon_runner.camera import clip_matrix, scene_near_far, to_clip
from recon_runner.mesh import Mesh
from recon_runner.render import Renderer
from recon_runner.stages.capture import Capture
from recon_runner.stages.export import vertex_normals
from recon_runner.stages.observed import agreeing_vertices
from recon_runner.stages.targets import working_size
from recon_runner.surface_query import face_areas

# Visibility is judged on renders with this many pixels along the longest side: enough to
# tell which side of the object a view sees, cheap for hundreds of views.
SELECTION_LONGEST = 128
# A vertex is seen where its depth is within this many fusion voxels of the rendered depth
# at its pixel (a pixel of the coarse render spans a few voxels on a slanted surface).
VISIBLE_VOXELS = 3.0
# A view that adds less than this fraction of the best possible total adds nothing.
NEGLIGIBLE_GAIN = 1e-4


@dataclass(frozen=True)
class SelectionConfig:
    """How many views the surface stages hold at most."""

    limit: int


def vertex_weights(mesh: Mesh) -> npt.NDArray[np.float64]:
    """[V] each vertex's share of the surface: a third of its faces' areas."""
    areas = face_areas(mesh.vertices, mesh.faces)
    weights = np.zeros(len(mesh.vertices))
    for k in range(3):
        np.add.at(weights, mesh.faces[:, k], areas / 3.0)
    return weights


def view_scores(
    mesh: Mesh, capture: Capture, voxel: float, renderer: Renderer, device: torch.device
) -> npt.NDArray[np.float32]:
    """[views, V] how squarely each view sees each vertex: the cosine between the surface
    normal and the direction to the camera where the vertex is the visible surface, 0
    where it is hidden, facing away or outside the image."""
    vertices = mesh.vertices.astype(np.float64)
    normals = vertex_normals(mesh.vertices, mesh.faces).astype(np.float64)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    verts = torch.from_numpy(mesh.vertices.astype(np.float32)).to(device)
    faces = torch.from_numpy(mesh.faces.astype(np.int32)).to(device)
    scores = np.zeros((len(capture.views), len(vertices)), dtype=np.float32)
    for i, view in enumerate(capture.views):
        height, width, _ = working_size(view, SELECTION_LONGEST)
        camera = view.camera.resized(width, height)
        matrix = clip_matrix(camera, *scene_near_far(camera, lo, hi, margin=0.1))
        clip = to_clip(verts, torch.as_tensor(matrix, dtype=torch.float32, device=device)[None])
        with torch.no_grad():
            rast = renderer.rasterize(clip, faces, (height, width))
            rendered = renderer.interpolate(clip[..., 3:4], rast, faces)[0, ..., 0]
        rendered = torch.where(rast[0, ..., 3] > 0, rendered, torch.zeros_like(rendered))
        visible = agreeing_vertices(clip[0], rendered, VISIBLE_VOXELS * voxel).cpu().numpy()
        to_camera = camera.position - vertices
        to_camera /= np.linalg.norm(to_camera, axis=1, keepdims=True).clip(min=1e-12)
        facing = np.sum(normals * to_camera, axis=1)
        scores[i] = np.where(visible, np.clip(facing, 0.0, 1.0), 0.0)
    return scores


def choose_views(
    scores: npt.NDArray[np.float32], weights: npt.NDArray[np.float64], limit: int
) -> list[int]:
    """Greedy weighted maximum coverage: view indices in the order picked, at most
    `limit`, stopping early once no view adds a negligible share."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    best = np.zeros(scores.shape[1], dtype=np.float64)
    ceiling = float((scores.max(axis=0, initial=0.0) * weights).sum())
    chosen: list[int] = []
    while len(chosen) < min(limit, len(scores)):
        gains = ((np.maximum(scores, best) - best) * weights).sum(axis=1)
        gains[chosen] = -1.0
        pick = int(np.argmax(gains))
        if chosen and gains[pick] <= NEGLIGIBLE_GAIN * ceiling:
            break
        chosen.append(pick)
        best = np.maximum(best, scores[pick])
    return chosen


def working_set(
    mesh: Mesh,
    capture: Capture,
    voxel: float,
    config: SelectionConfig,
    renderer: Renderer,
    device: torch.device,
) -> list[int]:
    """The indices of the views the surface stages hold: every view, in order, when there
    are no more than `config.limit`; otherwise the coverage choice."""
    if len(capture.views) <= config.limit:
        return list(range(len(capture.views)))
    scores = view_scores(mesh, capture, voxel, renderer, device)
    return choose_views(scores, vertex_weights(mesh), config.limit)
