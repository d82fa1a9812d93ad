"""Running the pipeline from a command line: options to config, signals to the stop token,
progress to a bar, failures to the runner's exit codes and a one-line message."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from recon_api.constants import ExitCode

from recon_runner.config import USER_SETTINGS, DeviceUnavailableError, config_for
from recon_runner.control import ProgressSink, StopToken, ignore_progress
from recon_runner.errors import InvalidInputError, RunnerError
from recon_runner.local.progress_bar import ProgressBar
from recon_runner.pipeline import ReconResult, reconstruct
from recon_runner.signals import install_stop_handlers

log = logging.getLogger(__name__)
USAGE_ERROR = 2


def run_locally(
    capture_dir: Path, out_dir: Path, args: argparse.Namespace
) -> tuple[int, ReconResult | None]:
    """(exit code, result or None) of reconstructing `capture_dir` into `out_dir`."""
    try:
        config = config_for(
            args.preset,
            seed=args.seed,
            device=args.device,
            formats=args.formats,
            close_holes=args.close_holes,
            bounds=getattr(args, "bounds", None),
            **{name: getattr(args, name) for name in USER_SETTINGS},
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return USAGE_ERROR, None
    bar = None if args.quiet else ProgressBar()
    progress: ProgressSink = bar if bar is not None else ignore_progress
    stop = StopToken()
    restore = install_stop_handlers(stop, forced_exit_after=None)
    try:
        result = reconstruct(capture_dir, out_dir, config, progress, stop)
        if bar is not None:
            bar.finish("done")
        return ExitCode.SUCCESS, result
    except InvalidInputError as e:
        _end(bar)
        print(f"error: invalid input: {e}", file=sys.stderr)
        return e.exit_code, None
    except DeviceUnavailableError as e:
        _end(bar)
        print(f"error: {e}", file=sys.stderr)
        return USAGE_ERROR, None
    except RunnerError as e:
        _end(bar)
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code, None
    finally:
        restore()
        _end(bar)


def _end(bar: ProgressBar | None) -> None:
    if bar is not None:
        bar.close()
