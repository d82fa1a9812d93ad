"""What the operator tests share: each module that asks for `operator` (or its namespace,
`ns`) gets an operator of its own, watching a fresh namespace named after the module; a
module sets what its operator runs with by overriding `operator_env`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.operator_process import OperatorProcess, running_operator
from tests.support.stack_handle import StackHandle


@pytest.fixture(scope="module")
def operator_env() -> dict[str, str]:
    """The module's settings over OperatorProcess's defaults: none unless overridden."""
    return {}


@pytest.fixture(scope="module")
def operator(
    stack: StackHandle,
    operator_env: dict[str, str],
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The module's operator (in op-queue-... for test_operator_queue.py); its ReconJobs,
    the operator and the namespace go after the module."""
    module = request.module.__name__.rpartition(".")[2]
    base = "op-" + module.removeprefix("test_").removeprefix("operator_").replace("_", "-")
    log_dir = tmp_path_factory.mktemp("operator")
    with running_operator(stack, base, log_dir, operator_env) as op:
        yield op


@pytest.fixture(scope="module")
def ns(operator: OperatorProcess) -> str:
    return operator.namespace
