"""Test captures rendered by an independent ray caster, in the DESIGN.md input layout.

The project's own synthetic captures come from its rasterizer (recon_runner.render), the
same code that refines and textures the mesh; a convention error shared by both (pixel
centres, axes, depth along the ray instead of the viewing axis) would cancel out and the
reconstruction would still look accurate. These captures are cast instead with trimesh's
ray queries on Intel Embree (embreex from PyPI: a maintained, independently written ray
engine). `write_raycast_capture` places its own cameras, casts its own pixel rays and
writes its own files, using none of the project's camera, synthetic or capture code; only
the truth object (a mesh and its colour function, and for lit views the `Lighting` model)
is shared, because it is what the reconstruction is measured against. `raycast_views`
casts cameras it is given instead, for the project's writer to store as a phone would
(the benchmarks' phone families): it reads only the cameras' numbers, so the writer's
degradations are shared with the project but the pixels are not.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import trimesh
from PIL import Image
from recon_runner.camera import Camera
from recon_runner.synthetic.objects import SyntheticObject
from recon_runner.synthetic.views import Lighting, RenderedView

Matrix = npt.NDArray[np.float64]
# Finest depth unit whose 16-bit range holds the farthest surface.
_DEPTH_UNITS = (0.0001, 0.0002, 0.0005, 0.001)
_ELEVATIONS = (0.6, -0.45)


def orbit_poses(centre: Matrix, distance: float, views: int) -> list[Matrix]:
    """Camera-to-world matrices (OpenGL axes: looks down -Z, +Y up) around `centre`,
    alternately above and below it, each looking at it with +Z of the world up."""
    poses = []
    for i in range(views):
        azimuth = 2.0 * np.pi * i / views + 0.3
        elevation = _ELEVATIONS[i % 2]
        eye = centre + distance * np.array(
            [
                np.cos(azimuth) * np.cos(elevation),
                np.sin(azimuth) * np.cos(elevation),
                np.sin(elevation),
            ]
        )
        back = (eye - centre) / np.linalg.norm(eye - centre)  # camera +Z points away
        right = np.cross([0.0, 0.0, 1.0], back)
        right /= np.linalg.norm(right)
        up = np.cross(back, right)
        pose = np.eye(4)
        pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, up, back, eye
        poses.append(pose)
    return poses


def cast_pixels(
    mesh: trimesh.Trimesh,
    obj: SyntheticObject,
    pose: Matrix,
    intrinsics: tuple[float, float, float, float],
    width: int,
    height: int,
    lighting: Lighting | None = None,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
    """RGBA (alpha = hit) and z-depth in metres along the viewing axis of one pinhole view
    (`intrinsics`: fx, fy, cx, cy in pixels); one ray through the centre of each pixel, row
    0 at the top. With `lighting`, the colour is the albedo lit at the hit face's normal as
    seen from the camera (the truth model of the phone family, not a renderer)."""
    fx, fy, cx, cy = intrinsics
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    camera_dirs = np.stack(
        [(cols + 0.5 - cx) / fx, -(rows + 0.5 - cy) / fy, -np.ones_like(rows)], axis=-1
    ).reshape(-1, 3)
    directions = camera_dirs @ pose[:3, :3].T
    origins = np.broadcast_to(pose[:3, 3], directions.shape)
    hits, ray_index, face_index = mesh.ray.intersects_location(
        origins, directions, multiple_hits=False
    )
    rgba = np.zeros((height * width, 4), dtype=np.uint8)
    depth = np.zeros(height * width, dtype=np.float64)
    colour = np.clip(obj.true_colour(hits), 0.0, 1.0)
    if lighting is not None:
        to_eye = pose[:3, 3] - hits
        to_eye /= np.linalg.norm(to_eye, axis=1, keepdims=True)
        colour = lighting.shade(colour, mesh.face_normals[face_index], to_eye)
    rgba[ray_index, :3] = np.round(colour * 255.0).astype(np.uint8)
    rgba[ray_index, 3] = 255
    depth[ray_index] = (hits - pose[:3, 3]) @ -pose[:3, 2]
    return rgba.reshape(height, width, 4), depth.reshape(height, width)


def _embree_mesh(obj: SyntheticObject) -> trimesh.Trimesh:
    if not trimesh.ray.has_embree:
        raise RuntimeError("embreex is not installed (pip install embreex; the dev extra)")
    return trimesh.Trimesh(obj.mesh.vertices, obj.mesh.faces, process=False)


def raycast_views(
    obj: SyntheticObject, cameras: list[Camera], lighting: Lighting | None = None
) -> list[RenderedView]:
    """The views of `cameras` cast by Embree, in the shape the project's synthetic writer
    stores (`recon_runner.synthetic.write_capture(..., render=raycast_views)`): so the
    phone family's degradations (pose error, depth blocks, noise, exposure, JPEG) apply to
    ray-cast pixels. Only the cameras' numbers are read (intrinsics, size, c2w); the rays,
    hits, depth and shading are computed here."""
    mesh = _embree_mesh(obj)
    views = []
    for camera in cameras:
        rgba, depth = cast_pixels(
            mesh,
            obj,
            np.asarray(camera.c2w, dtype=np.float64),
            (camera.fx, camera.fy, camera.cx, camera.cy),
            camera.width,
            camera.height,
            lighting,
        )
        views.append(RenderedView(camera, rgba, depth.astype(np.float32)))
    return views


DepthError = Callable[[npt.NDArray[np.float32], int], npt.NDArray[np.float32]]


def write_raycast_capture(
    obj: SyntheticObject,
    root: Path,
    views: int = 6,
    size: int = 128,
    fov_degrees: float = 40.0,
    depth_error: DepthError | None = None,
) -> Path:
    """Ray-cast `obj` from an orbit of `views` square `size`-pixel cameras whose vertical
    field of view is `fov_degrees`, framed so the object's bounding sphere fills 85% of
    the image, and write transforms.json, images/ and depth/ under `root`. `depth_error`
    (a depth map and its view index in, the measured map out; for example
    `recon_runner.synthetic.views.DepthNoise().apply`) degrades each depth map the way a
    sensor would before it is stored."""
    mesh = _embree_mesh(obj)
    lo, hi = mesh.bounds
    centre = (lo + hi) / 2.0
    radius = float(np.linalg.norm(mesh.vertices - centre, axis=1).max())
    half_fov = np.radians(fov_degrees) / 2.0
    focal = 0.5 * size / np.tan(half_fov)
    distance = radius / np.sin(np.arctan(np.tan(half_fov) * 0.85))
    poses = orbit_poses(centre, distance, views)
    centre_px = size / 2.0
    cast = [
        cast_pixels(mesh, obj, pose, (focal, focal, centre_px, centre_px), size, size)
        for pose in poses
    ]
    if depth_error is not None:
        cast = [
            (rgba, depth_error(depth.astype(np.float32), i).astype(np.float64))
            for i, (rgba, depth) in enumerate(cast)
        ]
    farthest = max(float(depth.max()) for _, depth in cast)
    unit = next(u for u in _DEPTH_UNITS if farthest / u < 65535)
    for folder in ("images", "depth"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    frames = []
    for i, ((rgba, depth), pose) in enumerate(zip(cast, poses, strict=True)):
        image, depth_file = f"images/view_{i:03d}.png", f"depth/view_{i:03d}.png"
        Image.fromarray(rgba, mode="RGBA").save(root / image)
        Image.fromarray(np.round(depth / unit).astype(np.uint16)).save(root / depth_file)
        frames.append(
            {"file_path": image, "depth_file_path": depth_file, "transform_matrix": pose.tolist()}
        )
    transforms = {
        "camera_model": "PINHOLE",
        "w": size,
        "h": size,
        "fl_x": focal,
        "fl_y": focal,
        "cx": size / 2.0,
        "cy": size / 2.0,
        "depth_unit_scale_factor": unit,
        "frames": frames,
    }
    path = root / "transforms.json"
    path.write_text(json.dumps(transforms, indent=2) + "\n")
    return path
