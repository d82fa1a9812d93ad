"""Source writers for the importer tests: one small capture per source format, written
as that format's public description lays it out, with a known world point and where each
source camera sees it.

Every writer works from the same scene: cameras around POINT, about a metre away, each
described in the source's own conventions (OpenGL or OpenCV camera axes, corner- or
centre-origin pixels, its depth units). For each frame it records where the source
format, by its own rules, puts POINT: the colour pixel, the depth-map pixel and the depth.
Each depth map holds exactly that depth at that pixel and other values elsewhere, so
an import that lands on another pixel reads another depth.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lzfse  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
from PIL import Image
from recon_runner.camera import Camera, project
from recon_runner.importers.capture_writer import Source
from scipy.spatial.transform import Rotation

from tests.support import captures

POINT = np.array([0.12, -0.07, 0.31])
# Depth grows this much (metres) per pixel away from POINT's depth pixel.
DEPTH_SLOPE = 0.01


@dataclass(frozen=True)
class Pinhole:
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int


@dataclass(frozen=True)
class Seen:
    """Where the source, by its own conventions, sees POINT in one frame."""

    u: float  # continuous colour pixel coordinate, in the source's pixel convention
    v: float
    column: int  # the colour pixel it falls in
    row: int
    depth_column: int
    depth_row: int
    depth: float  # z-depth in metres


@dataclass(frozen=True)
class Written:
    """A source capture on disk, and where each imported frame (in import order) sees
    POINT; `centre_origin` says whether the source counts pixel centres from 0."""

    src: Path
    seen: list[Seen]
    centre_origin: bool


def camera_axes(position: npt.ArrayLike, target: npt.ArrayLike) -> tuple[np.ndarray, ...]:
    """Right, down and forward unit vectors of a camera at `position` looking at `target`
    with world +Z up."""
    pos = np.asarray(position, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - pos
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return right, down, forward


def opencv_pose(position: npt.ArrayLike, target: npt.ArrayLike) -> np.ndarray:
    """Camera-to-world with OpenCV axes (X right, Y down, looking down +Z)."""
    right, down, forward = camera_axes(position, target)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([right, down, forward])
    pose[:3, 3] = position
    return pose


def opengl_pose(position: npt.ArrayLike, target: npt.ArrayLike) -> np.ndarray:
    """Camera-to-world with OpenGL axes (X right, Y up, looking down -Z)."""
    right, down, forward = camera_axes(position, target)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([right, -down, -forward])
    pose[:3, 3] = position
    return pose


# Three cameras around POINT, each aimed a little off it so it lands off-centre.
POSITIONS = [(1.0, 0.2, 0.6), (-0.3, 1.1, 0.5), (0.2, -0.9, 0.9)]
TARGETS = [(0.05, -0.02, 0.28), (0.15, -0.1, 0.35), (0.1, -0.03, 0.25)]


def see_opengl(pose: np.ndarray, k: Pinhole, depth_k: Pinhole) -> Seen:
    """POINT through an OpenGL camera with corner-origin pixels (nerfstudio, ARKit)."""
    local = np.linalg.inv(pose) @ np.append(POINT, 1.0)
    depth = -local[2]
    u = k.fx * local[0] / depth + k.cx
    v = k.cy - k.fy * local[1] / depth
    du = depth_k.fx * local[0] / depth + depth_k.cx
    dv = depth_k.cy - depth_k.fy * local[1] / depth
    return Seen(u, v, math.floor(u), math.floor(v), math.floor(du), math.floor(dv), depth)


def see_opencv(pose: np.ndarray, k: Pinhole, depth_k: Pinhole) -> Seen:
    """POINT through an OpenCV camera whose pixel centres sit at whole coordinates."""
    local = np.linalg.inv(pose) @ np.append(POINT, 1.0)
    depth = local[2]
    u = k.fx * local[0] / depth + k.cx
    v = k.fy * local[1] / depth + k.cy
    du = depth_k.fx * local[0] / depth + depth_k.cx
    dv = depth_k.fy * local[1] / depth + depth_k.cy
    return Seen(u, v, round(u), round(v), round(du), round(dv), depth)


def depth_map(seen: Seen, width: int, height: int) -> np.ndarray:
    """Metres: seen.depth at POINT's depth pixel, deeper with distance from it."""
    rows, cols = np.mgrid[0:height, 0:width]
    offset = np.abs(cols - seen.depth_column) + np.abs(rows - seen.depth_row)
    return seen.depth + DEPTH_SLOPE * offset


def colour_image(width: int, height: int, seed: int, fmt: str) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, size=3)
    rows, cols = np.mgrid[0:height, 0:width]
    rgb = np.stack(
        [base[0] + cols % 50, base[1] + rows % 50, np.full_like(rows, base[2])], axis=-1
    ).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format=fmt)
    return buffer.getvalue()


def png16(units: np.ndarray) -> bytes:
    return captures.array_png(np.round(units).astype(np.uint16))


def png8(values: np.ndarray) -> bytes:
    return captures.array_png(values.astype(np.uint8), "L")


def put(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)


def confidence_levels(width: int, height: int, levels: tuple[int, int, int]) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    return np.array(levels, dtype=np.uint8)[(rows + cols) % 3]


# ------------------------------------------------------------------ phone apps (ARKit)

PHONE_COLOUR = Pinhole(58.0, 58.5, 31.3, 24.6, 64, 48)
PHONE_DEPTH = (16, 12)  # a quarter of the colour resolution, as LiDAR phones store it


def _scaled(k: Pinhole, width: int, height: int) -> Pinhole:
    sx, sy = width / k.width, height / k.height
    return Pinhole(k.fx * sx, k.fy * sy, k.cx * sx, k.cy * sy, width, height)


def write_polycam(root: Path) -> Written:
    """keyframes/{images,cameras,corrected_images,corrected_cameras,depth,confidence};
    the uncorrected cameras are off, so an import that ignores corrected_* misses."""
    k = PHONE_COLOUR
    dk = _scaled(k, *PHONE_DEPTH)
    seen = []
    for i, (position, target) in enumerate(zip(POSITIONS, TARGETS, strict=True)):
        stamp = 1700000000 + 37 * i
        pose = opengl_pose(position, target)
        s = see_opengl(pose, k, dk)
        seen.append(s)
        for prefix, camera_pose in (
            ("corrected_", pose),
            ("", opengl_pose(np.add(position, (0.05, 0.0, 0.02)), target)),
        ):
            camera = {
                "fx": k.fx,
                "fy": k.fy,
                "cx": k.cx,
                "cy": k.cy,
                "width": k.width,
                "height": k.height,
                "blur_score": 120.0,
                "timestamp": stamp,
                **{f"t_{r}{c}": float(camera_pose[r, c]) for r in range(3) for c in range(4)},
            }
            put(root / f"keyframes/{prefix}cameras/{stamp}.json", json.dumps(camera))
            put(root / f"keyframes/{prefix}images/{stamp}.jpg", colour_image(64, 48, i, "JPEG"))
        put(root / f"keyframes/depth/{stamp}.png", png16(depth_map(s, *PHONE_DEPTH) * 1000.0))
        put(
            root / f"keyframes/confidence/{stamp}.png",
            png8(confidence_levels(*PHONE_DEPTH, (0, 127, 255))),
        )
    return Written(root, seen, centre_origin=False)


def record3d_metadata(k: Pinhole, poses: list[list[float]]) -> dict[str, object]:
    matrix = np.array([[k.fx, 0.0, k.cx], [0.0, k.fy, k.cy], [0.0, 0.0, 1.0]])
    return {
        "w": k.width,
        "h": k.height,
        "K": matrix.T.reshape(-1).tolist(),  # stored column-major
        "dw": PHONE_DEPTH[0],
        "dh": PHONE_DEPTH[1],
        "fps": 60,
        "poses": poses,
    }


def write_record3d(root: Path) -> Written:
    """A .r3d zip: metadata, rgbd/<i>.jpg, LZFSE float32 .depth and uint8 .conf."""
    k = PHONE_COLOUR
    dk = _scaled(k, *PHONE_DEPTH)
    seen, poses, members = [], [], {}
    for i, (position, target) in enumerate(zip(POSITIONS, TARGETS, strict=True)):
        pose = opengl_pose(position, target)
        s = see_opengl(pose, k, dk)
        seen.append(s)
        quaternion = Rotation.from_matrix(pose[:3, :3]).as_quat()  # x, y, z, w
        poses.append([*quaternion.tolist(), *pose[:3, 3].tolist()])
        depth = depth_map(s, *PHONE_DEPTH).astype(np.float32)
        members[f"rgbd/{i}.jpg"] = colour_image(64, 48, i, "JPEG")
        members[f"rgbd/{i}.depth"] = lzfse.compress(depth.tobytes())
        members[f"rgbd/{i}.conf"] = lzfse.compress(
            confidence_levels(*PHONE_DEPTH, (0, 1, 2)).tobytes()
        )
    path = root / "capture.r3d"
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata", json.dumps(record3d_metadata(k, poses)))
        for name, data in members.items():
            archive.writestr(name, data)
    return Written(path, seen, centre_origin=False)


# ------------------------------------------------------------------------- nerfstudio


def write_nerfstudio(root: Path) -> Written:
    """transforms.json with shared intrinsics, one frame overriding fl_x, 16-bit depth at
    half resolution in depth_unit_scale_factor units, and masks."""
    k = Pinhole(60.0, 60.0, 32.0, 24.0, 64, 48)
    seen, frames = [], []
    unit = 0.0005
    for i, (position, target) in enumerate(zip(POSITIONS, TARGETS, strict=True)):
        frame_k = Pinhole(66.0, k.fy, k.cx, k.cy, k.width, k.height) if i == 1 else k
        pose = opengl_pose(position, target)
        s = see_opengl(pose, frame_k, _scaled(frame_k, 32, 24))
        seen.append(s)
        put(root / f"images/frame_{i}.png", colour_image(64, 48, i, "PNG"))
        put(root / f"depth/frame_{i}.png", png16(depth_map(s, 32, 24) / unit))
        mask = np.zeros((48, 64), dtype=np.uint8)
        mask[4:44, 4:60] = 1
        put(root / f"masks/frame_{i}.png", png8(mask))
        frame: dict[str, object] = {
            "file_path": f"images/frame_{i}.png",
            "depth_file_path": f"depth/frame_{i}.png",
            "mask_path": f"masks/frame_{i}.png",
            "transform_matrix": pose.tolist(),
        }
        if i == 1:
            frame["fl_x"] = 66.0
        frames.append(frame)
    doc = {
        "camera_model": "OPENCV",
        "fl_x": k.fx,
        "fl_y": k.fy,
        "cx": k.cx,
        "cy": k.cy,
        "w": k.width,
        "h": k.height,
        "k1": 0.0,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
        "depth_unit_scale_factor": unit,
        "frames": frames,
    }
    put(root / "transforms.json", json.dumps(doc, indent=2))
    return Written(root, seen, centre_origin=False)


# ------------------------------------------------------------------ sensor datasets


def matrix_text(matrix: np.ndarray) -> str:
    return "\n".join(" ".join(f"{v:.9f}" for v in row) for row in matrix) + "\n"


def write_scannet(root: Path) -> Written:
    """SensReader export: color/<i>.jpg, depth/<i>.png (mm), pose/<i>.txt (OpenCV
    camera-to-world), intrinsic/intrinsic_{color,depth}.txt of different cameras; one
    frame has tracking lost (-inf pose) and must be skipped."""
    k = Pinhole(70.0, 70.5, 39.25, 29.75, 80, 60)
    dk = Pinhole(36.0, 36.2, 19.6, 14.8, 40, 30)
    seen = []
    for i, (position, target) in enumerate(zip(POSITIONS, TARGETS, strict=True)):
        pose = opencv_pose(position, target)
        s = see_opencv(pose, k, dk)
        seen.append(s)
        index = i if i == 0 else i + 1  # frame 1 is the lost one
        put(root / f"color/{index}.jpg", colour_image(80, 60, i, "JPEG"))
        put(root / f"depth/{index}.png", png16(depth_map(s, 40, 30) * 1000.0))
        put(root / f"pose/{index}.txt", matrix_text(pose))
    put(root / "color/1.jpg", colour_image(80, 60, 9, "JPEG"))
    put(root / "depth/1.png", png16(np.full((30, 40), 1500.0)))
    put(root / "pose/1.txt", matrix_text(np.full((4, 4), -np.inf)))
    for name, cam in (("color", k), ("depth", dk)):
        matrix = np.eye(4)
        matrix[0, 0], matrix[1, 1], matrix[0, 2], matrix[1, 2] = cam.fx, cam.fy, cam.cx, cam.cy
        put(root / f"intrinsic/intrinsic_{name}.txt", matrix_text(matrix))
        put(root / f"intrinsic/extrinsic_{name}.txt", matrix_text(np.eye(4)))
    return Written(root, seen, centre_origin=True)


TUM_INTRINSICS = (61.0, 60.5, 31.7, 23.2)


def write_tum(root: Path) -> Written:
    """rgb.txt, depth.txt, groundtruth.txt (tx ty tz qx qy qz qw at a higher rate than the
    images), depth PNG x5000; one colour image has no depth within 0.02 s."""
    fx, fy, cx, cy = TUM_INTRINSICS
    k = Pinhole(fx, fy, cx, cy, 64, 48)
    seen = []
    rgb_lines = ["# color images", "# timestamp filename"]
    depth_lines = ["# depth maps"]
    truth_lines = ["# ground truth trajectory", "# timestamp tx ty tz qx qy qz qw"]
    for i, (position, target) in enumerate(zip(POSITIONS, TARGETS, strict=True)):
        t = 1305031102.0 + i
        pose = opencv_pose(position, target)
        s = see_opencv(pose, k, k)
        seen.append(s)
        rgb_name, depth_name = f"rgb/{t:.6f}.png", f"depth/{t + 0.011:.6f}.png"
        put(root / rgb_name, colour_image(64, 48, i, "PNG"))
        put(root / depth_name, png16(depth_map(s, 64, 48) * 5000.0))
        rgb_lines.append(f"{t:.6f} {rgb_name}")
        depth_lines.append(f"{t + 0.011:.6f} {depth_name}")
        for dt, p in ((-0.01, opencv_pose(np.add(position, 0.1), target)), (0.003, pose)):
            q = Rotation.from_matrix(p[:3, :3]).as_quat()
            values = [*p[:3, 3].tolist(), *q.tolist()]
            truth_lines.append(f"{t + dt:.4f} " + " ".join(f"{v:.7f}" for v in values))
    lonely = 1305031102.5
    put(root / f"rgb/{lonely:.6f}.png", colour_image(64, 48, 7, "PNG"))
    rgb_lines.insert(3, f"{lonely:.6f} rgb/{lonely:.6f}.png")
    put(root / "rgb.txt", "\n".join(rgb_lines) + "\n")
    put(root / "depth.txt", "\n".join(depth_lines) + "\n")
    put(root / "groundtruth.txt", "\n".join(truth_lines) + "\n")
    return Written(root, seen, centre_origin=True)


def write_redwood(root: Path) -> Written:
    """color/*.jpg, depth/*.png (mm), camera_intrinsic.json (Open3D's form) and a .log
    whose items come in reverse order: the third metadata number picks the images."""
    k = Pinhole(59.0, 59.0, 31.5, 23.5, 64, 48)
    seen_by_frame = []
    items = []
    for i, (position, target) in enumerate(zip(POSITIONS, TARGETS, strict=True)):
        pose = opencv_pose(position, target)
        s = see_opencv(pose, k, k)
        seen_by_frame.append(s)
        put(root / f"color/{i:06d}.jpg", colour_image(64, 48, i, "JPEG"))
        put(root / f"depth/{i:06d}.png", png16(depth_map(s, 64, 48) * 1000.0))
        items.append(f"{i} {i} {i + 1}\n" + matrix_text(pose))
    put(root / "trajectory.log", "".join(reversed(items)))
    intrinsic = {
        "width": 64,
        "height": 48,
        "intrinsic_matrix": [k.fx, 0.0, 0.0, 0.0, k.fy, 0.0, k.cx, k.cy, 1.0],
    }
    put(root / "camera_intrinsic.json", json.dumps(intrinsic))
    return Written(root, list(reversed(seen_by_frame)), centre_origin=True)


WRITERS: dict[str, Callable[[Path], Written]] = {
    "polycam": write_polycam,
    "record3d": write_record3d,
    "nerfstudio": write_nerfstudio,
    "scannet": write_scannet,
    "tum": write_tum,
    "redwood": write_redwood,
}


def source_for(name: str, written: Written) -> Source:
    """The format's Source, with the options its fixture needs."""
    from recon_runner.importers import nerfstudio, polycam, record3d, redwood, scannet, tum

    readers = {
        "polycam": lambda: polycam.read_polycam(written.src),
        "record3d": lambda: record3d.read_record3d(written.src),
        "nerfstudio": lambda: nerfstudio.read_nerfstudio(written.src),
        "scannet": lambda: scannet.read_scannet(written.src),
        "tum": lambda: tum.read_tum(written.src, intrinsics=TUM_INTRINSICS),
        "redwood": lambda: redwood.read_redwood(written.src),
    }
    return readers[name]()


# ---------------------------------------------------------- reading the layout back


@dataclass(frozen=True)
class ImportedView:
    colour: Camera
    depth_camera: Camera
    depth: np.ndarray  # metres
    frame: dict[str, object]


def imported_views(root: Path) -> list[ImportedView]:
    """Each frame of an imported capture as DESIGN.md's input layout defines it: per-frame
    values override the top level, depth size defaults to the colour size, depth
    intrinsics to the colour ones scaled by the size ratio."""
    doc = json.loads((root / "transforms.json").read_text())
    unit = doc.get("depth_unit_scale_factor", 0.001)
    views = []
    for frame in doc["frames"]:
        merged = {**doc, **frame}
        w, h = merged["w"], merged["h"]
        dw, dh = merged.get("depth_w", w), merged.get("depth_h", h)
        c2w = np.array(frame["transform_matrix"])
        colour = Camera(merged["fl_x"], merged["fl_y"], merged["cx"], merged["cy"], w, h, c2w)
        sx, sy = dw / w, dh / h
        depth_camera = Camera(
            merged.get("depth_fl_x", merged["fl_x"] * sx),
            merged.get("depth_fl_y", merged["fl_y"] * sy),
            merged.get("depth_cx", merged["cx"] * sx),
            merged.get("depth_cy", merged["cy"] * sy),
            dw,
            dh,
            c2w,
        )
        depth = np.asarray(Image.open(root / frame["depth_file_path"])).astype(np.float64) * unit
        views.append(ImportedView(colour, depth_camera, depth, frame))
    return views


def where_seen(view: ImportedView) -> tuple[float, float, int, int, float]:
    """(u, v, depth column, depth row, depth value read there) of POINT after import."""
    (u, v), _ = project(view.colour, POINT)
    (du, dv), _ = project(view.depth_camera, POINT)
    column, row = math.floor(du), math.floor(dv)
    return float(u), float(v), column, row, float(view.depth[row, column])
