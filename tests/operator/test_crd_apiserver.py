"""The generated CRD on the stack's real API server: invalid ReconJobs are refused, valid
ones get their defaults, kubectl explain and get show what users rely on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.stack_handle import StackHandle

pytestmark = pytest.mark.stack

CRD = Path(__file__).resolve().parents[2] / "crds" / "reconjob.yaml"


@pytest.fixture(scope="module")
def namespace(stack: StackHandle) -> Iterator[str]:
    stack.kubectl("apply", "-f", str(CRD))
    stack.kubectl("wait", "--for=condition=Established", "crd/reconjobs.recon.dev", "--timeout=60s")
    name = f"crd-{uuid.uuid4().hex[:8]}"
    stack.kubectl("create", "namespace", name)
    yield name
    stack.kubectl("delete", "namespace", name, "--wait=false", check=False)


def manifest(name: str, namespace: str, spec: dict[str, object]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "recon.dev/v1alpha1",
            "kind": "ReconJob",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def apply(stack: StackHandle, name: str, namespace: str, spec: dict[str, object]) -> str:
    """kubectl apply; returns stderr when the API server refused the object."""
    result = stack.kubectl("apply", "-f", "-", input=manifest(name, namespace, spec), check=False)
    return "" if result.returncode == 0 else result.stderr


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ({"input": {"prefix": "chair/"}}, "spec.input.bucket", "Required value"),
        (
            {"input": {"bucket": "scans", "expectedViews": 0}},
            "spec.input.expectedViews",
            "greater than or equal to 1",
        ),
        (
            {"input": {"bucket": "scans"}, "reconstruction": {"preset": "ultra"}},
            "spec.reconstruction.preset",
            'Unsupported value: "ultra"',
        ),
        (
            {"input": {"bucket": "scans"}, "output": {"formats": ["glb", "glb"]}},
            "spec.output.formats[1]",
            "Duplicate value",
        ),
        (
            {"input": {"bucket": "scans"}, "resources": {"memory": "lots"}},
            "spec.resources.memory",
            "should match",
        ),
        ({"input": {"bucket": "scans"}, "retries": 99}, "spec.retries", "less than or equal"),
    ],
)
def test_invalid_reconjobs_are_refused(
    stack: StackHandle, namespace: str, spec: dict[str, object], field: str, reason: str
) -> None:
    name = f"bad-{uuid.uuid4().hex[:6]}"
    err = apply(stack, name, namespace, spec)
    assert field in err and reason in err, err
    got = stack.kubectl("get", "reconjob", name, "-n", namespace, check=False)
    assert got.returncode != 0  # nothing was stored


def test_valid_reconjob_gets_defaults(stack: StackHandle, namespace: str) -> None:
    assert (
        apply(stack, "chair-001", namespace, {"input": {"bucket": "scans", "prefix": "chair-001/"}})
        == ""
    )
    obj = json.loads(stack.kubectl("get", "rj", "chair-001", "-n", namespace, "-o", "json").stdout)
    spec = obj["spec"]
    assert spec["input"] == {"bucket": "scans", "prefix": "chair-001/", "expectedViews": 6}
    assert spec["output"] == {"formats": ["glb"]}
    assert spec["reconstruction"] == {"preset": "standard", "seed": 0, "closeHoles": False}
    assert spec["resources"]["gpus"] == 1
    assert (spec["resources"]["cpu"], spec["resources"]["memory"]) == ("4", "16Gi")
    assert (spec["priority"], spec["timeoutSeconds"], spec["retries"]) == (0, 3600, 2)
    # Re-applying the same manifest (a GitOps re-sync) is not a spec change.
    assert (
        apply(stack, "chair-001", namespace, {"input": {"bucket": "scans", "prefix": "chair-001/"}})
        == ""
    )


def test_spec_cannot_change_after_creation(stack: StackHandle, namespace: str) -> None:
    assert apply(stack, "immutable", namespace, {"input": {"bucket": "scans"}}) == ""
    err = apply(stack, "immutable", namespace, {"input": {"bucket": "scans"}, "priority": 5})
    assert "spec is immutable: a new reconstruction is a new ReconJob" in err
    patch = stack.kubectl(
        "patch",
        "rj",
        "immutable",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec": {"input": {"expectedViews": 9}}}',
        check=False,
    )
    assert patch.returncode != 0 and "spec is immutable" in patch.stderr


def test_explain_shows_field_descriptions(stack: StackHandle, namespace: str) -> None:
    out = stack.kubectl("explain", "reconjob.spec.input").stdout
    assert "The capture to reconstruct." in out
    assert "bucket" in out and "Bucket that holds the capture." in out
    assert "expectedViews" in out and "Number of frames transforms.json must list" in out


def test_printer_columns_show_status(stack: StackHandle, namespace: str) -> None:
    assert apply(stack, "printed", namespace, {"input": {"bucket": "scans"}}) == ""
    status = {
        "status": {
            "phase": "Running",
            "progress": {"percent": 42, "stage": "refine", "message": "iteration 168/400"},
            "nodeName": "gpu-node-7",
            "queuePosition": 3,
        }
    }
    stack.kubectl(
        "patch",
        "rj",
        "printed",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    narrow = stack.kubectl("get", "reconjobs", "printed", "-n", namespace).stdout.splitlines()
    assert narrow[0].split() == ["NAME", "PHASE", "PROGRESS", "STAGE", "QUEUE", "AGE"]
    assert narrow[1].split()[:5] == ["printed", "Running", "42", "refine", "3"]
    wide = stack.kubectl("get", "rj", "printed", "-n", namespace, "-o", "wide").stdout
    header, row = wide.splitlines()
    assert header.split() == [
        "NAME",
        "PHASE",
        "PROGRESS",
        "STAGE",
        "QUEUE",
        "AGE",
        "NODE",
        "MESSAGE",
    ]
    assert row.split()[-3:] == ["gpu-node-7", "iteration", "168/400"]


def test_status_fields_survive_the_schema(stack: StackHandle, namespace: str) -> None:
    """Everything the operator and runner write is kept, not pruned."""
    assert apply(stack, "kept", namespace, {"input": {"bucket": "scans"}}) == ""
    status = {
        "phase": "Succeeded",
        "progress": {
            "percent": 100,
            "stage": "upload",
            "message": "done",
            "updatedAt": "2025-01-01T00:00:00Z",
            "etaSeconds": 0,
        },
        "conditions": [
            {
                "type": "Succeeded",
                "status": "True",
                "reason": "MeshWritten",
                "message": "ok",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
                "observedGeneration": 1,
            }
        ],
        "jobName": "kept-recon",
        "nodeName": "node-1",
        "attempts": 1,
        "startedAt": "2025-01-01T00:00:00Z",
        "finishedAt": "2025-01-01T00:01:00Z",
        "cancel": {"requestedAt": "2025-01-01T00:00:30Z", "expiresAt": "2025-01-01T00:10:30Z"},
        "outputs": {
            "mesh": "s3://scans/output/u/mesh.glb",
            "preview": "s3://scans/output/u/preview.png",
            "metrics": "s3://scans/output/u/metrics.json",
        },
        "metrics": {
            "vertices": 10,
            "faces": 20,
            "seconds": 1.5,
            "psnr": 30.5,
            "maskIoU": 0.9,
            "depthErrorMm": 1.2,
        },
        "observedGeneration": 1,
    }
    stack.kubectl(
        "patch",
        "rj",
        "kept",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    got = json.loads(stack.kubectl("get", "rj", "kept", "-n", namespace, "-o", "json").stdout)
    assert got["status"] == status
