"""SIGTERM and SIGINT as a stop request.

Kubernetes sends SIGTERM when the Job is deleted (cancel, timeout, eviction). The handler
only sets the StopToken; the pipeline raises StopRequested at its next safe point and the
runner cleans up and exits 143. A watchdog makes the exit happen within the grace period
even when a stage runs long between safe points: the pod's terminationGracePeriod must not
be what ends us, since SIGKILL would skip the cleanup of temporary uploads.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from recon_api.constants import ExitCode

from recon_runner.control import StopToken

log = logging.getLogger(__name__)

# DESIGN.md promises exit 143 within 10 s of SIGTERM; leave a margin for the cleanup.
FORCED_EXIT_AFTER_SECONDS = 8.0

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_stop_handlers(
    token: StopToken,
    forced_exit_after: float | None = FORCED_EXIT_AFTER_SECONDS,
    exit_now: Callable[[int], None] = os._exit,
) -> Callable[[], None]:
    """Route SIGTERM/SIGINT to `token`; return a function restoring the old handlers.

    With `forced_exit_after`, a watchdog ends the process with 143 that many seconds after
    the first signal if it is still running: a last resort for a stage stuck between safe
    points, at the price of skipping cleanup.
    """
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    watchdog_started = threading.Event()

    def watchdog() -> None:
        if forced_exit_after is None:
            return
        # A plain sleep: nothing can cancel it except the process ending first.
        threading.Event().wait(forced_exit_after)
        log.error("no safe point reached %.0f s after the stop request; exiting", forced_exit_after)
        exit_now(ExitCode.TERMINATED)

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if token.requested:
            log.info("%s again; still stopping", name)
            return
        log.info("%s received; stopping at the next safe point", name)
        token.request()
        if not watchdog_started.is_set():
            watchdog_started.set()
            threading.Thread(target=watchdog, name="stop-watchdog", daemon=True).start()

    for sig in SIGNALS:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
