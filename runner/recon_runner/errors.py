"""Failures the runner distinguishes, each mapped to the exit code the Job's podFailurePolicy
acts on: bad input fails the ReconJob at once, transient trouble is retried."""

from __future__ import annotations

from recon_api.constants import ExitCode


class RunnerError(Exception):
    exit_code: int = 1


class InvalidInputError(RunnerError):
    """The capture itself is wrong; retrying cannot help. Names the file and the problem."""

    exit_code = ExitCode.INVALID_INPUT

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


class TransientError(RunnerError):
    """Something outside the capture (storage, network) failed; a retry may succeed."""

    exit_code = ExitCode.TRANSIENT


class StopRequested(RunnerError):
    """SIGTERM arrived; raised at the next safe point so nothing partial is written."""

    exit_code = ExitCode.TERMINATED
