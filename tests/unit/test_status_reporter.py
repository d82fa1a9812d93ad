"""The reporter's ticker: due reports and heartbeats reach the API without the pipeline
waiting, and a failing API server never ends the run."""

from __future__ import annotations

import threading
import time
from typing import Any

from recon_api.constants import Stage
from recon_runner.pod.progress import ProgressLimiter
from recon_runner.pod.status_reporter import StatusReporter

from tests.support.run_metrics import run_metrics


class Recorder:
    """Stands in for the API server's side of a patch: records bodies, fails on demand."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.calls += 1
            if self.calls <= self.fail_first:
                raise ConnectionError("API server unreachable")
            self.bodies.append(body)

    def progress(self) -> list[dict[str, Any]]:
        with self.lock:
            return [b["status"]["progress"] for b in self.bodies]


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_boundary_goes_out_at_once_and_heartbeat_keeps_updated_at_fresh() -> None:
    patches = Recorder()
    limiter = ProgressLimiter(min_interval=0.2, heartbeat=0.3)
    reporter = StatusReporter(patches, limiter, tick=0.05).start()
    try:
        reporter(Stage.FUSE, 0.0, "fusing")
        wait_for(lambda: len(patches.progress()) >= 1, timeout=1.0)
        assert patches.progress()[0]["stage"] == "fuse"
        wait_for(lambda: len(patches.progress()) >= 3, timeout=2.0)  # silence: heartbeats
        assert all(p["percent"] == 5 for p in patches.progress())
    finally:
        reporter.close()


def test_failing_patches_are_retried_and_the_final_patch_carries_outputs() -> None:
    patches = Recorder(fail_first=3)
    limiter = ProgressLimiter(min_interval=0.05, heartbeat=10.0)
    reporter = StatusReporter(patches, limiter, tick=0.02).start()
    try:
        reporter(Stage.DOWNLOAD, 0.5, "downloading")
        wait_for(lambda: len(patches.progress()) >= 1)
        assert patches.calls == 4
        assert patches.progress()[0]["message"] == "downloading"
    finally:
        reporter.close()
    ok = reporter.finish({"mesh": "s3://b/o/mesh.glb"}, run_metrics(vertices=10), backoff=0.01)
    assert ok
    final = patches.bodies[-1]["status"]
    assert final["progress"]["percent"] == 100 and final["progress"]["etaSeconds"] == 0
    assert final["outputs"] == {"mesh": "s3://b/o/mesh.glb"}
    assert final["metrics"] == run_metrics(vertices=10).headline().to_api()
    assert final["metrics"]["vertices"] == 10


def test_final_patch_gives_up_after_bounded_attempts() -> None:
    patches = Recorder(fail_first=100)
    reporter = StatusReporter(patches, ProgressLimiter())
    assert not reporter.finish({}, run_metrics(), attempts=3, backoff=0.01)
    assert patches.calls == 3
