"""A quick stand-in for the runner image in operator tests: same environment, same status
contract (progress through the stages via the real StatusReporter, outputs at the end),
same exit codes, but seconds instead of minutes of work.

Behaviour is chosen by words in the input prefix, so each test picks it per ReconJob:
  exit3      report a little progress, then exit 3 (invalid input found by the runner)
  exit75     exit 75 (transient failure) on every attempt
  hang       report once, then go silent (no heartbeat) until signalled; the silence is
             marked by $RECON_STANDIN_SIGNAL_DIR/<uid>.silent
  sleep<N>   spread the stages over N seconds (default: about 2 s)
  partial    write a partial output object first (for cleanup on cancel)
  gate       after the download report, wait for $RECON_STANDIN_SIGNAL_DIR/<uid>.go to
             exist before the stages: the test, not the clock, says when the job may end
  slowstop   on SIGTERM, take SLOW_STOP_SECONDS to exit (a runner cleaning up), so the
             pod is still terminating for a known while after the signal
On SIGTERM it records the signal in $RECON_STANDIN_SIGNAL_DIR/<uid>.sigterm (default
/tmp/recon-standin) and exits 143, as the runner does.
"""

from __future__ import annotations

import io
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from minio import Minio
from recon_api.constants import Stage
from recon_api.runner_params import ACCESS_KEY_ENV, SECRET_KEY_ENV, RunnerParams
from recon_runner.pod.status_reporter import StatusReporter, kubernetes_api, status_patcher

# Run as a script by the node: the repository root on the path for tests.support.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.run_metrics import run_metrics

SIGNAL_DIR = Path(os.environ.get("RECON_STANDIN_SIGNAL_DIR", "/tmp/recon-standin"))
SLOW_STOP_SECONDS = 8.0
stopped = threading.Event()


def gate_file(job_uid: str) -> Path:
    """The file a test creates to let a `gate` stand-in go on."""
    return SIGNAL_DIR / f"{job_uid}.go"


def silent_file(job_uid: str) -> Path:
    """The file a `hang` stand-in writes once its reporter is closed: from then on it
    writes nothing more to the ReconJob, which a test can wait on instead of a clock."""
    return SIGNAL_DIR / f"{job_uid}.silent"


def terminated(words: str) -> int:
    if "slowstop" in words:
        time.sleep(SLOW_STOP_SECONDS)
    return 143


def on_sigterm(params: RunnerParams) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        SIGNAL_DIR.mkdir(parents=True, exist_ok=True)
        (SIGNAL_DIR / f"{params.job_uid}.sigterm").write_text(f"{os.getpid()}\n")
        stopped.set()

    signal.signal(signal.SIGTERM, handler)


def storage(params: RunnerParams) -> Minio:
    return Minio(
        params.storage_endpoint,
        access_key=os.environ[ACCESS_KEY_ENV],
        secret_key=os.environ[SECRET_KEY_ENV],
        secure=params.storage_secure,
    )


def put(client: Minio, params: RunnerParams, name: str, data: bytes) -> str:
    key = params.output_prefix + name
    client.put_object(params.output_bucket, key, io.BytesIO(data), len(data))
    return f"s3://{params.output_bucket}/{key}"


def main() -> int:
    params = RunnerParams.from_env()
    on_sigterm(params)
    words = params.input_prefix
    api = kubernetes_api()
    reporter = StatusReporter(status_patcher(api, params.job_namespace, params.job_name))
    reporter.start()
    client = storage(params)
    if "partial" in words:
        put(client, params, "partial-mesh.tmp", b"half a mesh")
    if "exit75" in words:
        reporter.fail("storage unreachable (stand-in)")
        return 75
    reporter(Stage.DOWNLOAD, 0.5, "downloading")
    if "gate" in words:
        while not gate_file(params.job_uid).exists():
            if stopped.wait(0.1):
                reporter.close()
                return terminated(words)
    if "exit3" in words:
        time.sleep(0.5)
        reporter.fail("images/view_000.png: not a PNG (stand-in)")
        return 3
    if "hang" in words:
        time.sleep(2.5)  # let the one report go out, then fall silent
        reporter.close()
        SIGNAL_DIR.mkdir(parents=True, exist_ok=True)
        silent_file(params.job_uid).touch()
        stopped.wait()
        return terminated(words)
    match = re.search(r"sleep(\d+)", words)
    seconds = float(match.group(1)) if match else 2.0
    stages = list(Stage)
    for stage in stages:
        for step in range(4):
            if stopped.wait(seconds / len(stages) / 4):
                reporter.close()
                return terminated(words)
            reporter(stage, (step + 1) / 4, f"{stage.value} {step + 1}/4 (stand-in)")
    mesh = put(client, params, "mesh.glb", b"glTF stand-in")
    metrics = put(client, params, "metrics.json", b'{"vertices": 8, "faces": 12}')
    ok = reporter.finish({"mesh": mesh, "metrics": metrics}, run_metrics(vertices=8, faces=12))
    return 0 if ok else 75


if __name__ == "__main__":
    sys.exit(main())
