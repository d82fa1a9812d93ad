"""An analytic sphere capture written in the DESIGN.md layout.

Depth comes from a closed-form ray-sphere intersection, not from the project's renderer,
so loader and fusion tests check against ground truth that shares no code with them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from recon_runner.camera import Camera, camera_from_fov, look_at, pixel_centres

CENTRE = np.array([0.1, -0.05, 0.2])
RADIUS = 0.3
DEPTH_UNIT = 0.0001  # 0.1 mm, so quantisation stays far below the tolerances tested


def sphere_cameras(size: int = 96, views: int = 6, distance: float = 1.2) -> list[Camera]:
    """Cameras around the sphere on two rings, looking at its centre."""
    cameras = []
    for i in range(views):
        azimuth = 2 * np.pi * i / views
        elevation = 0.5 if i % 2 == 0 else -0.4
        direction = np.array(
            [
                np.cos(azimuth) * np.cos(elevation),
                np.sin(azimuth) * np.cos(elevation),
                np.sin(elevation),
            ]
        )
        c2w = look_at(CENTRE + distance * direction, CENTRE)
        cameras.append(camera_from_fov(45.0, size, size, c2w))
    return cameras


def sphere_depth(camera: Camera) -> np.ndarray:
    """Z-depth of the sphere at every pixel centre; 0 where the ray misses."""
    pix = pixel_centres(camera)
    x = (pix[..., 0] - camera.cx) / camera.fx
    y = -(pix[..., 1] - camera.cy) / camera.fy
    rays_cam = np.stack([x, y, -np.ones_like(x)], axis=-1)  # z-depth 1 along each ray
    rays = rays_cam @ camera.c2w[:3, :3].T
    origin = camera.c2w[:3, 3]
    oc = origin - CENTRE
    a = np.einsum("...i,...i", rays, rays)
    b = 2 * np.einsum("...i,i", rays, oc)
    c = oc @ oc - RADIUS**2
    disc = b * b - 4 * a * c
    t = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
    return np.where(disc > 0, t, 0.0)


def sphere_colour(points: np.ndarray) -> np.ndarray:
    """A smooth colour pattern on the sphere, in 0..1."""
    n = (points - CENTRE) / RADIUS
    return np.clip(0.5 + 0.4 * n, 0.0, 1.0)


def write_sphere_capture(root: Path, size: int = 96, views: int = 6, alpha: bool = True) -> None:
    cameras = sphere_cameras(size, views)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "depth").mkdir(parents=True, exist_ok=True)
    frames = []
    for i, cam in enumerate(cameras):
        depth = sphere_depth(cam)
        mask = depth > 0
        pix = pixel_centres(cam)
        x = (pix[..., 0] - cam.cx) / cam.fx * depth
        y = -(pix[..., 1] - cam.cy) / cam.fy * depth
        world = np.stack([x, y, -depth], axis=-1) @ cam.c2w[:3, :3].T + cam.c2w[:3, 3]
        rgb = np.where(mask[..., None], sphere_colour(world), 0.0)
        rgb8 = np.round(rgb * 255).astype(np.uint8)
        if alpha:
            rgba = np.concatenate([rgb8, (mask * 255).astype(np.uint8)[..., None]], axis=-1)
            Image.fromarray(rgba, "RGBA").save(root / f"images/view_{i:03d}.png")
        else:
            Image.fromarray(rgb8, "RGB").save(root / f"images/view_{i:03d}.png")
        depth16 = np.round(depth / DEPTH_UNIT).astype(np.uint16)
        Image.fromarray(depth16).save(root / f"depth/view_{i:03d}.png")
        frames.append(
            {
                "file_path": f"images/view_{i:03d}.png",
                "depth_file_path": f"depth/view_{i:03d}.png",
                "transform_matrix": cam.c2w.tolist(),
            }
        )
    cam0 = cameras[0]
    meta = {
        "w": cam0.width,
        "h": cam0.height,
        "fl_x": cam0.fx,
        "fl_y": cam0.fy,
        "cx": cam0.cx,
        "cy": cam0.cy,
        "camera_model": "PINHOLE",
        "depth_unit_scale_factor": DEPTH_UNIT,
        "frames": frames,
    }
    (root / "transforms.json").write_text(json.dumps(meta, indent=1))
