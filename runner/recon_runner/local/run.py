"""`recon run INPUT_DIR --out OUT_DIR`: the pipeline on a local capture folder.

The same reconstruction the pod runs, without Kubernetes or MinIO, with a progress bar and
the pod's exit codes: 0 done, 3 bad input (one line naming the file), 143 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recon_api.constants import ExitCode, MeshFormat, Preset
from recon_api.runner_params import Corner, RunnerParamsError, bounds_from_text

from recon_runner.config import DEVICES, USER_SETTINGS


def parse_formats(text: str) -> tuple[MeshFormat, ...]:
    try:
        formats = tuple(MeshFormat(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        choices = ", ".join(f.value for f in MeshFormat)
        raise argparse.ArgumentTypeError(
            f"{text!r}: formats are a comma list of {choices}"
        ) from None
    if not formats:
        raise argparse.ArgumentTypeError("at least one format is needed")
    return tuple(dict.fromkeys(formats))


def parse_bounds(text: str) -> tuple[Corner, Corner]:
    try:
        return bounds_from_text(text, "--bounds")
    except RunnerParamsError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_reconstruction_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared with `recon demo`: the ReconJob's reconstruction fields."""
    parser.add_argument(
        "--preset",
        choices=[p.value for p in Preset],
        default=Preset.STANDARD.value,
        help="quality/time trade-off (default: standard)",
    )
    parser.add_argument("--device", choices=DEVICES, default="auto", help="default: auto")
    parser.add_argument(
        "--formats",
        type=parse_formats,
        default=(MeshFormat.GLB,),
        metavar="LIST",
        help="mesh formats, comma separated: glb,obj,ply (default: glb)",
    )
    for name, setting in USER_SETTINGS.items():
        limit = setting.limit
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=int,
            metavar="N",
            help=f"override the preset ({limit.minimum}-{limit.maximum}, as {limit.field})",
        )
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument(
        "--close-holes",
        action="store_true",
        help="fill the surface no camera saw with a smooth, marked membrane (watertight mesh)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input_dir", type=Path, metavar="INPUT_DIR", help="capture folder")
    parser.add_argument("--out", type=Path, required=True, metavar="OUT_DIR")
    parser.add_argument(
        "--bounds",
        type=parse_bounds,
        metavar="MINX,MINY,MINZ,MAXX,MAXY,MAXZ",
        help="the object's box in the capture's world frame; where a frame has no mask, "
        "the object is what the depth measures inside it (default: everything it measures); "
        "write --bounds=-1,... when the first number is negative",
    )
    add_reconstruction_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from recon_runner.local.command import run_locally

    if not args.input_dir.is_dir():
        print(f"error: {args.input_dir}: not a directory", file=sys.stderr)
        return ExitCode.INVALID_INPUT
    code, result = run_locally(args.input_dir, args.out, args)
    if result is not None:
        print(f"wrote {', '.join(str(p) for p in result.files.values())}")
    return code
