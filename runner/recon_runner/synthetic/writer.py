"""Writing rendered views as a capture in the DESIGN.md input layout (nerfstudio subset).

By default the ideal capture: RGBA PNG colour (alpha the object mask) and 16-bit depth at
the colour resolution. `CaptureStyle` writes what phones and sensors store instead: JPEG
colour without alpha, depth at a fraction of the colour resolution (`depth_w`/`depth_h`,
intrinsics scaled), mask files, and confidence maps whose low level marks readings that are
wrong, so a test can tell whether the reader honours them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from recon_runner.synthetic.objects import SyntheticObject
from recon_runner.synthetic.views import DepthNoise, RenderedView, orbit_cameras, render_views

# Depth units tried, finest first: the finest whose 16-bit range holds the farthest surface
# keeps quantisation (half a unit) far below the accuracy being measured.
DEPTH_UNITS = (0.0001, 0.0002, 0.0005, 0.001)
_MAX_UNITS = 65535
JPEG_QUALITY = 95


@dataclass(frozen=True)
class CaptureStyle:
    """How the capture is stored. The defaults are the ideal capture."""

    colour_format: str = "png"  # "png" or "jpeg"
    alpha: bool = True  # PNG colour carries the object mask as alpha (never for JPEG)
    mask_files: bool = False  # masks/view_NNN.png, named by each frame's mask_path
    depth_scale: int = 1  # depth maps at 1/depth_scale of the colour width and height
    confidence: bool = False  # confidence/view_NNN.png, named by confidence_path
    # The three confidence levels as written: ARKit's (0, 1, 2) or Polycam's (0, 127, 255).
    confidence_levels: tuple[int, int, int] = (0, 1, 2)
    # Fraction of the object's depth readings pushed this far off (`outlier_offset`, metres)
    # and marked low confidence: a reader that ignores confidence fuses them.
    low_confidence_outliers: float = 0.0
    outlier_offset: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.colour_format not in ("png", "jpeg"):
            raise ValueError(f"colour_format {self.colour_format!r} must be png or jpeg")
        if self.depth_scale < 1:
            raise ValueError("depth_scale must be at least 1")

    @property
    def has_alpha(self) -> bool:
        return self.alpha and self.colour_format == "png"


IDEAL = CaptureStyle()


def choose_depth_unit(max_depth_m: float) -> float:
    for unit in DEPTH_UNITS:
        if max_depth_m / unit < _MAX_UNITS:
            return unit
    raise ValueError(f"depth {max_depth_m:.2f} m does not fit 16 bits even at 1 mm units")


def _with_outliers(
    depth: npt.NDArray[np.float32], style: CaptureStyle, index: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    """(depth with outliers, confidence levels as written)."""
    rng = np.random.default_rng([style.seed, index, 7])
    valid = depth > 0
    outlier = valid & (rng.random(depth.shape) < style.low_confidence_outliers)
    depth = np.where(outlier, depth + np.float32(style.outlier_offset), depth).astype(np.float32)
    low, _medium, high = style.confidence_levels
    levels = np.full(depth.shape, low, dtype=np.uint8)
    levels[valid & ~outlier] = high
    return depth, levels


def write_views(
    views: list[RenderedView],
    root: Path,
    depth_unit: float | None = None,
    style: CaptureStyle = IDEAL,
    depth_views: list[RenderedView] | None = None,
) -> Path:
    """transforms.json, images/view_NNN.{png,jpg}, depth/view_NNN.png (16-bit) and, as the
    style asks, masks/ and confidence/. `depth_views`: the depth maps, rendered by each
    view's depth camera (same pose, other resolution); default the views' own depth."""
    root.mkdir(parents=True, exist_ok=True)
    for folder in (
        ("images", "depth")
        + ("masks",) * style.mask_files
        + (("confidence",) if style.confidence else ())
    ):
        (root / folder).mkdir(exist_ok=True)
    depths = depth_views or views
    if depth_unit is None:
        far = max(float(v.depth.max()) for v in depths)
        depth_unit = choose_depth_unit(far + style.outlier_offset * bool(style.confidence))
    first, first_depth = views[0].camera, depths[0].camera
    extension = "jpg" if style.colour_format == "jpeg" else "png"
    frames = []
    for i, (view, depth_view) in enumerate(zip(views, depths, strict=True)):
        cam = view.camera
        image_name, depth_name = f"images/view_{i:03d}.{extension}", f"depth/view_{i:03d}.png"
        if style.colour_format == "jpeg":
            Image.fromarray(view.rgba[..., :3], mode="RGB").save(
                root / image_name, quality=JPEG_QUALITY
            )
        elif style.has_alpha:
            Image.fromarray(view.rgba, mode="RGBA").save(root / image_name)
        else:
            Image.fromarray(view.rgba[..., :3], mode="RGB").save(root / image_name)
        depth = depth_view.depth
        frame: dict[str, object] = {
            "file_path": image_name,
            "depth_file_path": depth_name,
            "transform_matrix": cam.c2w.tolist(),
        }
        if style.confidence:
            depth, levels = _with_outliers(depth, style, i)
            confidence_name = f"confidence/view_{i:03d}.png"
            Image.fromarray(levels, mode="L").save(root / confidence_name)
            frame["confidence_path"] = confidence_name
        if style.mask_files:
            mask_name = f"masks/view_{i:03d}.png"
            Image.fromarray(view.rgba[..., 3], mode="L").save(root / mask_name)
            frame["mask_path"] = mask_name
        units = np.round(depth.astype(np.float64) / depth_unit)
        if units.max() > _MAX_UNITS:
            raise ValueError(f"{depth_name}: depth exceeds 16 bits at unit {depth_unit} m")
        Image.fromarray(units.astype(np.uint16)).save(root / depth_name)
        for key, value, default in (
            ("fl_x", cam.fx, first.fx),
            ("fl_y", cam.fy, first.fy),
            ("cx", cam.cx, first.cx),
            ("cy", cam.cy, first.cy),
        ):
            if value != default:
                frame[key] = value  # per-frame intrinsics override the shared ones
        frames.append(frame)
    transforms: dict[str, object] = {
        "camera_model": "PINHOLE",
        "w": first.width,
        "h": first.height,
        "fl_x": first.fx,
        "fl_y": first.fy,
        "cx": first.cx,
        "cy": first.cy,
        "depth_unit_scale_factor": depth_unit,
    }
    if (first_depth.width, first_depth.height) != (first.width, first.height):
        # The depth intrinsics are the colour ones scaled: the contract's default.
        transforms.update(depth_w=first_depth.width, depth_h=first_depth.height)
    transforms["frames"] = frames
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
    style: CaptureStyle = IDEAL,
) -> list[RenderedView]:
    """Render `obj` from an orbit of cameras and write the capture under `root`.

    Returns the views as written (noise applied; depth at the depth resolution), for
    callers that compare against them."""
    cameras = orbit_cameras(obj, views, width, height)
    rendered = render_views(obj, cameras)
    depth_views = rendered
    if style.depth_scale > 1:
        k = style.depth_scale
        depth_views = render_views(obj, [c.resized(width // k, height // k) for c in cameras])
    if noise is not None:
        depth_views = [
            RenderedView(v.camera, v.rgba, noise.apply(v.depth, i))
            for i, v in enumerate(depth_views)
        ]
    write_views(rendered, root, depth_unit, style, depth_views)
    return [
        RenderedView(v.camera, v.rgba, d.depth) for v, d in zip(rendered, depth_views, strict=True)
    ]
