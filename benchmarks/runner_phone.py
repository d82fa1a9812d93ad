"""Phone-style captures of the benchmark objects, side by side with Open3D's TSDF in one run.

Each object of `runner_quality.py` is captured in 6 views at 256x256 the way a handheld
phone captures it (`recon_runner.synthetic.PHONE` and `PHONE_NOISE`): every written pose
off by 0.25-0.5 degrees and 2.5-5 mm (the true poses render), depth at a quarter of the
colour resolution with a few millimetres of noise, stored nearest-upsampled, Lambert
shading with a moving specular highlight and a per-view exposure and white-balance gain,
JPEG colour without alpha. The pixels are ray-cast by Embree (`--renderer raycast`, the
default; `raster` for the project's rasterizer), then stored the phone's way. Open3D 0.19
(the setting of `side_by_side`) and the runner's presets reconstruct it, each in its own
process, measured against the true object: Chamfer-L1, F-score@1%, normal consistency,
colour PSNR against the object's view-independent appearance (the albedo under the
capture's Lambert light: a texture can hold that, not a highlight that moves with the
viewer, nor one view's exposure), wall and CPU seconds, peak resident memory, and for the
runner the mean pose error of the views against the true poses before and after its pose
refinement (rotation in degrees, camera centre in millimetres).

    .venv/bin/python benchmarks/runner_phone.py --output docs/bench-runner-phone.txt
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from side_by_side import (
    add_renderer_argument,
    benchmark_arguments,
    checked,
    compare,
    report_to,
    run_method,
    view_renderer,
)

METHODS = ("open3d", "draft", "standard")
VIEWS, SIZE = 6, 256


def pose_errors(true: list[Any], poses: list[Any], local: list[Any]) -> tuple[float, float, float]:
    """Mean rotation (degrees), camera-centre (mm) and surface (mm) error of `poses` against
    `true`. The surface error is how far a view's depth points land from where the true
    pose puts them (`local`: each view's points in its camera frame): at a narrow field of
    view a small turn of the camera and a sideways shift look almost alike, so the first two
    can trade against each other while the third is what the reconstruction feels."""
    from recon_runner.stages.icp import rotation_degrees

    rotations, centres, surface = [], [], []
    for t, p, x in zip(true, poses, local, strict=True):
        rotations.append(rotation_degrees(t[:3, :3].T @ p[:3, :3]))
        centres.append(np.linalg.norm(t[:3, 3] - p[:3, 3]))
        moved = (x @ p[:3, :3].T + p[:3, 3]) - (x @ t[:3, :3].T + t[:3, 3])
        surface.append(np.linalg.norm(moved, axis=1).mean())
    return tuple(float(np.mean(v)) * k for v, k in ((rotations, 1), (centres, 1e3), (surface, 1e3)))  # type: ignore[return-value]


def lit_colour(obj: Any) -> Callable[[Any], Any]:
    """The object's colour under the phone family's light, without the highlight."""
    from recon_runner.surface_query import SurfaceIndex
    from recon_runner.synthetic import PHONE

    index = SurfaceIndex(obj.mesh.vertices, obj.mesh.faces)
    assert PHONE.lighting is not None
    lighting = PHONE.lighting

    def colour(points: Any) -> Any:
        normals = index.closest(points).normals
        return np.clip(lighting.lambertian(obj.true_colour(points), normals), 0.0, 1.0)

    return colour


def run_one(method: str, object_name: str, capture_dir: Path, samples: int) -> dict[str, Any]:
    """One reconstruction and its accuracy; called in a child process."""
    import torch
    from recon_runner.synthetic import make_object, orbit_cameras

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    obj = make_object(object_name)
    true_colour = lit_colour(obj)
    true = [c.c2w for c in orbit_cameras(obj, VIEWS, SIZE, SIZE)]
    meta = json.loads((capture_dir / "transforms.json").read_text())
    given = [np.asarray(f["transform_matrix"]) for f in meta["frames"]]
    from recon_runner.stages.capture import back_project, load_capture

    local = []
    for view in load_capture(capture_dir).views:
        w2c = np.linalg.inv(view.camera.c2w)
        local.append(back_project(view)[::4].astype(np.float64) @ w2c[:3, :3].T + w2c[:3, 3])
    record: dict[str, Any] = {}
    before = pose_errors(true, given, local)
    record["pose_deg_before"], record["pose_mm_before"], record["surface_mm_before"] = before
    fields, result, _ = run_method(method, capture_dir, obj.mesh, true_colour, samples)
    if result is not None:
        corrected = [np.asarray(c.transform_matrix) for c in result.metrics.pose_corrections]
        after = pose_errors(true, corrected, local)
        record["pose_deg_after"], record["pose_mm_after"], record["surface_mm_after"] = after
        record["stage_seconds"] = result.metrics.seconds
    record.update(method=method, object=object_name, **fields)
    return record


def capture_writer(
    renderer: str,
) -> Callable[[Path, list[str]], list[tuple[str, dict[str, str], Path]]]:
    """The phone captures of each object, their pixels drawn by `renderer`
    (`side_by_side.view_renderer`) and stored the phone's way by the project's writer."""

    def write(root: Path, objects: list[str]) -> list[tuple[str, dict[str, str], Path]]:
        from recon_runner.synthetic import PHONE, PHONE_NOISE, make_object, write_capture

        render = view_renderer(renderer)
        paths: list[tuple[str, dict[str, str], Path]] = []
        for name in objects:
            path = root / f"{name}-phone"
            obj = make_object(name)
            write_capture(
                obj, path, VIEWS, SIZE, SIZE, noise=PHONE_NOISE, style=PHONE, render=render
            )
            paths.append((name, {}, path))
        return paths

    return write


HEADER = (
    f"{'object':15s} {'method':9s} {'chamfer':>9s} {'chamfer':>9s} {'F@1%':>7s} "
    f"{'normal':>7s} {'PSNR':>7s} {'wall s':>7s} {'cpu s':>7s} {'peak MiB':>8s} "
    f"{'pose deg':>13s} {'pose mm':>13s} {'surface mm':>13s}"
)


def row(r: dict[str, Any]) -> str:
    after = "pose_deg_after" in r
    deg = f"{r['pose_deg_before']:.3f}" + (f"->{r['pose_deg_after']:.3f}" if after else "")
    mm = f"{r['pose_mm_before']:.2f}" + (f"->{r['pose_mm_after']:.2f}" if after else "")
    on = f"{r['surface_mm_before']:.2f}" + (f"->{r['surface_mm_after']:.2f}" if after else "")
    return (
        f"{r['object']:15s} {r['method']:9s} {r['chamfer_l1_ratio'] * 100:8.4f}% "
        f"{r['chamfer_l1'] * 1000:7.3f}mm {r['fscore']:7.4f} {r['normal_consistency']:7.4f} "
        f"{r['colour_psnr']:7.2f} {r['seconds']:7.2f} {r['cpu_seconds']:7.2f} "
        f"{r['peak_mib']:8.0f} {deg:>13s} {mm:>13s} {on:>13s}"
    )


def verdicts(results: list[dict[str, Any]]) -> list[str]:
    """The targets for `standard` on every object, each stated as met or not."""
    by = {(r["object"], r["method"]): r for r in results}
    lines = []
    for (name, method), r in sorted(by.items()):
        base = by.get((name, "open3d"))
        if method != "standard" or base is None:
            continue
        checks = [
            ("Chamfer < Open3D", r["chamfer_l1"] < base["chamfer_l1"]),
            ("F >= 0.97", r["fscore"] >= 0.97),
            ("NC >= 0.90", r["normal_consistency"] >= 0.90),
            ("PSNR > Open3D", r["colour_psnr"] > base["colour_psnr"]),
            ("<= 60 s", r["seconds"] <= 60),
            ("<= 4 GB", r["peak_mib"] <= 4096),
        ]
        lines.append(f"{name:15s} {method:9s} {checked(checks)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_arguments(__doc__.splitlines()[0], METHODS)
    add_renderer_argument(parser)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.method, args.object, Path(args.capture), args.samples)))
        return 0

    def body(out: Callable[[str], None]) -> int:
        out(f"captures drawn by: {args.renderer}")
        writer = capture_writer(args.renderer)
        return compare(__file__, args, out, writer, HEADER, row, verdicts, "targets:")

    return report_to(args.output, body)


if __name__ == "__main__":
    sys.exit(main())
