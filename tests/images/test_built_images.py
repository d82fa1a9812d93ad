"""The images as built from the Dockerfiles: what each holds, how it starts, as whom.

Read from the OCI archives the node imports, so what is checked is what runs.
"""

from __future__ import annotations

import time

from recon_operator.jobspec import RUNNER_UID
from recon_stack import oci_archive
from recon_stack.image_build import OPERATOR, RUNNER, BuiltImage, ensure_image


def test_operator_image_starts_recon_operator_as_65532_without_torch(
    operator_image: BuiltImage,
) -> None:
    config = oci_archive.image_config(operator_image.archive)
    assert config["Entrypoint"] == ["recon", "operator"]
    assert config["User"] == "65532:65532"
    packages = oci_archive.site_packages(oci_archive.image_paths(operator_image.archive))
    assert {"kopf", "recon_operator", "recon_api"} <= packages
    assert "torch" not in packages
    assert not [p for p in packages if p.startswith("nvidia")]


def test_runner_image_starts_recon_runner_as_the_runner_uid_without_kopf(
    runner_image: BuiltImage,
) -> None:
    config = oci_archive.image_config(runner_image.archive)
    assert config["Entrypoint"] == ["recon", "runner"]
    assert config["User"] == f"{RUNNER_UID}:{RUNNER_UID}"
    assert RUNNER_UID == 65532
    env = dict(e.split("=", 1) for e in config.get("Env", []))
    assert env["TORCH_EXTENSIONS_DIR"] == "/opt/torch-extensions"
    packages = oci_archive.site_packages(oci_archive.image_paths(runner_image.archive))
    assert {"torch", "recon_runner", "nvdiffrast"} <= packages
    assert "kopf" not in packages


def test_a_warm_build_builds_nothing(operator_image: BuiltImage) -> None:
    started = time.monotonic()
    again = ensure_image(OPERATOR)
    assert again.archive == operator_image.archive
    assert again.ref == operator_image.ref
    assert not again.built_now
    # Hashing the context and asking buildah whether the base exists, no build.
    assert time.monotonic() - started < 30


def test_both_images_are_cached_under_keys_of_their_own(
    operator_image: BuiltImage, runner_image: BuiltImage
) -> None:
    assert operator_image.key != runner_image.key
    assert operator_image.ref.startswith(OPERATOR.repository + ":")
    assert runner_image.ref.startswith(RUNNER.repository + ":")
