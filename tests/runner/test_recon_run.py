"""`recon run` end to end on a capture of a known object: accurate, textured, with the
documented outputs and exit codes.

The capture is ray-cast by tests/support/raycast_capture.py (Embree, not the project's
rasterizer) and the mesh is read back with trimesh, not the project's GLB code, so a
convention error shared by the renderer and the reconstruction cannot cancel out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from PIL import Image
from recon_runner.evaluation.accuracy import evaluate
from recon_runner.synthetic import CaptureStyle, DepthNoise, write_capture
from recon_runner.synthetic.objects import make_object

from tests.support.raycast_capture import write_raycast_capture

OBJECT = "torus"
# docs/benchmarks.md measures the draft preset on the torus at a Chamfer-L1 of 0.0518% of
# the bounding-box diagonal (clean depth) and an F-score of 1.0; the bounds allow 2x the
# Chamfer figure (fewer, smaller views here) and a 1% shortfall of the F-score.
DOCUMENTED_CHAMFER_RATIO = 0.000518
MAX_CHAMFER_RATIO = 2 * DOCUMENTED_CHAMFER_RATIO
MIN_FSCORE = 0.99


def recon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recon_cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("capture")
    write_raycast_capture(make_object(OBJECT), root, views=6, size=160)
    return root


def test_recon_run_reconstructs_the_object_accurately(capture_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = recon(
        "run", str(capture_dir), "--out", str(out), "--preset", "draft", "--formats", "glb,ply"
    )
    assert done.returncode == 0, done.stderr
    assert "fuse" in done.stderr and "100%" in done.stderr  # the progress went to stderr
    for name in ("mesh.glb", "mesh.ply", "preview.png", "metrics.json"):
        assert (out / name).is_file(), name

    # The GLB as a viewer loads it: geometry in the capture's world frame, close to the truth.
    mesh: Any = trimesh.load(out / "mesh.glb", force="mesh")
    truth = make_object(OBJECT)
    accuracy = evaluate(truth.mesh, mesh.vertices, mesh.faces, samples=20_000)
    print(f"\n{OBJECT}: {accuracy}")
    assert accuracy.chamfer_l1_ratio < MAX_CHAMFER_RATIO, accuracy
    assert accuracy.fscore > MIN_FSCORE, accuracy
    assert accuracy.normal_consistency > 0.95

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["faces"] == len(mesh.faces)
    assert metrics["maskIoU"] > 0.95
    assert metrics["psnr"] > 25
    assert metrics["depthErrorMm"] < 5
    assert set(metrics["seconds"]) >= {"fuse", "refine", "texture", "export", "total"}
    preview = np.asarray(Image.open(out / "preview.png"))
    assert preview.shape[0] > 0 and preview.std() > 10


def test_broken_capture_exits_3_naming_the_file(capture_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(capture_dir), str(broken)], check=True)
    Image.fromarray(np.zeros((160, 160), np.uint16)).save(broken / "depth/view_003.png")
    done = recon("run", str(broken), "--out", str(tmp_path / "out"), "--preset", "draft")
    assert done.returncode == 3
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "depth/view_003.png" in lines[0] and "all zeros" in lines[0]
    assert not (tmp_path / "out" / "mesh.glb").exists()


@pytest.mark.parametrize(
    ("flag", "value", "field"),
    [("--grid-resolution", "16", "gridResolution"), ("--texture-size", "16384", "textureSize")],
)
def test_a_setting_the_api_refuses_is_refused_naming_its_field(
    capture_dir: Path, tmp_path: Path, flag: str, value: str, field: str
) -> None:
    done = recon("run", str(capture_dir), "--out", str(tmp_path / "out"), flag, value)
    assert done.returncode == 2
    assert f"{field} must be between" in done.stderr and value in done.stderr
    assert not (tmp_path / "out" / "mesh.glb").exists()


# Phone-style: JPEG colour without alpha or mask, depth at a quarter of the colour
# resolution with noise and dropouts, confidence maps marking 5% of the readings (each 10 cm
# off) low. Measured: Chamfer-L1 about 0.2% of the diagonal, F-score 0.99; the bounds leave
# a margin, and fusing the low-confidence outliers, carving at depth holes or a depth camera
# off by the resolution ratio would be far outside them.
PHONE = CaptureStyle(
    colour_format="jpeg", depth_scale=4, confidence=True, low_confidence_outliers=0.05
)


def test_recon_run_reconstructs_a_phone_style_capture_inside_its_bounds(tmp_path: Path) -> None:
    capture, out = tmp_path / "phone", tmp_path / "out"
    truth = make_object(OBJECT)
    write_capture(
        truth, capture, views=6, width=128, height=128, noise=DepthNoise(0.001, 0.02), style=PHONE
    )
    lo, hi = truth.bounds
    box = [*(lo - 0.05), *(hi + 0.05)]
    done = recon(
        "run", str(capture), "--out", str(out), "--preset", "draft", "--quiet",
        "--bounds=" + ",".join(f"{v:.4f}" for v in box),  # "=": the list starts with "-"
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    mesh: Any = trimesh.load(out / "mesh.glb", force="mesh")
    assert np.all(mesh.vertices >= np.array(box[:3]) - 1e-6)
    assert np.all(mesh.vertices <= np.array(box[3:]) + 1e-6)
    accuracy = evaluate(truth.mesh, mesh.vertices, mesh.faces, samples=20_000)
    assert accuracy.chamfer_l1_ratio < 0.004, accuracy
    assert accuracy.fscore > 0.97, accuracy
    assert accuracy.normal_consistency > 0.85, accuracy


def test_recon_run_holds_a_working_set_of_a_larger_capture(tmp_path: Path) -> None:
    """20 views behind `draft`'s limit of 12: the run uses every view for fusion and for
    the metrics, holds 12 for refinement and texturing, says so in metrics.json, is as
    accurate as the six-view capture, and previews 12 views, not 20."""
    capture, out = tmp_path / "views", tmp_path / "out"
    truth = make_object(OBJECT)
    write_raycast_capture(truth, capture, views=20, size=96)
    done = recon("run", str(capture), "--out", str(out), "--preset", "draft", "--quiet")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["views"], metrics["workingViews"]) == (20, 12)
    assert metrics["maskIoU"] > 0.95
    mesh: Any = trimesh.load(out / "mesh.glb", force="mesh")
    accuracy = evaluate(truth.mesh, mesh.vertices, mesh.faces, samples=20_000)
    assert accuracy.chamfer_l1_ratio < MAX_CHAMFER_RATIO, accuracy
    assert accuracy.fscore > MIN_FSCORE, accuracy
    # 12 pairs of 96-pixel tiles, four pairs to a row, 4 pixels apart and 8 between pairs.
    preview = np.asarray(Image.open(out / "preview.png"))
    assert preview.shape[:2] == (3 * 96 + 2 * 4, 4 * (2 * 96 + 4) + 3 * 8)


def test_recon_run_refuses_malformed_bounds(capture_dir: Path, tmp_path: Path) -> None:
    done = recon("run", str(capture_dir), "--out", str(tmp_path), "--bounds", "1,1,1,0,0,0")
    assert done.returncode == 2
    assert "--bounds='1,1,1,0,0,0': the minimum must be below the maximum" in done.stderr
