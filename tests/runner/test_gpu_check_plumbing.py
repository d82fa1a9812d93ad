"""scripts/gpu_check.sh end to end on this machine: its CPU mode runs every step it can,
skips the CUDA ones saying why, and leaves the result files the GPU run will leave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("OUT", "RECON_RENDERER")}
    environment.update(
        PYTHON=sys.executable,
        GPU_CHECK_SITE=str(tmp_path / "site"),
        TORCH_EXTENSIONS_DIR=str(tmp_path / "extensions"),
        **env,
    )
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        cwd=tmp_path,  # the script finds the repository from its own path
        env=environment,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )


def test_cpu_mode_runs_the_plumbing_and_writes_every_result(tmp_path):
    out = tmp_path / "out"
    done = _run(["--cpu", str(out)], tmp_path, GPU_CHECK_RUNS="1")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "cpu" and summary["status"] == "passed"
    steps = {s["step"]: s for s in summary["steps"]}
    assert list(steps) == ["environment", "install", "imports", "nvdiffrast", "parity", "timing"]
    assert steps["environment"]["status"] == "passed"
    assert steps["install"]["status"] in ("passed", "skipped")
    assert steps["imports"]["status"] == "passed"
    assert steps["nvdiffrast"] == {
        "step": "nvdiffrast",
        "status": "skipped",
        "seconds": 0,
        "detail": "CPU mode: nvdiffrast's plugin is CUDA code and needs a GPU",
    }
    # The GPU tests are collected (their imports resolve) but not run.
    assert steps["parity"]["status"] == "skipped"
    assert "needs CUDA" in steps["parity"]["detail"]
    collected = int(steps["parity"]["detail"].rsplit("; ", 1)[1].split()[0])
    assert collected >= 8  # the parity test file alone has eight
    assert steps["timing"]["status"] == "passed"
    assert summary["seconds"] <= summary["budget_seconds"]

    environment = json.loads((out / "environment.json").read_text())
    assert environment["mode"] == "cpu" and environment["torch"] == torch.__version__

    timing = json.loads((out / "timing.json").read_text())
    assert timing["complete"] is True and timing["targets"] == []  # no target on a CPU
    cases = {c["case"]: c for c in timing["cases"]}
    assert set(cases) == {"clean", "phone"}
    for name, case in cases.items():
        assert "error" not in case, case
        assert case["device"] == "cpu" and case["renderer"] == "torch"
        assert case["preset"] == "standard"
        assert len(case["warmup_seconds"]) == 1 and case["runs_done"] == 1
        assert case["median_seconds"] == case["seconds"][0] > 0
        assert case["gpu_peak_allocated_mib"] is None
        assert 100 < case["peak_rss_mib"] < 8192
        # The small run still reconstructs the block: within a few percent of its diagonal.
        assert case["accuracy"]["chamfer_l1_ratio"] < 0.03, case["accuracy"]
        assert case["accuracy"]["fscore"] > 0.6, case["accuracy"]
        metrics = json.loads((out / name / "metrics.json").read_text())
        assert metrics["faces"] == case["faces"] > 0
    assert cases["clean"]["capture_options"] == {}
    assert "depth_noise" in cases["phone"]["capture_options"]

    log = (out / "gpu_check.log").read_text()
    for step_log in ("environment.log", "imports.log", "parity.log", "timing.log"):
        assert (out / step_log).stat().st_size > 0, step_log
    assert "nvdiffrast: skipped: CPU mode" in log
    assert "passed in" in log


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the failure without a GPU")
def test_gpu_mode_without_cuda_fails_loudly_and_runs_nothing_else(tmp_path):
    out = tmp_path / "out"
    done = _run([str(out)], tmp_path)
    assert done.returncode == 1
    assert "torch sees no CUDA device" in done.stdout
    assert "--cpu" in done.stdout  # says how to check the plumbing instead
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert [(s["step"], s["status"]) for s in summary["steps"]] == [
        ("environment", "failed"),
        ("rest", "skipped"),
    ]
    assert not (out / "timing.json").exists()


def test_an_output_folder_is_required(tmp_path):
    done = _run([], tmp_path)
    assert done.returncode == 2
    assert "give the output folder" in done.stderr
