"""`recon import FORMAT SRC OUT`: a capture in another format, written in the layout
`recon run` and the operator take.

Exit codes as the runner's: 0 written, 3 the source cannot be read or does not fit the
layout (one line naming the file), 2 OUT already exists (without --force), 1 OUT cannot
be written (a full disk, no permission).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from recon_api.constants import ExitCode

from recon_runner.errors import InvalidInputError
from recon_runner.importers import FORMATS
from recon_runner.importers.capture_writer import write_capture
from recon_runner.importers.progress import FrameProgress

EXISTS_EXIT_CODE = 2
WRITE_FAILED_EXIT_CODE = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    for name, importer in FORMATS.items():
        sub = formats.add_parser(name, help=importer.HELP, description=importer.HELP)
        sub.add_argument("src", type=Path, metavar="SRC", help="the capture to convert")
        sub.add_argument("out", type=Path, metavar="OUT", help="the capture folder to write")
        sub.add_argument(
            "--every",
            type=_positive,
            default=1,
            metavar="N",
            help="keep every Nth frame (video-rate sources; default: 1, all frames)",
        )
        sub.add_argument("--force", action="store_true", help="replace OUT if it exists")
        sub.add_argument("--quiet", action="store_true", help="no progress bar")
        importer.add_arguments(sub)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a whole number of at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    importer = FORMATS[args.format]
    progress = None if args.quiet else FrameProgress(f"importing {args.format}")
    try:
        try:
            source = importer.source_from_args(args.src, args)
            source = replace(source, loaders=source.loaders[:: args.every])
            result = write_capture(source, args.out, overwrite=args.force, progress=progress)
        finally:
            if progress is not None:
                progress.close()  # before any message, so it starts on a line of its own
    except InvalidInputError as e:
        return _fail(f"error: {e}", ExitCode.INVALID_INPUT)
    except FileExistsError as e:
        return _fail(f"error: {e}", EXISTS_EXIT_CODE)
    except OSError as e:
        return _fail(f"error: {e}", WRITE_FAILED_EXIT_CODE)
    for note in source.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {result.frames} frames to {result.out}")
    return ExitCode.SUCCESS


def _fail(message: str, code: int) -> int:
    print(message, file=sys.stderr)
    return code
