"""A stand-in runner that moves data exactly as `recon runner` does, minus the reconstruction:
the runner's own storage code (bounded retries, staged uploads moved into place, a
TransientError after the retries) and its exit codes (75 when storage stays unreachable).

Words in the input prefix choose the timing, so a test can take MinIO away at a known step:
  waitN     wait N seconds before the download
  holdN     wait N seconds between the download and the upload
  waitgate  before the download, wait for $RECON_STANDIN_SIGNAL_DIR/<uid>.go to exist
  holdgate  the same, between the download and the upload
With a gate the test, not the clock, decides when the step comes: it takes MinIO away first
and opens the gate after, however slowly the machine runs.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from recon_api.constants import ExitCode, Stage
from recon_api.runner_params import ACCESS_KEY_ENV, SECRET_KEY_ENV, RunnerParams
from recon_runner.control import StopToken
from recon_runner.errors import TransientError
from recon_runner.pod.status_reporter import StatusReporter, kubernetes_api, status_patcher
from recon_runner.pod.storage import (
    RetryPolicy,
    Storage,
    download_capture,
    make_client,
    upload_outputs,
)

# Run as a script by the node: the repository root on the path for tests.support.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.run_metrics import run_metrics

# Two quick tries per request: the test's outage outlasts them, so each attempt ends in 75.
POLICY = RetryPolicy(attempts=2, backoff=0.5, timeout=2.0)


def seconds(word: str, words: str) -> float:
    match = re.search(rf"{word}(\d+)", words)
    return float(match.group(1)) if match else 0.0


def gate(word: str, params: RunnerParams) -> None:
    if word not in params.input_prefix:
        return
    go = Path(os.environ.get("RECON_STANDIN_SIGNAL_DIR", "/tmp/recon-standin"))
    while not (go / f"{params.job_uid}.go").exists():
        time.sleep(0.1)


def main() -> int:
    params = RunnerParams.from_env()
    stop = StopToken()
    reporter = StatusReporter(
        status_patcher(kubernetes_api(), params.job_namespace, params.job_name)
    ).start()
    client = make_client(params, os.environ[ACCESS_KEY_ENV], os.environ[SECRET_KEY_ENV], POLICY)
    storage = Storage(client, POLICY, stop, endpoint=params.storage_endpoint)
    try:
        with tempfile.TemporaryDirectory() as work:
            time.sleep(seconds("wait", params.input_prefix))
            gate("waitgate", params)
            reporter(Stage.DOWNLOAD, 0.0, "downloading")
            got = download_capture(
                storage,
                params.input_bucket,
                params.input_prefix,
                Path(work) / "capture",
                lambda f, m: reporter(Stage.DOWNLOAD, f, m),
                stop,
            )
            time.sleep(seconds("hold", params.input_prefix))
            gate("holdgate", params)
            out = Path(work) / "out"
            out.mkdir()
            (out / "mesh.glb").write_bytes(b"glTF stand-in")
            (out / "metrics.json").write_text(json.dumps({"vertices": 8, "files": len(got)}))
            urls = upload_outputs(
                storage,
                params.output_bucket,
                params.output_prefix,
                {p.name: p for p in out.iterdir()},
                lambda f, m: reporter(Stage.UPLOAD, f, m),
                stop,
            )
    except TransientError as e:
        reporter.fail(f"transient failure: {e}")
        print(f"transient failure: {e}", file=sys.stderr)
        return int(ExitCode.TRANSIENT)
    done = reporter.finish(
        {"mesh": urls["mesh.glb"], "metrics": urls["metrics.json"]}, run_metrics()
    )
    return int(ExitCode.SUCCESS) if done else int(ExitCode.TRANSIENT)


if __name__ == "__main__":
    sys.exit(main())
