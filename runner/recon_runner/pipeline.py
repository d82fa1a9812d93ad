"""The reconstruction: capture folder in, mesh files, preview and metrics out.

One function both callers share: the pod (which downloads first and uploads after) and
`recon run` (which works on local folders). It reports each stage's progress through the
sink it is given and stops at safe points when the token says so; nothing is written to
`out_dir` before the export stage, so a stopped run leaves no partial outputs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from recon_api.constants import Stage
from recon_api.run_metrics import RunMetrics

from recon_runner.config import ReconConfig, resolve_device, seed_everything
from recon_runner.control import ProgressSink, StopToken
from recon_runner.evaluation.view_metrics import compare_views
from recon_runner.mesh import TexturedMesh
from recon_runner.render import get_renderer
from recon_runner.stages.capture import Capture, load_capture
from recon_runner.stages.export import write_outputs
from recon_runner.stages.fusion import FusionResult, fuse
from recon_runner.stages.observed import observed_surface
from recon_runner.stages.pose_refine import (
    align_views,
    anchor,
    apply_motions,
    corrections,
    pose_metrics,
    poses,
    scene_depth,
    transform_mesh,
    with_poses,
)
from recon_runner.stages.refine import refine
from recon_runner.stages.targets import Targets, depth_longest, prepare_targets, working_size
from recon_runner.stages.texture import texture_mesh
from recon_runner.stages.view_selection import working_set

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconResult:
    mesh: TexturedMesh
    files: dict[str, Path]
    metrics: RunMetrics


def reconstruct(
    capture_dir: Path,
    out_dir: Path,
    config: ReconConfig,
    progress: ProgressSink,
    stop: StopToken | None = None,
    expected_views: int | None = None,
) -> ReconResult:
    stop = stop or StopToken()
    seed_everything(config.seed)
    device = resolve_device(config.device)
    renderer = get_renderer("auto", device)
    seconds: dict[str, float] = {}
    started = clock = time.perf_counter()

    def lap(stage: Stage) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage.value] = round(now - clock, 3)
        clock = now

    progress(Stage.FUSE, 0.0, "loading the capture")
    capture = load_capture(capture_dir, expected_views, config.bounds)
    given = poses(capture)
    depth = scene_depth(capture)
    passes = config.poses.rounds + 1

    def fusing(round_: int) -> Callable[[float, str], None]:
        return lambda f, m: progress(Stage.FUSE, (round_ + f) / passes, m)

    def fusion(round_: int, carve: bool) -> FusionResult:
        return fuse(
            capture,
            config.fusion.grid_resolution,
            config.fusion.face_budget,
            device,
            fusing(round_),
            stop,
            carve,
        )

    # Once the views are found to disagree, the surfaces they align to are fused from depth
    # alone (fusion.fuse, `carve`) and only the last fusion carves with the masks.
    fused = fusion(0, True)
    poses_corrected = False
    for round_ in range(config.poses.rounds):
        motions = align_views(capture, fused.mesh, fused.voxel_size, config.seed)
        last = round_ == config.poses.rounds - 1
        if all(np.array_equal(m, np.eye(4)) for m in motions):
            break  # the views agree: nothing to correct, no second fusion to pay for
        corrected = apply_motions(poses(capture), motions)
        frame = anchor(corrected, given, depth)
        capture = with_poses(capture, [frame @ c for c in corrected])
        poses_corrected = True
        progress(Stage.FUSE, (round_ + 1) / passes, "fusing again with corrected poses")
        fused = fusion(round_ + 1, last)
    mesh = fused.mesh
    log.info("fused: %d faces, voxel %.2f mm", len(mesh.faces), fused.voxel_size * 1000)
    lap(Stage.FUSE)

    bounds = _scene_bounds(capture, mesh.vertices)
    working = working_set(mesh, capture, fused.voxel_size, config.views, renderer, device)
    if len(working) < len(capture.views):
        log.info("working set: %d of %d views", len(working), len(capture.views))
    targets: dict[tuple[tuple[int, int, int], ...], Targets] = {}

    def targets_at(longest: int) -> Targets:
        """The working set's views at `longest` pixels, prepared once per working size: two
        requests that come to the same size for every view (one beyond the capture's own
        size is the capture's size) share one preparation."""
        views = capture.subset(working)
        size = tuple(working_size(view, longest) for view in views.views)
        if size not in targets:
            targets[size] = prepare_targets(views, longest, bounds, device)
        return targets[size]

    progress(Stage.REFINE, 0.0, "refining the surface")
    joint_poses = poses_corrected and config.poses.jointly
    if config.refine.iterations > 0:
        refined = refine(
            mesh,
            targets_at(min(config.refine.resolution, depth_longest(capture))),
            renderer,
            config.refine.iterations,
            config.refine.learning_rate,
            fused.voxel_size,
            config.refine.weights,
            seed=config.seed,
            views_per_step=config.refine.views_per_step,
            on_fraction=lambda f, m: progress(Stage.REFINE, f, m),
            stop=stop,
            poses=config.poses.rates if joint_poses else None,
        )
        mesh = refined.mesh
        if joint_poses:
            # The working set's views move by refinement's corrections, the others keep
            # their aligned pose; all follow the anchoring frame, so they stay together.
            corrected = poses(capture)
            for index, correction in zip(working, refined.corrections, strict=True):
                corrected[index] = corrected[index] @ correction
            frame = anchor(corrected, given, depth)
            capture = with_poses(capture, [frame @ c for c in corrected])
            mesh = transform_mesh(mesh, frame)
            bounds = _scene_bounds(capture, mesh.vertices)
            targets.clear()  # the views moved: every working resolution is prepared again
    surface = observed_surface(
        mesh,
        targets_at(config.texture.resolution),
        renderer,
        fused.voxel_size,
        config.close_holes,
        # Depth coarser than the texture's views is looked at where it was measured.
        readings=targets_at(min(config.texture.resolution, depth_longest(capture))),
    )
    mesh = surface.mesh
    log.info("observed %.1f%% of the surface", 100 * surface.observed_fraction)
    progress(Stage.REFINE, 1.0, "surface refined")
    lap(Stage.REFINE)

    textured = texture_mesh(
        mesh,
        targets_at(config.texture.resolution),
        renderer,
        config.texture.size,
        config.texture.iterations,
        config.texture.learning_rate,
        fused.voxel_size,
        chart_iterations=config.texture.chart_iterations,
        on_fraction=lambda f, m: progress(Stage.TEXTURE, f, m),
        stop=stop,
        filled=surface.filled,
    )
    lap(Stage.TEXTURE)

    stop.check()
    progress(Stage.EXPORT, 0.0, "comparing with the input views")
    full = max(max(v.camera.width, v.camera.height) for v in capture.views)
    comparison = compare_views(
        textured,
        lambda indices: prepare_targets(capture.subset(indices), full, bounds, device),
        len(capture.views),
        renderer,
        stop=stop,
    )
    measured: dict[str, object] = {
        "vertices": len(textured.vertices),
        "faces": len(textured.faces),
        "psnr": round(comparison.psnr, 3),
        "maskIoU": round(comparison.mask_iou, 5),
        "depthErrorMm": round(comparison.depth_error_mm, 4),
        "preset": config.preset.value,
        "gridResolution": config.fusion.grid_resolution,
        "iterations": config.refine.iterations,
        "textureSize": config.texture.size,
        "seed": config.seed,
        "device": device.type,
        "renderer": renderer.name,
        "voxelSizeMm": round(fused.voxel_size * 1000, 4),
        "views": len(capture.views),
        "workingViews": len(working),
        "closeHoles": config.close_holes,
        **surface.metrics(),
        **pose_metrics(corrections(capture, given), poses_corrected),
    }
    stop.check()
    lap(Stage.EXPORT)
    seconds["total"] = round(time.perf_counter() - started, 3)
    metrics = RunMetrics.model_validate({**measured, "seconds": seconds})
    files = write_outputs(
        out_dir, textured, config.formats, comparison.inputs, comparison.renders, metrics
    )
    progress(Stage.EXPORT, 1.0, "outputs written")
    return ReconResult(textured, files, metrics)


def _scene_bounds(
    capture: Capture, vertices: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """A box holding both the fused mesh and the observed points, for near/far planes."""
    points = np.concatenate([capture.points(), vertices.astype(np.float32)])
    return points.min(axis=0), points.max(axis=0)
