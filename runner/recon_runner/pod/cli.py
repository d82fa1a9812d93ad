"""`recon runner`: one ReconJob's reconstruction inside its pod (the runner image's entrypoint).

Parameters come from the environment the operator sets (RunnerParams), storage credentials
from RECON_STORAGE_ACCESS_KEY / RECON_STORAGE_SECRET_KEY. The run downloads the capture,
reconstructs it, uploads the outputs and reports progress on its ReconJob's status. The exit
code is what the Job's podFailurePolicy acts on: 0 done, 3 bad input (fail at once), 75
transient (retry), 143 stopped by SIGTERM, 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from recon_api.constants import ExitCode, Stage
from recon_api.runner_params import (
    ACCESS_KEY_ENV,
    SECRET_KEY_ENV,
    RunnerParams,
    RunnerParamsError,
)

from recon_runner.control import StopToken
from recon_runner.errors import InvalidInputError, RunnerError, StopRequested, TransientError
from recon_runner.pod.progress import ProgressLimiter
from recon_runner.pod.status_reporter import StatusReporter, kubernetes_api, status_patcher
from recon_runner.pod.storage import (
    RetryPolicy,
    Storage,
    as_prefix,
    download_capture,
    make_client,
    s3_url,
    upload_outputs,
)
from recon_runner.signals import install_stop_handlers
from recon_runner.stages.export import METRICS_NAME, PREVIEW_NAME, mesh_file_name

log = logging.getLogger("recon.runner")

WORK_DIR_ENV = "RECON_WORK_DIR"
# Kubernetes shows the end of this file as the container's termination message.
TERMINATION_LOG = Path("/dev/termination-log")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=os.environ.get(WORK_DIR_ENV) or None,
        help=(
            "where the capture and outputs are staged while the job runs "
            f"(default: ${WORK_DIR_ENV}, else a temporary directory)"
        ),
    )


def configure_logging() -> None:
    """Plain timestamped lines on stderr, which is what `kubectl logs` shows."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )


def _no_status(body: dict[str, object]) -> None:
    """Patcher used when no Kubernetes configuration is found: the run still completes."""


def make_reporter(params: RunnerParams) -> StatusReporter:
    try:
        patch = status_patcher(kubernetes_api(), params.job_namespace, params.job_name)
    except Exception as e:
        log.warning("no Kubernetes access (%s); status will not be reported", e)
        return StatusReporter(_no_status, ProgressLimiter())
    return StatusReporter(patch, ProgressLimiter())


def _stage_progress(reporter: StatusReporter, stage: Stage) -> Callable[[float, str], None]:
    def progress(fraction: float, message: str) -> None:
        reporter(stage, fraction, message)

    return progress


def _write_termination_message(message: str) -> None:
    """Only where the kubelet provides the file: never create it on a plain host."""
    if TERMINATION_LOG.exists():
        with contextlib.suppress(OSError):
            TERMINATION_LOG.write_text(message[:4000])


def reconstruct_job(
    params: RunnerParams,
    storage: Storage,
    reporter: StatusReporter,
    stop: StopToken,
    work_dir: Path,
) -> None:
    """download -> reconstruct -> upload -> final status patch."""
    started = time.monotonic()
    capture_dir, out_dir = work_dir / "capture", work_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info(
        "downloading %s (%d views expected)",
        s3_url(params.input_bucket, as_prefix(params.input_prefix)),
        params.expected_views,
    )
    download_capture(
        storage,
        params.input_bucket,
        params.input_prefix,
        capture_dir,
        _stage_progress(reporter, Stage.DOWNLOAD),
        stop,
    )
    # Heavy imports (torch, the renderer) after the download, so a missing file or an
    # unreachable MinIO is reported without waiting for them.
    from recon_runner.config import config_from_params
    from recon_runner.pipeline import reconstruct

    config = config_from_params(params)
    log.info("reconstructing: preset %s, device %s", config.preset.value, config.device)
    result = reconstruct(
        capture_dir, out_dir, config, reporter, stop, expected_views=params.expected_views
    )
    stop.check()

    files = dict(result.files)
    mesh_name = mesh_file_name(params.formats)
    for needed in (mesh_name, PREVIEW_NAME, METRICS_NAME):
        if needed not in files:
            raise RunnerError(f"the pipeline did not write {needed}")
    urls = upload_outputs(
        storage,
        params.output_bucket,
        params.output_prefix,
        files,
        _stage_progress(reporter, Stage.UPLOAD),
        stop,
    )
    seconds = round(time.monotonic() - started, 3)
    # The status shows the whole run, download and upload included.
    metrics = result.metrics.model_copy(
        update={"seconds": {**result.metrics.seconds, "total": seconds}}
    )
    outputs = {
        "mesh": urls[mesh_name],
        "preview": urls[PREVIEW_NAME],
        "metrics": urls[METRICS_NAME],
    }
    if not reporter.finish(outputs, metrics, message=f"done in {seconds:.0f} s"):
        log.warning("the final status patch did not get through; outputs are in place")
    log.info("done in %.1f s: %s", seconds, outputs["mesh"])


def _run(args: argparse.Namespace, stop: StopToken) -> int:
    try:
        params = RunnerParams.from_env()
    except RunnerParamsError as e:
        log.error("bad runner environment: %s", e)
        return 1
    access_key = os.environ.get(ACCESS_KEY_ENV) or None
    secret_key = os.environ.get(SECRET_KEY_ENV) or None
    if access_key is None or secret_key is None:
        log.warning("%s/%s not set; using anonymous storage access", ACCESS_KEY_ENV, SECRET_KEY_ENV)
    log.info(
        "ReconJob %s/%s (uid %s): output to %s",
        params.job_namespace,
        params.job_name,
        params.job_uid or "?",
        s3_url(params.output_bucket, as_prefix(params.output_prefix)),
    )
    policy = RetryPolicy.from_env()
    storage = Storage(
        make_client(params, access_key or "", secret_key or "", policy),
        policy,
        stop,
        endpoint=params.storage_endpoint,
    )
    reporter = make_reporter(params).start()
    outcome: tuple[int, str] | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="recon-", dir=args.work_dir) as work:
            reconstruct_job(params, storage, reporter, stop, Path(work))
        return ExitCode.SUCCESS
    except StopRequested:
        outcome = (ExitCode.TERMINATED, "stopped by SIGTERM; nothing was uploaded")
    except InvalidInputError as e:
        outcome = (ExitCode.INVALID_INPUT, f"invalid input: {e}")
    except TransientError as e:
        outcome = (ExitCode.TRANSIENT, f"transient failure: {e}")
    except RunnerError as e:
        outcome = (e.exit_code, f"failed: {e}")
    except Exception as e:
        log.exception("unexpected failure")
        outcome = (1, f"unexpected failure: {type(e).__name__}: {e}")
    finally:
        reporter.close()
    assert outcome is not None
    code, message = outcome
    log.error("%s (exit %d)", message, code)
    _write_termination_message(message)
    reporter.fail(message)
    return code


def run(args: argparse.Namespace) -> int:
    configure_logging()
    stop = StopToken()
    restore = install_stop_handlers(stop)
    try:
        return _run(args, stop)
    finally:
        restore()
