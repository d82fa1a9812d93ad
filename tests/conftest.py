"""The `stack` fixture: one real local cluster + MinIO for the whole test session, a
throwaway `bucket` in its MinIO for each module and a throwaway `namespace` for each test
that asks for one, and an `operator` (in its namespace `ns`) for each module that asks for
one: as the stack's admin, or with the chart's RBAC only where `operator_chart_rbac` says
so (tests/reliability); a module sets what its operator runs with in `operator_env`.

It is started by the same code as `recon dev up`, in a temporary state directory, and
stopped at the end. Set RECON_TEST_STATE_DIR to run against a stack you keep up between
runs (`recon dev up --state-dir DIR`); the fixture then starts it only when it is not
running and never stops it. RECON_TEST_NODE=real starts it with the real node (kubelet,
containerd, runc) instead of the process node; suites written for the process node (pods
that reach MinIO on the host's loopback, the stand-in runner's host processes) do not all
pass on it yet.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from recon_stack.stack import Stack

from tests.support import captures
from tests.support.operator_process import OperatorProcess, running_operator
from tests.support.stack_handle import StackHandle, handle_for

STATE_DIR_ENV = "RECON_TEST_STATE_DIR"
NODE_ENV = "RECON_TEST_NODE"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    given = os.environ.get(STATE_DIR_ENV)
    state_dir = Path(given) if given else tmp_path_factory.mktemp("stack")
    local = Stack(state_dir, node=os.environ.get(NODE_ENV, "process"))
    local.up()
    try:
        yield handle_for(local)
    finally:
        if not given:
            local.down()


@pytest.fixture(scope="module")
def bucket(stack: StackHandle) -> Iterator[str]:
    """A throwaway bucket for one test module, emptied and removed after it."""
    with captures.throwaway_bucket(stack.minio_client()) as name:
        yield name


@pytest.fixture
def namespace(stack: StackHandle) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) after it."""
    with stack.throwaway_namespace() as name:
        yield name


@pytest.fixture(scope="module")
def operator_env() -> dict[str, str]:
    """The module's operator settings over OperatorProcess's defaults: none unless a module
    overrides this."""
    return {}


@pytest.fixture(scope="module")
def operator_chart_rbac() -> bool:
    """Whether the module's operator holds the chart's RBAC and nothing else."""
    return False


@pytest.fixture(scope="module")
def operator(
    stack: StackHandle,
    operator_env: dict[str, str],
    operator_chart_rbac: bool,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The module's operator, watching a fresh namespace named after the module (queue-...
    for test_operator_queue.py); its ReconJobs, the operator and the namespace go after the
    module."""
    module = request.module.__name__.rpartition(".")[2]
    base = module.removeprefix("test_").removeprefix("operator_").replace("_", "-")
    log_dir = tmp_path_factory.mktemp("operator")
    with running_operator(stack, base, log_dir, operator_env, chart_rbac=operator_chart_rbac) as op:
        yield op


@pytest.fixture(scope="module")
def ns(operator: OperatorProcess) -> str:
    """The namespace the module's operator watches."""
    return operator.namespace


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the stack carries the `stack` marker, so `-m "not stack"` works."""
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)
