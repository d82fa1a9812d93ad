"""Writing rendered views as a capture in the DESIGN.md input layout (nerfstudio subset).

By default the ideal capture: RGBA PNG colour (alpha the object mask) and 16-bit depth at
the colour resolution. `CaptureStyle` writes what phones and sensors store instead: JPEG
colour without alpha, depth at a fraction of the colour resolution (`depth_w`/`depth_h`,
intrinsics scaled), mask files, and confidence maps whose low level marks readings that are
wrong, so a test can tell whether the reader honours them. And the errors handheld phone
captures have: every view's pose off by a small rotation and translation (the true poses
render, the perturbed ones are written), depth measured at a fraction of the colour
resolution and stored nearest-upsampled, lit glossy colour (`Lighting`) and a per-view
exposure and white-balance gain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from recon_runner.camera import Camera
from recon_runner.synthetic.objects import SyntheticObject
from recon_runner.synthetic.views import (
    DepthNoise,
    Lighting,
    RenderedView,
    ViewRenderer,
    orbit_cameras,
    render_views,
)

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
    # Each view's written pose is its true one moved, in the camera's frame, by a rotation
    # of up to this many degrees and a translation of up to this many metres (each drawn
    # between half and all of it, in a random direction).
    pose_error_degrees: float = 0.0
    pose_error_m: float = 0.0
    # Depth measured at 1/depth_blocks of the colour resolution and written nearest-
    # upsampled to it (blocks of depth_blocks x depth_blocks pixels share one reading).
    depth_blocks: int = 1
    # Colour lit by this light (None: the albedo), then scaled per view by an exposure
    # gain within 1 +- exposure_gain and per channel by a white balance within a quarter
    # of that.
    lighting: Lighting | None = None
    exposure_gain: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.colour_format not in ("png", "jpeg"):
            raise ValueError(f"colour_format {self.colour_format!r} must be png or jpeg")
        if self.depth_scale < 1 or self.depth_blocks < 1:
            raise ValueError("depth_scale and depth_blocks must be at least 1")
        if self.depth_scale > 1 and self.depth_blocks > 1:
            raise ValueError("depth is either stored small (depth_scale) or upsampled, not both")

    def pose_error(self, index: int) -> npt.NDArray[np.float64]:
        """The camera-frame motion E of view `index`: written c2w = true c2w @ E."""
        rng = np.random.default_rng([self.seed, index, 11])
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = np.radians(self.pose_error_degrees) * rng.uniform(0.5, 1.0)
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        motion = np.eye(4)
        motion[:3, :3] = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)
        motion[:3, 3] = direction * self.pose_error_m * rng.uniform(0.5, 1.0)
        return motion

    def written_pose(self, index: int, c2w: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.pose_error_degrees == 0 and self.pose_error_m == 0:
            return np.asarray(c2w, dtype=np.float64)
        return np.asarray(c2w, dtype=np.float64) @ self.pose_error(index)

    def gain(self, index: int) -> npt.NDArray[np.float64]:
        """Per-channel colour gain of view `index`."""
        if self.exposure_gain == 0:
            return np.ones(3)
        rng = np.random.default_rng([self.seed, index, 13])
        exposure = rng.uniform(1.0 - self.exposure_gain, 1.0 + self.exposure_gain)
        balance = rng.uniform(1.0 - self.exposure_gain / 4, 1.0 + self.exposure_gain / 4, size=3)
        return np.asarray(exposure * balance, dtype=np.float64)

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
        rgba = view.rgba
        if style.exposure_gain != 0:
            gained = np.clip(np.rint(rgba[..., :3] * style.gain(i)), 0, 255).astype(np.uint8)
            rgba = np.concatenate([gained, rgba[..., 3:]], axis=-1)
        if style.colour_format == "jpeg":
            Image.fromarray(rgba[..., :3], mode="RGB").save(root / image_name, quality=JPEG_QUALITY)
        elif style.has_alpha:
            Image.fromarray(rgba, mode="RGBA").save(root / image_name)
        else:
            Image.fromarray(rgba[..., :3], mode="RGB").save(root / image_name)
        depth = depth_view.depth
        frame: dict[str, object] = {
            "file_path": image_name,
            "depth_file_path": depth_name,
            "transform_matrix": style.written_pose(i, cam.c2w).tolist(),
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
    cameras: list[Camera] | None = None,
    render: ViewRenderer = render_views,
) -> list[RenderedView]:
    """Render `obj` from an orbit of cameras and write the capture under `root`.

    `cameras`: the true cameras to render from, all `width` x `height` (`views` is then
    not used); default `orbit_cameras(obj, views, width, height)`. `render`: what makes
    the pixels, default the project's rasterizer; a test or benchmark passes an
    independent one so that a convention shared with the reconstruction cannot cancel
    out. Returns the
    views as written (noise applied; depth at the depth resolution), for callers that
    compare against them."""
    if cameras is None:
        cameras = orbit_cameras(obj, views, width, height)
    elif any((c.width, c.height) != (width, height) for c in cameras):
        raise ValueError(f"cameras must all be {width}x{height}")
    rendered = render(obj, cameras, style.lighting)
    depth_views = rendered
    k = max(style.depth_scale, style.depth_blocks)
    if k > 1:
        depth_views = render(obj, [c.resized(width // k, height // k) for c in cameras], None)
    if noise is not None:
        depth_views = [
            RenderedView(v.camera, v.rgba, noise.apply(v.depth, i))
            for i, v in enumerate(depth_views)
        ]
    if style.depth_blocks > 1:
        if width % k or height % k:
            raise ValueError(f"{width}x{height} is not a multiple of depth_blocks {k}")
        # Stored at the colour resolution, each reading repeated over its block.
        depth_views = [
            RenderedView(
                c,
                v.rgba,
                np.repeat(np.repeat(v.depth, k, axis=0), k, axis=1)[: c.height, : c.width],
            )
            for c, v in zip(cameras, depth_views, strict=True)
        ]
    write_views(rendered, root, depth_unit, style, depth_views)
    return [
        RenderedView(v.camera, v.rgba, d.depth) for v, d in zip(rendered, depth_views, strict=True)
    ]


# A handheld phone capture as the benchmark's phone family writes it: every pose off by up
# to half a degree and 5 mm, depth at a quarter of the colour resolution, nearest-upsampled,
# lit glossy colour with per-view exposure, JPEG without alpha (`PHONE_NOISE` adds a few
# millimetres of depth noise at the rig's 1.5-2 m).
PHONE = CaptureStyle(
    colour_format="jpeg",
    alpha=False,
    pose_error_degrees=0.5,
    pose_error_m=0.005,
    depth_blocks=4,
    lighting=Lighting(),
    exposure_gain=0.15,
)
PHONE_NOISE = DepthNoise(sigma_at_1m=0.001, dropout=0.02)
