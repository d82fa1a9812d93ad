"""Rendering a known object the way an RGB-D rig would see it, with the project's renderer.

Colour is the object's true surface colour evaluated at each pixel's surface point (no
lighting: the texture a reconstruction should recover is exactly this albedo). Depth is the
z-depth of the same point; the mask is the rasterizer's coverage, so all three agree.

With `Lighting`, colour is what a phone records of a lit, glossy object instead: the albedo
under Lambert shading from a fixed light, plus a white Blinn-Phong highlight that moves
with the viewpoint (what one view sees as a highlight, the others do not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import torch

from recon_runner.camera import (
    Camera,
    camera_from_fov,
    clip_matrix,
    look_at,
    scene_near_far,
    to_clip,
    world_to_camera,
)
from recon_runner.render import Renderer, get_renderer
from recon_runner.synthetic.objects import SyntheticObject

# Alternating elevations (radians) of the orbit: views from above and below, so every side,
# the top and the bottom are seen by some camera.
_ELEVATIONS = (0.6, -0.45)


@dataclass(frozen=True)
class RenderedView:
    camera: Camera
    rgba: npt.NDArray[np.uint8]  # [H,W,4], alpha 255 on the object
    depth: npt.NDArray[np.float32]  # [H,W] z-depth in metres, 0 off the object


@dataclass(frozen=True)
class Lighting:
    """A fixed directional light with ambient fill, and a specular lobe."""

    direction: tuple[float, float, float] = (0.3, -0.4, 0.87)  # towards the light, world
    ambient: float = 0.55
    diffuse: float = 0.45
    specular: float = 0.6
    shininess: float = 40.0

    def lambertian(
        self, albedo: npt.NDArray[np.float64], normals: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """The view-independent part: what a texture of the lit object can hold."""
        light = np.asarray(self.direction, dtype=np.float64)
        lambert = np.clip(normals @ (light / np.linalg.norm(light)), 0.0, None)
        return np.asarray(albedo * (self.ambient + self.diffuse * lambert)[:, None])

    def shade(
        self,
        albedo: npt.NDArray[np.float64],
        normals: npt.NDArray[np.float64],
        to_eye: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        light = np.asarray(self.direction, dtype=np.float64)
        light = light / np.linalg.norm(light)
        lambert = np.clip(normals @ light, 0.0, None)
        half = light + to_eye
        half /= np.linalg.norm(half, axis=1, keepdims=True).clip(min=1e-12)
        gloss = np.clip((normals * half).sum(axis=1), 0.0, None) ** self.shininess
        lit = albedo * (self.ambient + self.diffuse * lambert)[:, None]
        return np.clip(lit + self.specular * (gloss * (lambert > 0))[:, None], 0.0, 1.0)


@dataclass(frozen=True)
class DepthNoise:
    """A structured-light style depth error: Gaussian with a standard deviation growing with
    the square of the depth, and a fraction of the object's pixels returning no depth."""

    sigma_at_1m: float = 0.001
    dropout: float = 0.02
    seed: int = 0

    def apply(self, depth: npt.NDArray[np.float32], view_index: int) -> npt.NDArray[np.float32]:
        rng = np.random.default_rng([self.seed, view_index])
        valid = depth > 0
        noisy = depth + rng.normal(size=depth.shape) * self.sigma_at_1m * depth**2
        dropped = rng.random(depth.shape) < self.dropout
        return np.where(valid & ~dropped, np.maximum(noisy, 0.0), 0.0).astype(np.float32)


def orbit_cameras(
    obj: SyntheticObject,
    views: int = 6,
    width: int = 256,
    height: int = 256,
    fov_degrees: float = 40.0,
    fill: float = 0.85,
    elevations: tuple[float, ...] = _ELEVATIONS,
) -> list[Camera]:
    """`views` cameras evenly around the object, each far enough that the object's bounding
    sphere spans `fill` of the narrower image side, at `elevations` (radians) in turn:
    by default alternately above and below it (a benchmark passes rings of its own)."""
    lo, hi = obj.bounds
    centre = (lo + hi) / 2.0
    radius = float(np.linalg.norm(obj.mesh.vertices.astype(np.float64) - centre, axis=1).max())
    half_fov = np.radians(fov_degrees) / 2.0
    if width < height:
        half_fov = np.arctan(np.tan(half_fov) * width / height)
    distance = radius / np.sin(np.arctan(np.tan(half_fov) * fill))
    cameras = []
    for i in range(views):
        azimuth = 2.0 * np.pi * i / views + 0.3
        elevation = elevations[i % len(elevations)]
        direction = np.array(
            [
                np.cos(azimuth) * np.cos(elevation),
                np.sin(azimuth) * np.cos(elevation),
                np.sin(elevation),
            ]
        )
        c2w = look_at(centre + distance * direction, centre)
        cameras.append(camera_from_fov(fov_degrees, width, height, c2w))
    return cameras


class ViewRenderer(Protocol):
    """Colour, mask and z-depth of an object from each camera, colour lit by `lighting`
    when given (`render_views` is the project's; tests pass an independent one)."""

    def __call__(
        self, obj: SyntheticObject, cameras: list[Camera], lighting: Lighting | None, /
    ) -> list[RenderedView]: ...


def render_views(
    obj: SyntheticObject,
    cameras: list[Camera],
    lighting: Lighting | None = None,
    renderer: Renderer | None = None,
) -> list[RenderedView]:
    """Colour, mask and z-depth of the object from each camera, row 0 at the top; the
    colour is the albedo, or the albedo lit by `lighting`."""
    renderer = renderer or get_renderer()
    device = renderer.device
    lo, hi = obj.bounds
    verts = torch.as_tensor(obj.mesh.vertices, dtype=torch.float32, device=device)
    faces = torch.as_tensor(obj.mesh.faces, dtype=torch.int32, device=device)
    out = []
    for camera in cameras:  # one at a time: cameras may differ in size
        matrix = clip_matrix(camera, *scene_near_far(camera, lo, hi))
        pos = to_clip(verts, torch.as_tensor(matrix, dtype=torch.float32, device=device)[None])
        with torch.no_grad():
            rast = renderer.rasterize(pos, faces, (camera.height, camera.width))
            world = renderer.interpolate(verts, rast, faces)[0].double().cpu().numpy()
        face_ids = rast[0, ..., 3].cpu().numpy().astype(np.int64)
        covered = face_ids > 0
        points = world[covered]
        rgba = np.zeros((camera.height, camera.width, 4), dtype=np.uint8)
        colour = np.clip(obj.true_colour(points), 0.0, 1.0)
        if lighting is not None:
            normals = _face_normals(obj)[face_ids[covered] - 1]
            to_eye = camera.position - points
            to_eye /= np.linalg.norm(to_eye, axis=1, keepdims=True)
            colour = lighting.shade(colour, normals, to_eye)
        rgba[covered, :3] = np.round(colour * 255.0).astype(np.uint8)
        rgba[covered, 3] = 255
        depth = np.zeros((camera.height, camera.width), dtype=np.float32)
        depth[covered] = -world_to_camera(camera, points)[:, 2]
        out.append(RenderedView(camera, rgba, depth))
    return out


def _face_normals(obj: SyntheticObject) -> npt.NDArray[np.float64]:
    v = obj.mesh.vertices.astype(np.float64)[obj.mesh.faces]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    out: npt.NDArray[np.float64] = n / np.linalg.norm(n, axis=1, keepdims=True).clip(min=1e-12)
    return out
