"""A complete metrics.json record (`recon_api.run_metrics.RunMetrics`) for tests and stand-in
runners that finish a job without running the pipeline; any field can be overridden."""

from __future__ import annotations

from typing import Any

from recon_api.run_metrics import RunMetrics

SAMPLE: dict[str, Any] = {
    "vertices": 8,
    "faces": 12,
    "psnr": 30.0,
    "maskIoU": 0.99,
    "depthErrorMm": 1.0,
    "observedFraction": 1.0,
    "filledFraction": 0.0,
    "observedAreaM2": 0.06,
    "filledAreaM2": 0.0,
    "unobservedRemovedAreaM2": 0.0,
    "preset": "draft",
    "gridResolution": 64,
    "iterations": 0,
    "textureSize": 256,
    "seed": 0,
    "device": "cpu",
    "renderer": "cpu",
    "voxelSizeMm": 2.0,
    "views": 8,
    "workingViews": 8,
    "closeHoles": False,
    "posesRefined": False,
    "poseCorrectionMeanDeg": 0.0,
    "poseCorrectionMaxDeg": 0.0,
    "poseCorrectionMeanM": 0.0,
    "poseCorrectionMaxM": 0.0,
    "seconds": {"total": 1.0},
}


def run_metrics(**overrides: Any) -> RunMetrics:
    """`overrides` in metrics.json's (camelCase) names."""
    return RunMetrics.model_validate({**SAMPLE, **overrides})
