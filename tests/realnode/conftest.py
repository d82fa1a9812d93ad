"""A stack with the real node (kubelet, containerd, runc in the stack's own namespaces),
running both images as `recon dev images` builds them.

Opt-in (`make test-real-node`, `pytest -m realnode` or RECON_TEST_REAL_NODE=1) while the
process node stays the default: it needs root, the Debian packages of
scripts/install-node-packages.sh, and both images (a cold runner build takes minutes).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from recon_stack.stack import Stack

from tests.support.opt_in import deselect_unless_opted_in
from tests.support.stack_handle import StackHandle, handle_for

OPT_IN_ENV = "RECON_TEST_REAL_NODE"
# Cold: both images imported into a fresh containerd (the runner's is 3 GB).
UP_TIMEOUT = 600.0


@pytest.fixture(scope="session")
def real_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    assert os.geteuid() == 0, "the real node needs root (namespaces, mounts, cgroups)"
    local = Stack(
        tmp_path_factory.mktemp("real-stack"),
        node="real",
        images=("operator", "runner"),
        timeout=UP_TIMEOUT,
    )
    local.up()
    try:
        yield handle_for(local)
    finally:
        local.down()


@pytest.fixture
def namespace(real_stack: StackHandle) -> Iterator[str]:
    name = f"realnode-{secrets.token_hex(3)}"
    real_stack.kubectl("create", "namespace", name)
    yield name
    real_stack.kubectl("delete", "namespace", name, "--wait=false", check=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselect_unless_opted_in(
        config,
        items,
        "realnode",
        OPT_IN_ENV,
        lambda item: "tests/realnode/" in str(item.fspath).replace(os.sep, "/"),
    )
