"""Patching the runner's own ReconJob status from inside its pod.

The pod's ServiceAccount may only get its own ReconJob and patch its status (a Role with
`resourceNames`), so everything here is a merge patch on the status subresource of that one
object. Patches go out from a background thread: the pipeline never waits on the API
server, and a failed patch is logged and retried on a later tick instead of failing the run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from recon_api.constants import GROUP, PLURAL, VERSION, Stage
from recon_api.run_metrics import RunMetrics

from recon_runner.pod.progress import (
    ProgressLimiter,
    ProgressReport,
    final_patch,
    progress_patch,
)

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
# Connect and read timeouts of one patch: short, since a later tick retries anyway.
PATCH_TIMEOUT = (5.0, 10.0)

Patcher = Callable[[dict[str, Any]], None]


def kubernetes_api() -> client.ApiClient:
    """An API client from $KUBECONFIG when set (the process node and `recon runner` on a
    laptop), else from the pod's in-cluster ServiceAccount."""
    configuration = client.Configuration()
    path = os.environ.get("KUBECONFIG")
    if path:
        config.load_kube_config(config_file=path, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    api = client.ApiClient(configuration)
    # The field manager of the runner's status writes, as managedFields shows it.
    api.user_agent = "recon-runner/0.1.0"
    return api


def status_patcher(api: client.ApiClient, namespace: str, name: str) -> Patcher:
    """A function merge-patching the status subresource of one ReconJob."""
    objects = client.CustomObjectsApi(api)

    def patch(body: dict[str, Any]) -> None:
        objects.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            body,
            _content_type="application/merge-patch+json",
            _request_timeout=PATCH_TIMEOUT,
        )

    return patch


def _describe(error: Exception) -> str:
    """A one-line reason; ApiException's str() spans the headers and body."""
    status = getattr(error, "status", None)
    reason = getattr(error, "reason", None)
    if status is not None:
        return f"HTTP {status} {reason or ''}".strip()
    return f"{type(error).__name__}: {error}"


class StatusReporter:
    """A ProgressSink that keeps status.progress of one ReconJob up to date.

    Call it with (stage, fraction, message) as the pipeline goes; `start()` runs the ticker
    that sends due reports and heartbeats; `finish()` sends the final patch with outputs and
    metrics; `close()` stops the ticker (on any outcome).
    """

    def __init__(
        self,
        patch: Patcher,
        limiter: ProgressLimiter | None = None,
        tick: float = TICK_SECONDS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._patch = patch
        self._limiter = limiter or ProgressLimiter()
        self._tick = tick
        self._now = now
        self._lock = threading.Lock()
        self._due: ProgressReport | None = None
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0

    def __call__(self, stage: Stage, fraction: float, message: str) -> None:
        with self._lock:
            report = self._limiter.offer(stage, fraction, message)
            if report is not None:
                self._due = report
        if report is not None:
            self._wake.set()

    def start(self) -> StatusReporter:
        self._thread = threading.Thread(target=self._run, name="status-reporter", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            # A patch in flight may hang on a dead API server; the thread is a daemon and
            # must not hold up the exit (143 within 10 s of SIGTERM).
            self._thread.join(timeout=2.0)
            self._thread = None

    def finish(
        self,
        outputs: Mapping[str, str],
        metrics: RunMetrics,
        message: str = "done",
        attempts: int = 5,
        backoff: float = 1.0,
    ) -> bool:
        """The last patch: 100 %, outputs and metrics together. Retried a few times, since
        the outputs are only discoverable through it; False when it never got through."""
        self.close()
        with self._lock:
            report = self._limiter.finish(Stage.UPLOAD, message)
        body = final_patch(report, self._now(), outputs, metrics)
        for attempt in range(attempts):
            if self._send(body):
                return True
            if attempt + 1 < attempts:
                time.sleep(backoff * 2**attempt)
        return False

    def fail(self, message: str) -> None:
        """Put why the run ended into status.progress.message (best effort, one try), so
        `kubectl get -o yaml` tells the story even before the operator reacts."""
        self.close()
        with self._lock:
            current = self._limiter.current
        if current is None:  # ended before any progress, e.g. storage unreachable at once
            report = ProgressReport(0, Stage.DOWNLOAD, message, None)
        else:
            report = ProgressReport(current.percent, current.stage, message, None)
        self._send(progress_patch(report, self._now()))

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self._tick)
            self._wake.clear()
            if self._closed.is_set():
                break
            with self._lock:
                report, self._due = self._due, None
                if report is None:
                    report = self._limiter.poll()
            if report is None:
                continue
            if self._send(progress_patch(report, self._now())):
                with self._lock:
                    self._limiter.delivered(report)

    def _send(self, body: dict[str, Any]) -> bool:
        try:
            self._patch(body)
        except Exception as e:  # never let status reporting end the run
            self._failures += 1
            # First failure and then every tenth: visible, without flooding the log.
            if self._failures == 1 or self._failures % 10 == 0:
                log.warning("status patch failed (%d so far): %s", self._failures, _describe(e))
            return False
        if self._failures:
            log.info("status patch works again after %d failures", self._failures)
            self._failures = 0
        return True
