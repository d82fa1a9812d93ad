"""Load a capture folder (DESIGN.md's input layout) and check what only decoding can show.

transforms.json is read through the capture contract (`recon_api.capture_layout`), the one
the operator validated the job with, so its rules are not restated here. What remains are
problems in the decoded content (an all-zero depth map, an empty mask, a file whose pixels
disagree with its header, depth far outside the scene). Each ends the run as bad input
naming the file, because retrying a broken capture cannot help.

Colour comes as PNG or JPEG (EXIF orientation is ignored: pixels are used as stored, the
size the header gives); depth may have another resolution than colour, with its own
intrinsics (`depth_camera`, the same pose); depth stored at the colour size with each
reading repeated over aligned blocks is read back at the size it was measured at
(`repeated_block`). Which pixels are the object: a mask file
(`mask_path`), else the colour's alpha, else what the depth measures inside `bounds`
(everything it measures without bounds). Only a given mask says where the object is not;
a mask derived from depth says nothing about pixels without depth, which are holes in the
measurement, not background (`View.mask_given`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError
from recon_api.capture_layout import (
    TRANSFORMS,
    CaptureLayout,
    Frame,
    Intrinsics,
    load_layout,
)
from recon_api.constants import MAX_IMAGE_PIXELS

from recon_runner.camera import Camera, backproject_depth, resample_nearest
from recon_runner.errors import InvalidInputError

# A view whose points sit this many scene radii from the scene centre measured in metres
# the wrong way (wrong unit, a sentinel value, a swapped file).
FAR_OUTSIDE_RADII = 4.0
# Fusion and refinement weight of depth at each confidence level (ARKit's low, medium,
# high): low-confidence depth (flying pixels at edges, glossy and dark surfaces) is dropped,
# medium counts half.
CONFIDENCE_WEIGHTS = (0.0, 0.5, 1.0)
# Block sides tried, largest first, for depth stored nearest-upsampled (`repeated_block`).
REPEAT_BLOCKS = (8, 4, 2)

Bounds = tuple[tuple[float, float, float], tuple[float, float, float]]


@dataclass(frozen=True)
class View:
    """One decoded frame, in the conventions of `camera.py`."""

    image_file: str
    depth_file: str
    # [H, W, 3] sRGB bytes as stored: a quarter of the memory of floats, which counts with
    # hundreds of views held at once (`targets` turns them into 0..1 floats per view).
    rgb: npt.NDArray[np.uint8]
    mask: npt.NDArray[np.bool_]  # [H, W] object pixels (colour resolution)
    depth: npt.NDArray[np.float32]  # [Hd, Wd] z-depth in metres of the object, 0 = none
    camera: Camera  # the colour camera
    depth_camera: Camera | None = None  # the depth map's camera (same pose); None: `camera`
    # [Hd, Wd] how much each depth reading counts (confidence), 0 where there is none;
    # None: 1 wherever there is depth.
    depth_weight: npt.NDArray[np.float32] | None = None
    # Whether `mask` came from the capture (alpha or a mask file): then pixels outside it
    # are known free space. A mask derived from depth is not evidence of background.
    mask_given: bool = True

    @property
    def depth_cam(self) -> Camera:
        return self.camera if self.depth_camera is None else self.depth_camera

    @property
    def weight(self) -> npt.NDArray[np.float32]:
        if self.depth_weight is not None:
            return self.depth_weight
        return (self.depth > 0).astype(np.float32)

    def depth_at_colour(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """(depth, weight) on the colour camera's pixel grid: nearest reading on the same
        ray, so stages that compare with colour see depth where colour is."""
        d, c = self.depth_cam, self.camera
        if (d.fx, d.fy, d.cx, d.cy, d.width, d.height) == (
            c.fx,
            c.fy,
            c.cx,
            c.cy,
            c.width,
            c.height,
        ):
            return self.depth, self.weight
        depth = resample_nearest(self.depth, self.depth_cam, self.camera)
        weight = resample_nearest(self.weight, self.depth_cam, self.camera)
        return depth.astype(np.float32), weight.astype(np.float32)


@dataclass(frozen=True)
class Capture:
    views: tuple[View, ...]
    depth_unit: float
    bounds: Bounds | None = None

    def subset(self, indices: Sequence[int]) -> Capture:
        """The given views only (`view_selection`'s working set), in that order."""
        return replace(self, views=tuple(self.views[i] for i in indices))

    def points(self) -> npt.NDArray[np.float32]:
        """All back-projected object points in the world frame [N, 3]."""
        return np.concatenate([back_project(v) for v in self.views], axis=0)


def back_project(view: View) -> npt.NDArray[np.float32]:
    """World points of the view's object depth readings, through the depth pixel centres."""
    points = backproject_depth(view.depth_cam, view.depth.astype(np.float64))
    return points[view.depth > 0].astype(np.float32)


def read_layout_bytes(data: bytes, expected_views: int | None = None) -> CaptureLayout:
    """transforms.json's bytes through the capture contract; its first problem (and how
    many more there are) as InvalidInputError naming the field."""
    layout = load_layout(data, expected_views)
    if layout.problems:
        first, rest = layout.problems[0], len(layout.problems) - 1
        more = f" (and {rest} more problem{'s' if rest != 1 else ''})" if rest else ""
        raise InvalidInputError(first.where, first.message + more)
    return layout


def read_layout(root: Path, expected_views: int | None = None) -> CaptureLayout:
    """The capture folder's transforms.json through the capture contract."""
    path = root / TRANSFORMS
    if not path.is_file():
        raise InvalidInputError(TRANSFORMS, "file not found")
    return read_layout_bytes(path.read_bytes(), expected_views)


def load_capture(
    root: Path, expected_views: int | None = None, bounds: Bounds | None = None
) -> Capture:
    """Decode and check every frame; raises InvalidInputError naming the first bad file.

    bounds: the object's box in the capture's world frame (spec.reconstruction.bounds);
    it decides the object only where no mask does."""
    layout = read_layout(root, expected_views)
    box = None if bounds is None else (np.asarray(bounds[0]), np.asarray(bounds[1]))
    views = tuple(_load_frame(root, frame, layout.depth_unit, box) for frame in layout.frames)
    _check_depth_in_scene(views)
    return Capture(views=views, depth_unit=layout.depth_unit, bounds=bounds)


def _camera(intrinsics: Intrinsics | None, frame: Frame) -> Camera:
    # The contract left no field None: read_layout raised otherwise.
    assert intrinsics is not None and frame.transform_matrix is not None
    return Camera(
        intrinsics.fx,
        intrinsics.fy,
        intrinsics.cx,
        intrinsics.cy,
        intrinsics.width,
        intrinsics.height,
        np.array(frame.transform_matrix, dtype=np.float64),
    )


def _load_frame(
    root: Path,
    frame: Frame,
    depth_unit: float,
    box: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None,
) -> View:
    assert frame.file_path is not None and frame.depth_file_path is not None
    camera, stored_camera = _camera(frame.colour, frame), _camera(frame.depth, frame)
    image_file, depth_file = frame.file_path, frame.depth_file_path
    rgb, alpha = _read_colour(root, image_file, camera)
    stored = _read_depth(root, depth_file, stored_camera) * np.float32(depth_unit)
    block = repeated_block(stored)
    depth_camera = stored_camera.resized(
        stored_camera.width // block, stored_camera.height // block
    )
    depth = np.ascontiguousarray(stored[::block, ::block])
    if not np.any(depth > 0):
        raise InvalidInputError(depth_file, "depth map is all zeros (no surface seen)")
    weight = (depth > 0).astype(np.float32)
    if frame.confidence_path is not None:
        weight *= _least_per_block(
            _read_confidence(root, frame.confidence_path, stored_camera), block
        )
        depth = np.where(weight > 0, depth, np.float32(0.0)).astype(np.float32)
        if not np.any(depth > 0):
            raise InvalidInputError(frame.confidence_path, "every depth reading has low confidence")
    if frame.mask_path is not None:
        mask: npt.NDArray[np.bool_] | None = _read_mask(root, frame.mask_path, camera)
        mask_file = frame.mask_path
    else:
        mask, mask_file = alpha, image_file
    mask_given = mask is not None
    if mask is not None:
        if not np.any(mask):
            what = "mask" if frame.mask_path is not None else "object mask (alpha channel)"
            raise InvalidInputError(mask_file, f"{what} is empty")
        on_depth = resample_nearest(mask, camera, depth_camera, fill=False).astype(bool)
        if not np.any(on_depth & (depth > 0)):
            raise InvalidInputError(depth_file, "no valid depth inside the object mask")
        depth = np.where(on_depth, depth, np.float32(0.0)).astype(np.float32)
    else:
        if box is not None:
            points = backproject_depth(depth_camera, depth.astype(np.float64))
            inside = np.all((points >= box[0]) & (points <= box[1]), axis=-1)
            depth = np.where(inside, depth, np.float32(0.0)).astype(np.float32)
            if not np.any(depth > 0):
                raise InvalidInputError(
                    depth_file, "depth measures nothing inside spec.reconstruction.bounds"
                )
        mask = resample_nearest(depth > 0, depth_camera, camera, fill=False).astype(bool)
    weight = np.where(depth > 0, weight, np.float32(0.0)).astype(np.float32)
    return View(
        image_file=image_file,
        depth_file=depth_file,
        rgb=rgb,
        mask=mask,
        depth=depth,
        camera=camera,
        depth_camera=depth_camera,
        depth_weight=weight,
        mask_given=mask_given,
    )


def repeated_block(depth: npt.NDArray[np.float32]) -> int:
    """The side of the blocks a depth map repeats each reading over (1: none): a sensor's
    readings nearest-upsampled to the colour resolution, as some exporters store them, are
    constant over aligned k x k blocks. Read back at the resolution they were measured at,
    each reading sits on the ray it was measured along, not on pixels beside it."""
    height, width = depth.shape
    for k in REPEAT_BLOCKS:
        if height % k or width % k or height < 2 * k or width < 2 * k:
            continue
        blocks = _blocks(depth, k)
        if np.any(blocks[:, :1, :, :1] > 0) and np.all(blocks == blocks[:, :1, :, :1]):
            return k
    return 1


def _blocks(image: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.float32]:
    """[H/k, k, W/k, k]: the image's aligned k x k blocks."""
    height, width = image.shape
    return image.reshape(height // k, k, width // k, k)


def _least_per_block(weight: npt.NDArray[np.float32], block: int) -> npt.NDArray[np.float32]:
    if block == 1:
        return weight
    out: npt.NDArray[np.float32] = _blocks(weight, block).min(axis=(1, 3))
    return out


def _open_image(root: Path, name: str, formats: tuple[str, ...] = ("PNG",)) -> Image.Image:
    path = root / name
    if not path.is_file():
        raise InvalidInputError(name, "file not found")
    wanted = " or ".join(formats)
    try:
        image = Image.open(path)  # reads the header only
        if image.format not in formats:
            raise InvalidInputError(name, f"is a {image.format} image, not {wanted}")
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise InvalidInputError(
                name,
                f"is {image.width}x{image.height}, more than the {MAX_IMAGE_PIXELS} pixels "
                "allowed per image",
            )
        image.load()
    except Image.DecompressionBombError as e:
        raise InvalidInputError(name, f"is too large to decode safely ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InvalidInputError(name, f"is not a readable {wanted} image ({e})") from None
    return image


def _open_png(root: Path, name: str) -> Image.Image:
    return _open_image(root, name)


def _check_size(image: Image.Image, name: str, camera: Camera, keys: str = "w, h") -> None:
    if image.size != (camera.width, camera.height):
        raise InvalidInputError(
            name,
            f"is {image.size[0]}x{image.size[1]} but transforms.json says "
            f"{camera.width}x{camera.height} ({keys})",
        )


def _read_colour(
    root: Path, name: str, camera: Camera
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_] | None]:
    image = _open_image(root, name, ("PNG", "JPEG"))
    if image.mode not in ("RGB", "RGBA"):
        raise InvalidInputError(name, f"must be 8-bit RGB or RGBA, got PIL mode {image.mode}")
    _check_size(image, name, camera)
    pixels = np.asarray(image)
    rgb = np.ascontiguousarray(pixels[..., :3])
    alpha = pixels[..., 3] >= 128 if image.mode == "RGBA" else None
    return rgb, alpha


def _read_depth(root: Path, name: str, camera: Camera) -> npt.NDArray[np.float32]:
    image = _open_png(root, name)
    if image.mode not in ("I;16", "I;16B", "I;16L"):
        raise InvalidInputError(name, f"must be a 16-bit grayscale PNG, got PIL mode {image.mode}")
    _check_size(image, name, camera, "depth_w, depth_h")
    return np.asarray(image).astype(np.float32)


def _read_gray8(root: Path, name: str, camera: Camera, keys: str) -> npt.NDArray[np.uint8]:
    image = _open_png(root, name)
    if image.mode != "L":
        raise InvalidInputError(name, f"must be an 8-bit grayscale PNG, got PIL mode {image.mode}")
    _check_size(image, name, camera, keys)
    return np.asarray(image)


def _read_mask(root: Path, name: str, camera: Camera) -> npt.NDArray[np.bool_]:
    """nerfstudio's mask: 8-bit, non-zero is the object."""
    return _read_gray8(root, name, camera, "w, h") > 0


def confidence_weight(levels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Per-pixel weight of a confidence map written as ARKit levels (0, 1, 2) or spread over
    8 bits (0, 127, 255, as Polycam writes them): a map whose largest value is 2 or less is
    read as levels."""
    if int(levels.max(initial=0)) <= 2:
        level = levels.astype(np.int64)
    else:
        level = np.digitize(levels, (64, 192))
    return np.asarray(CONFIDENCE_WEIGHTS, dtype=np.float32)[level]


def _read_confidence(root: Path, name: str, depth_camera: Camera) -> npt.NDArray[np.float32]:
    return confidence_weight(_read_gray8(root, name, depth_camera, "depth_w, depth_h"))


def _check_depth_in_scene(views: tuple[View, ...]) -> None:
    """Reject a view whose surface lies far from where the other views put the object.

    The scene is what most views agree on: the median of the views' median points, with a
    radius from the views' point spreads. One view off by a unit, a sentinel value or a
    wrong matrix lands many radii away.
    """
    medians = []
    spreads = []
    for view in views:
        points = back_project(view)
        centre = np.median(points, axis=0)
        medians.append(centre)
        spreads.append(float(np.percentile(np.linalg.norm(points - centre, axis=1), 90)))
    centres = np.stack(medians)
    scene_centre = np.median(centres, axis=0)
    scene_radius = max(float(np.median(spreads)), 1e-6)
    for view, centre in zip(views, centres, strict=True):
        distance = float(np.linalg.norm(centre - scene_centre))
        if len(views) > 2 and distance > FAR_OUTSIDE_RADII * scene_radius:
            raise InvalidInputError(
                view.depth_file,
                f"depth puts the surface {distance:.3g} m from the scene the other views "
                f"agree on (radius {scene_radius:.3g} m); check depth_unit_scale_factor",
            )
