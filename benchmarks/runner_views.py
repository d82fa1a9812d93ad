"""Captures of real size: time, peak memory and accuracy against the number of views.

Phone captures hold 100-300 keyframes at about 1024x768, not six views at 256x256. This
benchmark captures one object (default the trefoil `knot`) from N cameras spread over three
rings around it (elevations -30, 5 and 40 degrees, the rings taking turns), stored the way a
phone stores them: JPEG colour without alpha or masks, depth at a quarter of the colour
resolution in files of that size (`depth_w`/`depth_h`), true poses and unlit colour, so
the number and size of the views is the only thing that changes between rows. Each case
`N@WxH` is reconstructed by each method in a child process of its own (peak resident
memory is the child's) and measured against the true object: Chamfer-L1, F-score@1%,
normal consistency, colour PSNR, wall and CPU seconds.

Targets (issue 9, section 5b): a 200-view 1024x768 capture within 8 GB peak on CPU, and
quality never worse with more views of the same object: the 60-view 512x512 capture's
Chamfer at most the six-view 256x256 one's, and at 1024x768 every larger N at most the
six-view Chamfer.

    .venv/bin/python benchmarks/runner_views.py --output docs/bench-runner-views.txt
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

METHODS = ("standard",)
CASES = "6@256x256,60@512x512,6@1024x768,30@1024x768,100@1024x768,200@1024x768"
RING_ELEVATIONS_DEGREES = (-30.0, 5.0, 40.0)
DEPTH_SCALE = 4
MEMORY_TARGET_MIB = 8192


def parse_case(case: str) -> tuple[int, int, int]:
    """`N@WxH` as (views, width, height)."""
    views, size = case.split("@")
    width, height = size.lower().split("x")
    return int(views), int(width), int(height)


def ring_cameras(obj: Any, views: int, width: int, height: int) -> list[Any]:
    """`views` cameras around the object on three rings that take turns, framed as the
    project's orbit frames them (the bounding sphere at 85% of the narrower side)."""
    from recon_runner.synthetic import orbit_cameras

    rings = tuple(float(np.radians(e)) for e in RING_ELEVATIONS_DEGREES)
    return orbit_cameras(obj, views, width, height, elevations=rings)


def capture_writer(
    renderer: str, cases: list[str]
) -> Callable[[Path, list[str]], list[tuple[str, dict[str, str], Path]]]:
    """Every case of every object, drawn by `renderer` and stored the phone's way."""

    def write(root: Path, objects: list[str]) -> list[tuple[str, dict[str, str], Path]]:
        from recon_runner.synthetic import make_object, write_capture
        from recon_runner.synthetic.writer import CaptureStyle

        style = CaptureStyle(colour_format="jpeg", alpha=False, depth_scale=DEPTH_SCALE)
        render = view_renderer(renderer)
        paths: list[tuple[str, dict[str, str], Path]] = []
        for name in objects:
            obj = make_object(name)
            for case in cases:
                views, width, height = parse_case(case)
                path = root / f"{name}-{views}-{width}x{height}"
                cameras = ring_cameras(obj, views, width, height)
                write_capture(
                    obj, path, views, width, height, style=style, cameras=cameras, render=render
                )
                paths.append((name, {"case": case}, path))
        return paths

    return write


def run_one(method: str, object_name: str, capture_dir: Path, samples: int) -> dict[str, Any]:
    """One reconstruction and its accuracy; called in a child process."""
    import torch
    from recon_runner.synthetic import make_object

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    obj = make_object(object_name)
    fields, result, _ = run_method(method, capture_dir, obj.mesh, obj.true_colour, samples)
    record: dict[str, Any] = {"method": method, "object": object_name, **fields}
    if result is not None:
        record["stage_seconds"] = result.metrics.seconds
    return record


HEADER = (
    f"{'object':8s} {'case':13s} {'method':9s} {'chamfer':>9s} {'F@1%':>7s} {'normal':>7s} "
    f"{'PSNR':>7s} {'wall s':>8s} {'cpu s':>8s} {'peak MiB':>8s}"
)


def row(r: dict[str, Any]) -> str:
    return (
        f"{r['object']:8s} {r['case']:13s} {r['method']:9s} {r['chamfer_l1_ratio'] * 100:8.4f}% "
        f"{r['fscore']:7.4f} {r['normal_consistency']:7.4f} {r['colour_psnr']:7.2f} "
        f"{r['seconds']:8.2f} {r['cpu_seconds']:8.2f} {r['peak_mib']:8.0f}"
    )


def verdicts(results: list[dict[str, Any]]) -> list[str]:
    """The section 5b targets for each method on each object, each stated as met or not."""
    lines = []
    for object_name in sorted({r["object"] for r in results}):
        for method in sorted({r["method"] for r in results}):
            by = {
                r["case"]: r
                for r in results
                if r["object"] == object_name and r["method"] == method
            }
            checks: list[tuple[str, bool]] = []
            if "200@1024x768" in by:
                peak = by["200@1024x768"]["peak_mib"]
                checks.append(("200@1024x768 <= 8 GB", peak <= MEMORY_TARGET_MIB))
            if "60@512x512" in by and "6@256x256" in by:
                more, fewer = by["60@512x512"], by["6@256x256"]
                checks.append(("60@512 <= 6@256", more["chamfer_l1"] <= fewer["chamfer_l1"]))
            six = by.get("6@1024x768")
            for case, r in sorted(by.items(), key=lambda kv: parse_case(kv[0])):
                views, width, height = parse_case(case)
                if six is not None and (width, height) == (1024, 768) and views > 6:
                    checks.append((f"{case} <= 6@1024x768", r["chamfer_l1"] <= six["chamfer_l1"]))
            if checks:
                lines.append(f"{object_name:8s} {method:9s} {checked(checks)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_arguments(__doc__.splitlines()[0], METHODS)
    add_renderer_argument(parser)
    parser.add_argument("--cases", default=CASES, help=f"comma list of N@WxH (default {CASES})")
    parser.set_defaults(objects="knot")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.method, args.object, Path(args.capture), args.samples)))
        return 0
    cases = args.cases.split(",")
    for case in cases:
        parse_case(case)  # a malformed case fails before any capture is drawn

    def body(out: Callable[[str], None]) -> int:
        out(f"captures drawn by: {args.renderer}; depth at 1/{DEPTH_SCALE} of the colour size")
        writer = capture_writer(args.renderer, cases)
        return compare(__file__, args, out, writer, HEADER, row, verdicts, "targets:")

    return report_to(args.output, body)


if __name__ == "__main__":
    sys.exit(main())
