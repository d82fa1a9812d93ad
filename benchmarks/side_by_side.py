"""What the runner-quality benchmarks share: Open3D's TSDF fusion as the baseline,
accuracy sampling that survives an unlucky sample, one method's timed run (run_method),
each run in a child process of its own (compare), and how results, verdicts and the
command line are reported.

Imported by `runner_quality.py` (all-around rig), `runner_phone.py` (phone-style) and
`runner_orbit.py` (orbit rig whose bottom no view sees), so all compare against the same
Open3D setting: a voxel of 1/256 of the capture's bounding-box diagonal with a 4-voxel
truncation, which already gives Open3D sub-millimetre Chamfer on these objects. Open3D is
the `bench` extra.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The repository root, for the ray caster the tests use too (tests/support).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OPEN3D_VOXELS_PER_DIAGONAL = 256
OPEN3D_TRUNCATION_VOXELS = 4.0


def open3d_tsdf(capture_dir: Path) -> tuple[Any, Any, Any]:
    """(vertices, faces, vertex colours) of Open3D's TSDF fusion of the capture."""
    import numpy as np
    import open3d as o3d
    from PIL import Image
    from recon_runner.stages.capture import load_capture

    meta = json.loads((capture_dir / "transforms.json").read_text())
    points = load_capture(capture_dir).points()
    diagonal = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    voxel = diagonal / OPEN3D_VOXELS_PER_DIAGONAL
    volume = o3d.pipelines.integration.ScalableTSDFVolume(
        voxel_length=voxel,
        sdf_trunc=OPEN3D_TRUNCATION_VOXELS * voxel,
        color_type=o3d.pipelines.integration.TSDFVolumeColorType.RGB8,
    )
    for frame in meta["frames"]:
        rgba = np.asarray(Image.open(capture_dir / frame["file_path"]))
        colour = o3d.geometry.Image(np.ascontiguousarray(rgba[..., :3]))
        depth = o3d.io.read_image(str(capture_dir / frame["depth_file_path"]))
        rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
            colour,
            depth,
            depth_scale=1.0 / meta["depth_unit_scale_factor"],
            depth_trunc=1e6,
            convert_rgb_to_intensity=False,
        )
        # Open3D puts pixel centres on integers and uses OpenCV axes (y down, z forward).
        intrinsic = o3d.camera.PinholeCameraIntrinsic(
            meta["w"], meta["h"], meta["fl_x"], meta["fl_y"], meta["cx"] - 0.5, meta["cy"] - 0.5
        )
        c2w = np.asarray(frame["transform_matrix"], dtype=np.float64) @ np.diag([1, -1, -1, 1])
        volume.integrate(rgbd, intrinsic, np.linalg.inv(c2w))
    mesh = volume.extract_triangle_mesh()
    return np.asarray(mesh.vertices), np.asarray(mesh.triangles), np.asarray(mesh.vertex_colors)


def measured(evaluate_with_seed: Callable[[int], Any]) -> Any:
    """The accuracy, sampled with seed 0; surface_query's closest-point search can raise on
    an unlucky sample (an empty edge set), in which case a fresh sample is drawn."""
    for seed in range(3):
        try:
            return evaluate_with_seed(seed)
        except ValueError:
            continue
    return evaluate_with_seed(3)


def run_method(
    method: str,
    capture_dir: Path,
    mesh: Any,
    true_colour: Any,
    samples: int,
    *,
    close_holes: bool = False,
) -> tuple[dict[str, Any], Any, Any]:
    """One reconstruction of the capture, by Open3D's TSDF fusion (``open3d``) or the
    runner's pipeline at that preset (with closeHoles if asked), on the CPU: its wall and
    CPU seconds, peak RSS, face count and accuracy against ``mesh`` and ``true_colour`` (the
    runner's measured from its mesh.glb as trimesh reads it); the pipeline's result and that
    written mesh (both None for Open3D)."""
    import tempfile
    import time

    from recon_runner.evaluation.accuracy import evaluate, evaluate_textured, vertex_colour

    wall, cpu = time.perf_counter(), time.process_time()
    result: Any = None
    written: Any = None
    if method == "open3d":
        vertices, faces, colours = open3d_tsdf(capture_dir)
        seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
        accuracy = measured(
            lambda seed: evaluate(
                mesh, vertices, faces, true_colour, vertex_colour(faces, colours), samples, seed
            )
        )
        face_count = len(faces)
    else:
        from recon_cli.cluster_demo.outputs import load_glb
        from recon_runner.config import config_for
        from recon_runner.control import ignore_progress
        from recon_runner.pipeline import reconstruct
        from recon_runner.stages.export import GLB_NAME

        with tempfile.TemporaryDirectory() as out:
            result = reconstruct(
                capture_dir,
                Path(out),
                config_for(method, device="cpu", close_holes=close_holes),
                ignore_progress,
            )
            seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
            # What a user gets, the written GLB, read back by trimesh (not the runner's
            # in-memory mesh, and not the project's own reader).
            written = load_glb(Path(out) / GLB_NAME)
        if written is None:
            raise RuntimeError(f"{method}: {GLB_NAME} holds no mesh")
        accuracy = measured(
            lambda seed: evaluate_textured(mesh, true_colour, written, samples, seed)
        )
        face_count = len(written.faces)
    from tests.support.rss import status_kib

    # The child's own peak (VmHWM), not ru_maxrss, which would be the parent's size.
    peak_kib = status_kib("VmHWM")
    fields = {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "peak_mib": round(peak_kib / 1024, 1),
        "faces": face_count,
        **{k: v for k, v in accuracy.as_dict().items() if v is not None},
    }
    return fields, result, written


def report_to(output: Path | None, body: Callable[[Callable[[str], None]], int]) -> int:
    """Run `body` with an `out` that prints each line as it comes and, given `output`,
    also writes it there after the command line that produced it, so the file a doc quotes
    says how it was made."""
    import shlex
    import sys

    sink = None
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        sink = output.open("w")
        sink.write(f"$ {' '.join(shlex.quote(a) for a in ['.venv/bin/python', *sys.argv])}\n")

    def out(line: str) -> None:
        print(line, flush=True)
        if sink is not None:
            sink.write(line + "\n")
            sink.flush()

    try:
        return body(out)
    finally:
        if sink is not None:
            sink.close()


def report_ending(
    out: Callable[[str], None], results: list[dict[str, Any]], verdicts: list[str], heading: str
) -> None:
    """The closing block every run prints: the load at the end, the verdicts against the
    targets under `heading`, and each result as JSON."""
    import os

    out(f"load average at end: {os.getloadavg()}")
    out("")
    out(heading)
    for line in verdicts:
        out(line)
    out("")
    out("raw:")
    for record in results:
        out(json.dumps(record, sort_keys=True))


def compare(
    script: str,
    args: Any,
    out: Callable[[str], None],
    write_captures: Callable[[Path, list[str]], list[tuple[str, dict[str, str], Path]]],
    header: str,
    row: Callable[[dict[str, Any]], str],
    verdicts: Callable[[list[dict[str, Any]]], list[str]],
    heading: str,
) -> int:
    """The parent run of an object-family benchmark: the load and CPU count; then every
    method (``--methods``) on every capture ``write_captures`` writes (object, the fields
    its records carry, directory), each in a child process of ``script`` (``--child``,
    which prints its record as JSON last), a row each; then the closing block."""
    import os
    import subprocess
    import sys
    import tempfile

    from recon_runner.synthetic import OBJECT_NAMES

    objects = args.objects.split(",") if args.objects else list(OBJECT_NAMES)
    out(f"load average at start: {os.getloadavg()}; cpu count: {os.cpu_count()}")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        captures = write_captures(Path(tmp), objects)
        out(header)
        for name, fields, path in captures:
            for method in args.methods.split(","):
                command = [sys.executable, script, "--child", "--method", method]
                command += ["--object", name, "--capture", str(path)]
                command += ["--samples", str(args.samples)]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    label = " ".join([name, *fields.values(), method])
                    out(f"{label}: FAILED\n{done.stderr[-2000:]}")
                    continue
                record = json.loads(done.stdout.strip().splitlines()[-1])
                record.update(fields)
                results.append(record)
                out(row(record))
    report_ending(out, results, verdicts(results), heading)
    return 0


def checked(checks: list[tuple[str, bool]]) -> str:
    """Each target and whether it is met: "label: yes, label: NO"."""
    return ", ".join(f"{label}: {'yes' if ok else 'NO'}" for label, ok in checks)


RENDERERS = ("raycast", "raster")


def add_renderer_argument(parser: Any) -> None:
    """`--renderer`: who draws the captures. ``raycast`` (default): Embree through trimesh
    (tests/support/raycast_capture.py), sharing no code with the runner's rasterizer, so a
    convention error common to rendering and refining cannot cancel out; ``raster``: the
    project's own renderer, as the figures before the ray caster were made."""
    parser.add_argument(
        "--renderer",
        choices=RENDERERS,
        default="raycast",
        help="who draws the captures (default: the independent Embree ray caster)",
    )


def view_renderer(name: str) -> Any:
    """The `write_capture(render=...)` of `--renderer` `name`."""
    if name == "raycast":
        from tests.support.raycast_capture import raycast_views

        return raycast_views
    from recon_runner.synthetic.views import render_views

    return render_views


def benchmark_arguments(description: str, methods: tuple[str, ...]) -> Any:
    """The command line both object-family benchmarks take: which objects and methods, the
    accuracy samples, an output file, and the hidden child arguments of one run."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--objects", default="", help="comma list (default: all five)")
    parser.add_argument("--methods", default=",".join(methods))
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--output", type=Path, help="also write everything to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--object", help=argparse.SUPPRESS)
    parser.add_argument("--capture", help=argparse.SUPPRESS)
    return parser
