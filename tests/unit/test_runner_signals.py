"""SIGTERM/SIGINT become a stop request; a stuck stage is ended by the watchdog with 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from recon_runner.control import StopToken
from recon_runner.errors import StopRequested
from recon_runner.signals import install_stop_handlers


def test_sigterm_sets_the_token_and_the_next_safe_point_raises() -> None:
    token = StopToken()
    exits: list[int] = []
    restore = install_stop_handlers(token, forced_exit_after=None, exit_now=exits.append)
    try:
        token.check()  # nothing yet
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 2
        while not token.requested and time.monotonic() < deadline:
            time.sleep(0.01)
        assert token.requested
        with pytest.raises(StopRequested) as info:
            token.check()
        assert info.value.exit_code == 143
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert exits == []


def test_sigint_also_stops() -> None:
    token = StopToken()
    restore = install_stop_handlers(token, forced_exit_after=None)
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert token.requested
    finally:
        restore()


def test_watchdog_exits_143_when_no_safe_point_comes() -> None:
    # A child process stuck in a loop without safe points: SIGTERM must still end it, 143.
    code = textwrap.dedent(
        """
        import sys, time
        from recon_runner.control import StopToken
        from recon_runner.signals import install_stop_handlers
        install_stop_handlers(StopToken(), forced_exit_after=0.5)
        print("ready", flush=True)
        while True:
            time.sleep(0.01)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(["api", "runner"]))
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        started = time.monotonic()
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=10) == 143
        assert 0.4 <= time.monotonic() - started < 5
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.stderr is not None
    assert b"no safe point reached" in child.stderr.read()
