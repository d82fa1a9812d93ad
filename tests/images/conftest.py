"""The two images as `recon dev images` builds them from this working tree (cached: a warm
run builds nothing), for tests that inspect what the node receives.

Opt-in (`make test-images`, `pytest -m images` or RECON_TEST_IMAGES=1): any change to the
Python sources changes both images' keys, and rebuilding the runner image (torch) costs
about 12 minutes on a 2-core machine, more than a warm `make test` may take.
"""

from __future__ import annotations

import shutil

import pytest
from recon_stack.image_build import OPERATOR, RUNNER, BuiltImage, ensure_image

from tests.support.opt_in import deselect_unless_opted_in


def _needs_buildah() -> None:
    missing = [tool for tool in ("buildah", "mmdebstrap") if shutil.which(tool) is None]
    assert not missing, (
        f"{', '.join(missing)} missing: run scripts/install-node-packages.sh (make test does)"
    )


@pytest.fixture(scope="session")
def operator_image() -> BuiltImage:
    _needs_buildah()
    return ensure_image(OPERATOR)


@pytest.fixture(scope="session")
def runner_image() -> BuiltImage:
    _needs_buildah()
    return ensure_image(RUNNER)


OPT_IN_ENV = "RECON_TEST_IMAGES"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    deselect_unless_opted_in(
        config,
        items,
        "images",
        OPT_IN_ENV,
        lambda item: bool(
            {"operator_image", "runner_image"} & set(getattr(item, "fixturenames", ()))
        ),
    )
