"""Writing rendered views as a capture in the DESIGN.md input layout (nerfstudio subset)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from recon_runner.synthetic.objects import SyntheticObject
from recon_runner.synthetic.views import DepthNoise, RenderedView, orbit_cameras, render_views

# Depth units tried, finest first: the finest whose 16-bit range holds the farthest surface
# keeps quantisation (half a unit) far below the accuracy being measured.
DEPTH_UNITS = (0.0001, 0.0002, 0.0005, 0.001)
_MAX_UNITS = 65535


def choose_depth_unit(max_depth_m: float) -> float:
    for unit in DEPTH_UNITS:
        if max_depth_m / unit < _MAX_UNITS:
            return unit
    raise ValueError(f"depth {max_depth_m:.2f} m does not fit 16 bits even at 1 mm units")


def write_views(views: list[RenderedView], root: Path, depth_unit: float | None = None) -> Path:
    """transforms.json, images/view_NNN.png (RGBA) and depth/view_NNN.png (16-bit)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    (root / "depth").mkdir(exist_ok=True)
    if depth_unit is None:
        depth_unit = choose_depth_unit(max(float(v.depth.max()) for v in views))
    first = views[0].camera
    frames = []
    for i, view in enumerate(views):
        cam = view.camera
        image_name, depth_name = f"images/view_{i:03d}.png", f"depth/view_{i:03d}.png"
        Image.fromarray(view.rgba, mode="RGBA").save(root / image_name)
        units = np.round(view.depth.astype(np.float64) / depth_unit)
        if units.max() > _MAX_UNITS:
            raise ValueError(f"{depth_name}: depth exceeds 16 bits at unit {depth_unit} m")
        Image.fromarray(units.astype(np.uint16)).save(root / depth_name)
        frame: dict[str, object] = {
            "file_path": image_name,
            "depth_file_path": depth_name,
            "transform_matrix": cam.c2w.tolist(),
        }
        for key, value, default in (
            ("fl_x", cam.fx, first.fx),
            ("fl_y", cam.fy, first.fy),
            ("cx", cam.cx, first.cx),
            ("cy", cam.cy, first.cy),
        ):
            if value != default:
                frame[key] = value  # per-frame intrinsics override the shared ones
        frames.append(frame)
    transforms = {
        "camera_model": "PINHOLE",
        "w": first.width,
        "h": first.height,
        "fl_x": first.fx,
        "fl_y": first.fy,
        "cx": first.cx,
        "cy": first.cy,
        "depth_unit_scale_factor": depth_unit,
        "frames": frames,
    }
    path = root / "transforms.json"
    path.write_text(json.dumps(transforms, indent=2) + "\n")
    return path


def write_capture(
    obj: SyntheticObject,
    root: Path,
    views: int = 6,
    width: int = 256,
    height: int = 256,
    noise: DepthNoise | None = None,
    depth_unit: float | None = None,
) -> list[RenderedView]:
    """Render `obj` from an orbit of cameras and write the capture under `root`.

    Returns the views as written (noise applied), for callers that compare against them."""
    rendered = render_views(obj, orbit_cameras(obj, views, width, height))
    if noise is not None:
        rendered = [
            RenderedView(v.camera, v.rgba, noise.apply(v.depth, i)) for i, v in enumerate(rendered)
        ]
    write_views(rendered, root, depth_unit)
    return rendered
