"""`recon demo`: make a synthetic capture of a known object, reconstruct it, and say how close
the result is to the truth.

The capture is rendered with the project's own renderer in the DESIGN.md layout (6 RGBA
views and 16-bit depth maps), so the demo exercises exactly what `recon run` does on a
real capture, and the known object turns "it produced a mesh" into measured accuracy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recon_api.constants import ExitCode

from recon_runner.local.run import add_reconstruction_arguments

DEFAULT_OBJECT = "torus"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from recon_runner.synthetic.objects import OBJECT_NAMES

    parser.add_argument(
        "--out",
        type=Path,
        default=Path("recon-demo"),
        metavar="DIR",
        help="where the capture and the outputs go (default: ./recon-demo)",
    )
    parser.add_argument(
        "--object",
        choices=OBJECT_NAMES,
        default=DEFAULT_OBJECT,
        help=f"the known object to capture (default: {DEFAULT_OBJECT})",
    )
    parser.add_argument("--views", type=int, default=6, help="camera views (default: 6)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default: 256)")
    add_reconstruction_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from recon_runner.evaluation.accuracy import evaluate_textured
    from recon_runner.local.command import run_locally
    from recon_runner.synthetic.objects import make_object
    from recon_runner.synthetic.writer import write_capture

    obj = make_object(args.object)
    capture_dir = args.out / "capture"
    out_dir = args.out / "output"
    print(f"capturing {obj.name} ({obj.description}): {args.views} views of {args.size} px")
    write_capture(obj, capture_dir, views=args.views, width=args.size, height=args.size)
    code, result = run_locally(capture_dir, out_dir, args)
    if result is None:
        return code
    accuracy = evaluate_textured(obj.mesh, obj.true_colour, result.mesh)
    print(
        f"reconstructed in {result.metrics.total_seconds()} s ({args.preset} preset): "
        f"{result.metrics.vertices} vertices, {result.metrics.faces} faces"
    )
    print(
        f"accuracy against the true {obj.name}: "
        f"Chamfer-L1 {accuracy.chamfer_l1 * 1000:.3f} mm "
        f"({accuracy.chamfer_l1_ratio * 100:.4f}% of the {accuracy.diagonal:.2f} m diagonal), "
        f"F-score@1% {accuracy.fscore:.4f}, "
        f"normal consistency {accuracy.normal_consistency:.4f}, "
        f"colour PSNR {accuracy.colour_psnr:.2f} dB"
    )
    print(f"capture: {capture_dir}")
    for name, path in result.files.items():
        print(f"{name}: {path}")
    sys.stdout.flush()
    return ExitCode.SUCCESS
