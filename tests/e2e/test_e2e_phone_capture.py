"""A phone-style capture through the whole product, with the real runner: JPEG colour
without alpha or mask, depth at a quarter of the colour resolution, confidence maps, and a
crop box in `spec.reconstruction.bounds`. The operator admits it from its headers (JPEG SOF
by ranged reads, depth against depth_w/depth_h), the runner reconstructs it, and the mesh is
close to the object that was captured."""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path

from recon_cli.cluster_demo import capture, outputs, reconjob, watch
from recon_runner.synthetic import CaptureStyle, DepthNoise, make_object, write_capture

from tests.support.e2e_release import DRAFT, Installed, example_job
from tests.support.stack_handle import StackHandle

OBJECT = "checker_sphere"
SIZE = 128
PHONE = CaptureStyle(
    colour_format="jpeg", depth_scale=4, confidence=True, low_confidence_outliers=0.05
)
# What the draft preset reaches on this capture is a Chamfer-L1 of a few tenths of a percent
# of the diagonal and an F-score (at 1% of it) near 0.99; fused low-confidence outliers or a
# depth camera off by the resolution ratio would be far outside these bounds.
MAX_CHAMFER_RATIO = 0.006
MIN_FSCORE = 0.95


def test_a_jpeg_capture_with_quarter_resolution_depth_and_confidence_succeeds(
    stack: StackHandle, installed: Installed, tmp_path: Path
) -> None:
    ns = installed.jobs_namespace
    run = f"phone-{secrets.token_hex(3)}"
    truth = make_object(OBJECT)
    lo, hi = truth.bounds
    bounds = {"min": [float(v) for v in lo - 0.05], "max": [float(v) for v in hi + 0.05]}
    job = example_job(ns, run, {**DRAFT, "bounds": bounds})
    spec = job["spec"]
    client = stack.minio_client()
    with tempfile.TemporaryDirectory(prefix="recon-phone-") as tmp:
        root = Path(tmp)
        write_capture(truth, root, 6, SIZE, SIZE, noise=DepthNoise(0.001, 0.02), style=PHONE)
        meta = json.loads((root / "transforms.json").read_text())
        assert (meta["depth_w"], meta["depth_h"]) == (SIZE // 4, SIZE // 4)
        assert all(f["file_path"].endswith(".jpg") and f["confidence_path"] for f in meta["frames"])
        capture.upload_dir(client, root, spec["input"]["bucket"], spec["input"]["prefix"])
    capture.ensure_bucket(client, spec["output"]["bucket"])

    assert reconjob.apply(stack, job) == f"reconjob.recon.dev/{run} created"
    rows: list[str] = []
    seen = watch.follow(stack, ns, run, timeout=600, show=rows.append)
    status = reconjob.get(stack, ns, run)["status"]
    messages = [c.get("message") for c in status.get("conditions", [])]
    assert [s.phase for s in seen if s.phase][-1] == "Succeeded", (rows, messages)

    files = outputs.download_outputs(client, status["outputs"], tmp_path)
    mesh = outputs.load_glb(files["mesh"])
    assert mesh is not None and len(mesh.faces) > 100
    score = outputs.accuracy(truth, mesh, textured=False)
    assert score.chamfer_l1_ratio < MAX_CHAMFER_RATIO, score
    assert score.fscore > MIN_FSCORE, score
