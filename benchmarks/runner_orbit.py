"""Honest surfaces on an orbit capture whose bottom no view sees, side by side with Open3D.

A real capture circles an object standing on something. This rig does the same with the
objects of `runner_quality.py`: `--views` cameras (default 8) evenly in azimuth at 20, 30
and 40 degrees of elevation in turn, all looking down, 256x256, so the underside is never
seen. For each object it runs Open3D 0.19's TSDF fusion (the setting of `side_by_side`),
the runner's `standard` preset with default settings (unobserved surface removed) and
`standard` with closeHoles, and measures against the whole true object (the runner's
written mesh.glb as trimesh reads it): Chamfer-L1, precision, recall and F-score at 1% of
the diagonal. For the runner it adds the observed and filled fractions from metrics.json,
how far the mesh reaches below the lowest point the views see, twice: through the true
poses (`below mm`), and through the poses the runner settled on (`own mm`: the capture's
depth readings at the resolution they were measured at, moved by metrics.json's
poseCorrections), and for closeHoles whether the mesh is watertight
(trimesh's `is_watertight`, UV seams welded) and how many faces Open3D's
self-intersection test finds crossing another face where one of the two is fill.

`--depth` picks the capture families: `clean` (ideal depth and colour), `noisy` (the same
with `DepthNoise`'s Gaussian depth noise) and `phone`, the rig written as a handheld phone
writes it (`recon_runner.synthetic.PHONE` and `PHONE_NOISE`, as in `runner_phone.py`):
every written pose off by 0.25-0.5 degrees and 2.5-5 mm (the true poses render), depth at
a quarter of the colour resolution with noise, stored nearest-upsampled, Lambert and
specular lighting with a per-view exposure gain, JPEG colour without alpha. The visible
fraction is always that of a clean render of the rig. The pixels are ray-cast by Embree
(`--renderer raycast`, the default; `raster` for the project's rasterizer).

    .venv/bin/python benchmarks/runner_orbit.py --jobs 5 --samples 30000 \
        --output docs/bench-runner-orbit.txt
    .venv/bin/python benchmarks/runner_orbit.py --depth phone --jobs 1 --samples 30000 \
        --output docs/bench-runner-orbit-phone.txt

The verdict on the lowest point takes `own mm`, with a fusion voxel as the tolerance: a
phone capture's poses are off by about a centimetre at the object, which moves the whole
surface, the readings with it, without inventing any; what the check is for is surface
beyond every reading in the frame the mesh is built in. On the clean and noisy families
the two figures agree (the poses are not moved).

Recall is bounded by what the rig sees: a mesh without invented bottom cannot reach the
unseen part of the truth, so the targets compare with Open3D, which is given the same
capture (for `phone`, the same wrong poses).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from subprocess import PIPE
from typing import Any

import numpy as np
from side_by_side import (
    add_renderer_argument,
    checked,
    report_to,
    run_method,
    view_renderer,
)

METHODS = ("open3d", "standard", "closeHoles")
FAMILIES = ("clean", "noisy", "phone")
ELEVATIONS_DEGREES = (20.0, 30.0, 40.0)


def orbit_rig(obj: Any, views: int, size: int) -> list[Any]:
    """`views` cameras around the object, all above it (20-40 degrees), framing its
    bounding sphere at 85% of the image, as `synthetic.orbit_cameras` frames it."""
    from recon_runner.camera import camera_from_fov, look_at

    fov = 40.0
    lo, hi = obj.bounds
    centre = (lo + hi) / 2.0
    radius = float(np.linalg.norm(obj.mesh.vertices.astype(np.float64) - centre, axis=1).max())
    distance = radius / np.sin(np.arctan(np.tan(np.radians(fov) / 2.0) * 0.85))
    cameras = []
    for i in range(views):
        azimuth = 2.0 * np.pi * i / views + 0.3
        elevation = np.radians(ELEVATIONS_DEGREES[i % len(ELEVATIONS_DEGREES)])
        direction = np.array(
            [
                np.cos(azimuth) * np.cos(elevation),
                np.sin(azimuth) * np.cos(elevation),
                np.sin(elevation),
            ]
        )
        cameras.append(
            camera_from_fov(fov, size, size, look_at(centre + distance * direction, centre))
        )
    return cameras


def write_orbit_capture(
    name: str, root: Path, views: int, size: int, family: str, renderer: str = "raycast"
) -> tuple[float, float]:
    """The capture of depth family `family` under `root`, its pixels drawn by `renderer`
    (`side_by_side.view_renderer`); returns the fraction of the true surface some view
    sees and the height of the lowest point some view sees, both from a clean render of
    the rig through the true poses whatever the family."""
    from recon_runner.synthetic import PHONE, PHONE_NOISE
    from recon_runner.synthetic.objects import make_object
    from recon_runner.synthetic.views import DepthNoise, RenderedView
    from recon_runner.synthetic.writer import write_capture, write_views

    obj = make_object(name)
    cameras = orbit_rig(obj, views, size)
    render = view_renderer(renderer)
    rendered = render(obj, cameras, None)
    seen = _visible_fraction(obj, rendered), _lowest_seen(rendered)
    if family == "phone":
        style = {"noise": PHONE_NOISE, "style": PHONE, "cameras": cameras, "render": render}
        write_capture(obj, root, views, size, size, **style)
        return seen
    if family == "noisy":
        noise = DepthNoise()
        rendered = [
            RenderedView(v.camera, v.rgba, noise.apply(v.depth, i)) for i, v in enumerate(rendered)
        ]
    elif family != "clean":
        raise ValueError(f"depth family {family!r} is not one of {', '.join(FAMILIES)}")
    write_views(rendered, root)
    return seen


def _lowest_seen(rendered: list[Any]) -> float:
    """Height (world z) of the lowest true surface point some view measures."""
    from recon_runner.camera import backproject_depth

    return min(
        float(backproject_depth(v.camera, v.depth)[v.depth > 0][:, 2].min()) for v in rendered
    )


def _visible_fraction(obj: Any, rendered: list[Any], samples: int = 100_000) -> float:
    """Fraction of uniform samples of the true surface that land on a depth reading of
    their own depth (within 0.2% of the diagonal) in some view."""
    from recon_runner.camera import project
    from recon_runner.evaluation.accuracy import bounding_diagonal
    from recon_runner.surface_query import sample_surface

    points = sample_surface(
        obj.mesh.vertices, obj.mesh.faces, samples, np.random.default_rng(0)
    ).points
    tolerance = 0.002 * bounding_diagonal(obj.mesh.vertices)
    seen = np.zeros(len(points), dtype=bool)
    for view in rendered:
        pixels, z = project(view.camera, points)
        col, row = np.floor(pixels[:, 0]).astype(int), np.floor(pixels[:, 1]).astype(int)
        height, width = view.depth.shape
        inside = (z > 0) & (col >= 0) & (col < width) & (row >= 0) & (row < height)
        depth = view.depth[row.clip(0, height - 1), col.clip(0, width - 1)]
        seen |= inside & (depth > 0) & (np.abs(depth - z) < tolerance)
    return float(seen.mean())


def _welded(vertices: Any, faces: Any) -> tuple[Any, Any]:
    """Seam duplicates (same position, different UV) merged, as ply_bytes welds them."""
    unique, inverse = np.unique(np.asarray(vertices, np.float32), axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)[np.asarray(faces)]


def _fill_crossings(vertices: Any, faces: Any, filled: Any) -> int:
    """Faces Open3D finds crossing another face where one of the two is fill. Open3D's test
    is quadratic, so it runs on the fill and the faces near it only: a face crossing a fill
    face has a corner within two of the longest edges of one of the fill's corners."""
    import open3d as o3d
    from scipy.spatial import cKDTree

    if not filled.any():
        return 0
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    tri = v[f]
    reach = 2.0 * float(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max())
    near_vertices = np.zeros(len(v), dtype=bool)
    fill_corners = np.unique(f[filled])
    for hits in cKDTree(v).query_ball_point(v[fill_corners], reach):
        near_vertices[hits] = True
    subset = np.flatnonzero(filled | near_vertices[f].any(axis=1))
    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(v), o3d.utility.Vector3iVector(f[subset].astype(np.int32))
    )
    pairs = np.asarray(mesh.get_self_intersecting_triangles()).reshape(-1, 2)
    involved = filled[subset[pairs]].any(axis=1)
    return len(np.unique(subset[pairs[involved]]))


def _fill_flags(written: Any, pipeline_mesh: Any) -> Any:
    """Which faces of the written GLB are fill. The GLB keeps the observed faces as its first
    primitive and the fill as its second (`export.glb_bytes`), which trimesh concatenates;
    the pipeline's mesh says which faces are which, so the written faces are checked corner
    by corner against the pipeline's in that order, and a reordering export cannot mislabel
    faces silently."""
    filled = np.asarray(pipeline_mesh.filled, dtype=bool)
    order = np.concatenate([np.flatnonzero(~filled), np.flatnonzero(filled)])
    expected = pipeline_mesh.vertices[pipeline_mesh.faces[order]]
    same = len(written.faces) == len(order) and np.allclose(
        written.vertices[written.faces], expected, atol=1e-6
    )
    if not same:
        raise RuntimeError("mesh.glb's faces are not the pipeline's observed then filled ones")
    return filled[order]


def run_one(
    method: str, name: str, capture: Path, samples: int, lowest_seen: float
) -> dict[str, Any]:
    """One method on the capture; `lowest_seen` is the lowest point the views see through
    their true poses (a phone capture's written poses put it a few millimetres off)."""
    import trimesh
    from recon_runner.stages.capture import load_capture
    from recon_runner.stages.pose_refine import with_poses
    from recon_runner.synthetic.objects import make_object

    obj = make_object(name)
    preset = "open3d" if method == "open3d" else "standard"
    fields, result, mesh = run_method(
        preset, capture, obj.mesh, obj.true_colour, samples, close_holes=method == "closeHoles"
    )
    record: dict[str, Any] = {"method": method, "object": name, **fields}
    if result is not None:
        filled = _fill_flags(mesh, result.mesh)
        given = load_capture(capture)
        lowest_written = float(given.points()[:, 2].min())
        # Through the poses the runner settled on (metrics.json's poseCorrections): the
        # frame its mesh is in.
        refined = with_poses(
            given, [np.asarray(c.transform_matrix) for c in result.metrics.pose_corrections]
        )
        lowest_own = float(refined.points()[:, 2].min())
        lowest_mesh = float(mesh.vertices[:, 2].min())
        welded_v, welded_f = _welded(mesh.vertices, mesh.faces)
        record.update(
            voxel_mm=result.metrics.voxel_size_mm,
            observed_fraction=result.metrics.observed_fraction,
            filled_fraction=result.metrics.filled_fraction,
            below_lowest_seen_mm=round(max(0.0, lowest_seen - lowest_mesh) * 1000, 3),
            # The same against the capture's depth seen through its written poses.
            below_lowest_written_mm=round(max(0.0, lowest_written - lowest_mesh) * 1000, 3),
            below_lowest_own_mm=round(max(0.0, lowest_own - lowest_mesh) * 1000, 3),
            watertight=bool(trimesh.Trimesh(welded_v, welded_f, process=False).is_watertight),
            fill_crossing_faces=_fill_crossings(welded_v, welded_f, filled)
            if method == "closeHoles"
            else None,
        )
    return record


HEADER = (
    f"{'object':15s} {'depth':6s} {'method':10s} {'chamfer':>9s} {'prec@1%':>8s} "
    f"{'recall':>7s} {'F@1%':>7s} {'observed':>8s} {'filled':>7s} {'below mm':>8s} {'own mm':>6s} "
    f"{'tight':>5s} {'x-fill':>6s} {'wall s':>7s} {'faces':>7s}"
)


def _row(r: dict[str, Any]) -> str:
    def opt(key: str, fmt: str, width: int) -> str:
        value = r.get(key)
        return f"{'-':>{width}s}" if value is None else format(value, fmt).rjust(width)

    return (
        f"{r['object']:15s} {r['depth']:6s} {r['method']:10s} "
        f"{r['chamfer_l1_ratio'] * 100:8.4f}% {r['precision']:8.4f} {r['recall']:7.4f} "
        f"{r['fscore']:7.4f} {opt('observed_fraction', '.4f', 8)} "
        f"{opt('filled_fraction', '.4f', 7)} {opt('below_lowest_seen_mm', '.2f', 8)} "
        f"{opt('below_lowest_own_mm', '.2f', 6)} "
        f"{opt('watertight', '', 5)} {opt('fill_crossing_faces', 'd', 6)} "
        f"{r['seconds']:7.2f} {r['faces']:7d}"
    )


def _verdicts(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    by = {(r["object"], r["depth"], r["method"]): r for r in results}
    for (name, depth, method), r in sorted(by.items()):
        base = by.get((name, depth, "open3d"))
        if method == "open3d" or base is None:
            continue
        if method == "standard":
            checks = [
                ("precision >= 0.99", r["precision"] >= 0.99),
                ("Chamfer < Open3D", r["chamfer_l1"] < base["chamfer_l1"]),
                ("F >= Open3D", r["fscore"] >= base["fscore"]),
                (
                    "nothing below the lowest observed point (within a voxel)",
                    r["below_lowest_own_mm"] <= r["voxel_mm"],
                ),
            ]
        else:
            checks = [
                ("watertight", r["watertight"]),
                ("no self-intersection from the fill", r["fill_crossing_faces"] == 0),
            ]
        lines.append(f"{name:15s} {depth:6s} {method:10s} {checked(checks)}")
    return lines


def _child(args: argparse.Namespace) -> int:
    """One object and depth family: write its capture, run every method, print records."""
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        capture = Path(tmp) / "capture"
        visible, lowest_seen = write_orbit_capture(
            args.object, capture, args.views, args.size, args.family, args.renderer
        )
        for method in args.methods.split(","):
            record = run_one(method, args.object, capture, args.samples, lowest_seen)
            record.update(depth=args.family, visible_fraction=round(visible, 4))
            print(json.dumps(record), flush=True)
    return 0


def _run(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    """Every object and family in its own child process, `--jobs` at a time."""
    from recon_runner.synthetic.objects import OBJECT_NAMES

    objects = args.objects.split(",") if args.objects else list(OBJECT_NAMES)
    todo = [(name, family) for name in objects for family in args.depth.split(",")]
    out(f"load average at start: {os.getloadavg()}; cpu count: {os.cpu_count()}")
    out(f"captures drawn by: {args.renderer}")
    out(
        f"rig: {args.views} views at {args.size}x{args.size}, elevations "
        f"{ELEVATIONS_DEGREES} deg; {args.jobs} objects at a time, one thread each"
    )
    results: list[dict[str, Any]] = []
    running: list[tuple[str, str, subprocess.Popen[str]]] = []
    out(HEADER)

    def collect(name: str, family: str, child: subprocess.Popen[str]) -> None:
        stdout, stderr = child.communicate()
        if child.returncode != 0:
            out(f"{name} {family}: FAILED\n{stderr[-3000:]}")
        for line in stdout.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                results.append(record)
                out(_row(record))

    while todo or running:
        while todo and len(running) < args.jobs:
            name, family = todo.pop(0)
            command = [
                sys.executable, __file__, "--child", "--object", name, "--family", family,
                "--methods", args.methods, "--views", str(args.views), "--size", str(args.size),
                "--samples", str(args.samples), "--renderer", args.renderer,
            ]  # fmt: skip
            running.append(
                (name, family, subprocess.Popen(command, stdout=PIPE, stderr=PIPE, text=True))
            )
        name, family, child = running.pop(0)
        collect(name, family, child)
    out(f"load average at end: {os.getloadavg()}")
    out("")
    out("visible fraction of the true surface (depth readings within 0.2% of the diagonal):")
    for name, family in sorted({(r["object"], r["depth"]) for r in results}):
        visible = next(r["visible_fraction"] for r in results if r["object"] == name)
        out(f"{name:15s} {family:6s} {visible:.3f}")
    out("")
    out("targets (issue 15):")
    for line in _verdicts(results):
        out(line)
    out("")
    out("raw:")
    for record in results:
        out(json.dumps(record, sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", default="", help="comma list (default: all five)")
    parser.add_argument("--depth", default="clean", help=f"comma list of {', '.join(FAMILIES)}")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=1, help="objects run at a time")
    add_renderer_argument(parser)
    parser.add_argument("--output", type=Path, help="also write everything to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--object", help=argparse.SUPPRESS)
    parser.add_argument("--family", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.depth.split(",")) - set(FAMILIES)
    if unknown:
        parser.error(f"--depth {', '.join(sorted(unknown))}: not one of {', '.join(FAMILIES)}")
    if args.child:
        return _child(args)
    return report_to(args.output, lambda out: _run(args, out))


if __name__ == "__main__":
    sys.exit(main())
