"""What the end-to-end tests share: the release they install the chart as, the example
ReconJob for one run, a synthetic capture where a job reads it, and fresh namespaces."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from recon_cli.cluster_demo import capture, chart, reconjob

from tests.support.stack_handle import StackHandle

# The draft preset at a small size: the whole reconstruction in well under a minute of CPU.
CAPTURE_SIZE = 96
DRAFT = {"preset": "draft"}


@dataclass(frozen=True)
class Installed:
    release: chart.Release
    jobs_namespace: str


def example_job(
    namespace: str, run: str, reconstruction: dict[str, Any], name: str | None = None
) -> dict[str, Any]:
    """The example ReconJob (examples/reconjob.yaml) for one run: its capture under
    ``run/capture/``, its outputs under ``run/out/``; named ``run`` unless ``name``."""
    return reconjob.customised(
        reconjob.example(),
        name=name if name is not None else run,
        namespace=namespace,
        input_prefix=f"{run}/capture/",
        output_prefix=f"{run}/out/",
        reconstruction=reconstruction,
    )


def upload_synthetic(stack: StackHandle, job: dict[str, Any], shape: str) -> None:
    """A CAPTURE_SIZE synthetic capture of ``shape`` where ``job`` reads it, and the
    bucket it writes to."""
    spec = job["spec"]
    client = stack.minio_client()
    capture.upload_synthetic_capture(
        client, spec["input"]["bucket"], spec["input"]["prefix"], shape, size=CAPTURE_SIZE
    )
    capture.ensure_bucket(client, spec["output"]["bucket"])


def new_namespace(stack: StackHandle, base: str) -> str:
    """A fresh namespace; the suffix keeps reruns on a kept stack clear of old ones."""
    namespace = f"{base}-{secrets.token_hex(3)}"
    stack.kubectl("create", "namespace", namespace)
    return namespace


def uninstall(stack: StackHandle, release: chart.Release) -> None:
    stack.helm("uninstall", release.name, "-n", release.namespace, "--wait", check=False)
