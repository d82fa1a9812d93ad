"""Wall time and memory of one preset on one device, on a clean and a phone-style capture.

The timing half of `scripts/gpu_check.sh`. For each case it writes a synthetic capture of a
known object, runs the whole reconstruction (capture folder in, mesh files out) once to
warm up (CUDA context, nvdiffrast plugin load, allocator), then times several runs,
each between two `torch.cuda.synchronize()` calls on CUDA, and reports the median, the GPU
peak memory (`torch.cuda.max_memory_allocated`, reset before each run), the process's peak
resident memory and the last run's accuracy against the true object (a wrong answer
produced fast is not a result).

    python benchmarks/runner_timing.py --output-dir OUT --device cuda --size 512 --runs 5
    python benchmarks/runner_timing.py --output-dir OUT --device cpu --object block \\
        --size 64 --views 4 --grid-resolution 32 --iterations 3 --texture-size 64 \\
        --texture-iterations 2 --runs 2     # the plumbing only, in seconds

Within `--budget-s` (capture writing included) it does fewer timed runs rather than
overrun: at least one per case, and `runs_done` in timing.json says how many it did. It
writes timing.json and, per case, the last run's metrics.json under `--output-dir`.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CASES = ("clean", "phone")
MIB = 1024 * 1024
# On CUDA at 512x512, the `standard` preset's target (set for an H100; the runner issue).
CUDA_TARGET_SECONDS = 10.0
CUDA_TARGET_SIZE = 512

# --- phone-style capture: the one place that says what "phone-style" means here ----------
# Depth noise of a few millimetres at the capture's distance (about 1.7 m), always. The rest
# is how phones store a capture and is applied when the synthetic writer offers it, as
# fields of its `CaptureStyle` passed as `write_capture(style=...)`: JPEG colour without
# alpha, depth at a quarter of the colour resolution, confidence maps with Polycam's levels.
# Whatever the writer lacks is listed in timing.json as not applied, so each run says
# exactly what it timed.
PHONE_DEPTH_NOISE: dict[str, float] = {"sigma_at_1m": 0.001, "dropout": 0.02}
PHONE_STYLE: dict[str, object] = {
    "colour_format": "jpeg",
    "alpha": False,
    "depth_scale": 4,
    "confidence": True,
    "confidence_levels": (0, 127, 255),
}


@dataclass(frozen=True)
class CaptureOptions:
    kwargs: dict[str, Any]  # for write_capture
    applied: dict[str, object]  # what they set, as written to timing.json
    not_applied: list[str]  # PHONE_STYLE fields this synthetic writer does not have


def phone_capture_options() -> CaptureOptions:
    """The write_capture arguments of a phone-style capture, as far as the writer allows."""
    from recon_runner.synthetic import writer
    from recon_runner.synthetic.views import DepthNoise

    noise = DepthNoise(
        sigma_at_1m=PHONE_DEPTH_NOISE["sigma_at_1m"], dropout=PHONE_DEPTH_NOISE["dropout"]
    )
    kwargs: dict[str, Any] = {"noise": noise}
    applied: dict[str, object] = {"depth_noise": dict(PHONE_DEPTH_NOISE)}
    style_type: Any = getattr(writer, "CaptureStyle", None)
    takes_style = "style" in inspect.signature(writer.write_capture).parameters
    if style_type is None or not takes_style:
        return CaptureOptions(kwargs, applied, sorted(PHONE_STYLE))
    fields = {f.name for f in dataclasses.fields(style_type)}
    chosen = {k: v for k, v in PHONE_STYLE.items() if k in fields}
    kwargs["style"] = style_type(**chosen)
    applied.update(chosen)
    return CaptureOptions(kwargs, applied, sorted(set(PHONE_STYLE) - fields))


# --- end of the phone-style definition ---------------------------------------------------


def capture_options(case: str) -> CaptureOptions:
    if case == "clean":
        return CaptureOptions({}, {}, [])
    if case == "phone":
        return phone_capture_options()
    raise ValueError(f"unknown case {case!r}; choose from {', '.join(CASES)}")


def another_run_fits(
    done: int, requested: int, last_seconds: float, now: float, until: float
) -> bool:
    """Whether to start one more timed run: the first always (a case needs one figure), the
    others while one more run as long as the last one still ends before `until`."""
    if done >= requested:
        return False
    return done == 0 or now + last_seconds <= until


def median_of(values: list[float]) -> float:
    return float(statistics.median(values))


def _synchronise(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_run(capture_dir: Path, config: Any, device: Any) -> tuple[float, Any, int | None]:
    """(seconds, result, GPU peak bytes or None) of one reconstruction, synchronised."""
    import torch
    from recon_runner.control import ignore_progress
    from recon_runner.pipeline import reconstruct

    with tempfile.TemporaryDirectory(prefix="recon-timing-out-") as out:
        _synchronise(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        result = reconstruct(capture_dir, Path(out), config, ignore_progress)
        _synchronise(device)
        seconds = time.perf_counter() - start
    peak = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    return seconds, result, peak


def _accuracy(object_name: str, mesh: Any, samples: int) -> dict[str, Any]:
    from recon_runner.evaluation.accuracy import evaluate_textured
    from recon_runner.synthetic.objects import make_object

    obj = make_object(object_name)
    # The closest-point search can fail on an unlucky sample; a fresh sample is drawn then.
    for seed in range(3):
        try:
            found = evaluate_textured(obj.mesh, obj.true_colour, mesh, samples, seed)
            break
        except ValueError:
            continue
    else:
        found = evaluate_textured(obj.mesh, obj.true_colour, mesh, samples, 3)
    return {k: v for k, v in found.as_dict().items() if v is not None}


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_case(case: str, args: argparse.Namespace, work: Path, until: float) -> dict[str, Any]:
    """One case: capture, warm-up, timed runs, accuracy; the record for timing.json."""
    from recon_runner.config import config_for, resolve_device
    from recon_runner.synthetic.objects import make_object
    from recon_runner.synthetic.writer import write_capture

    options = capture_options(case)
    device = resolve_device(args.device)
    config = config_for(
        args.preset,
        grid_resolution=args.grid_resolution,
        iterations=args.iterations,
        texture_size=args.texture_size,
        seed=args.seed,
        device=args.device,
    )
    if args.texture_iterations is not None:  # tuning, not a user-facing field: plumbing runs
        texture = dataclasses.replace(config.texture, iterations=args.texture_iterations)
        config = dataclasses.replace(config, texture=texture)
    record: dict[str, Any] = {
        "case": case,
        "object": args.object,
        "views": args.views,
        "size": [args.size, args.size],
        "capture_options": options.applied,
        "not_applied": options.not_applied,
        "preset": config.preset.value,
        "config": {
            "grid_resolution": config.fusion.grid_resolution,
            "iterations": config.refine.iterations,
            "texture_size": config.texture.size,
            "texture_iterations": config.texture.iterations,
            "refine_resolution": config.refine.resolution,
            "texture_resolution": config.texture.resolution,
        },
    }
    capture_dir = work / case
    start = time.perf_counter()
    write_capture(
        make_object(args.object),
        capture_dir,
        views=args.views,
        width=args.size,
        height=args.size,
        **options.kwargs,
    )
    record["capture_seconds"] = round(time.perf_counter() - start, 3)

    warmups = []
    last_seconds = 0.0
    for _ in range(args.warmup):
        last_seconds, _result, _peak = _timed_run(capture_dir, config, device)
        warmups.append(round(last_seconds, 3))
    record["warmup_seconds"] = warmups

    seconds: list[float] = []
    peaks: list[int] = []
    result = None
    while another_run_fits(len(seconds), args.runs, last_seconds, time.perf_counter(), until):
        last_seconds, result, peak = _timed_run(capture_dir, config, device)
        seconds.append(last_seconds)
        if peak is not None:
            peaks.append(peak)
    assert result is not None  # another_run_fits allows the first run always
    metrics = result.metrics
    record.update(
        runs_requested=args.runs,
        runs_done=len(seconds),
        cut_short_by_budget=len(seconds) < args.runs,
        seconds=[round(s, 3) for s in seconds],
        median_seconds=round(median_of(seconds), 3),
        min_seconds=round(min(seconds), 3),
        # The pipeline's own per-stage laps of the last run (not synchronised per stage).
        stage_seconds=metrics.seconds,
        renderer=metrics.renderer,
        device=metrics.device,
        faces=metrics.faces,
        view_psnr=metrics.psnr,
        view_mask_iou=metrics.mask_iou,
        gpu_peak_allocated_mib=round(max(peaks) / MIB, 1) if peaks else None,
        peak_rss_mib=_peak_rss_mib(),
    )
    from recon_runner.stages.export import metrics_bytes

    case_dir = Path(args.output_dir) / case
    case_dir.mkdir(parents=True, exist_ok=True)
    (case_dir / "metrics.json").write_bytes(metrics_bytes(metrics))
    record["accuracy"] = _accuracy(args.object, result.mesh, args.samples)
    return record


def describe_device(requested: str) -> dict[str, Any]:
    """What the figures were measured on."""
    import numpy
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "numpy": numpy.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "requested_device": requested,
        "cuda_available": torch.cuda.is_available(),
        "renderer_env": os.environ.get("RECON_RENDERER") or None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=props.name,
            gpu_memory_mib=round(props.total_memory / MIB),
            gpu_capability=f"{props.major}.{props.minor}",
            cudnn=torch.backends.cudnn.version(),
        )
    return info


def targets(records: list[dict[str, Any]], device: str, size: int) -> list[dict[str, Any]]:
    """The speed target each record is held to: `standard` at 512x512 on CUDA, 10 s."""
    if device != "cuda" or size != CUDA_TARGET_SIZE:
        return []
    return [
        {
            "case": r["case"],
            "target": f"median at most {CUDA_TARGET_SECONDS:g} s",
            "met": r["median_seconds"] <= CUDA_TARGET_SECONDS,
        }
        for r in records
        if "median_seconds" in r and r.get("preset") == "standard"
    ]


def _row(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{r['case']:6s} FAILED: {r['error']}"
    gpu = r["gpu_peak_allocated_mib"]
    acc = r["accuracy"]
    return (
        f"{r['case']:6s} {r['renderer']:10s} {r['median_seconds']:8.3f} {r['min_seconds']:8.3f} "
        f"{r['runs_done']:2d}/{r['runs_requested']:<2d} "
        f"{(f'{gpu:.0f}' if gpu is not None else '-'):>9s} {r['peak_rss_mib']:8.0f} "
        f"{acc['chamfer_l1_ratio'] * 100:8.4f}% {acc['fscore']:6.4f} "
        f"{acc.get('colour_psnr', float('nan')):6.2f}"
    )


HEADER = (
    f"{'case':6s} {'renderer':10s} {'median s':>8s} {'min s':>8s} {'runs':5s} "
    f"{'GPU MiB':>9s} {'RSS MiB':>8s} {'chamfer':>9s} {'F@1%':>6s} {'PSNR':>6s}"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--cases", default=",".join(CASES), help="comma list of clean,phone")
    parser.add_argument("--object", default="torus")
    parser.add_argument("--size", type=int, default=512, help="capture width and height")
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--grid-resolution", type=int)
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--texture-size", type=int)
    parser.add_argument("--texture-iterations", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=300.0)
    parser.add_argument("--samples", type=int, default=20_000, help="accuracy samples")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    for case in cases:
        capture_options(case)  # an unknown case fails before any work

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    deadline = time.perf_counter() + args.budget_s
    args.output_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "environment": describe_device(args.device),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    records: list[dict[str, Any]] = []
    path = args.output_dir / "timing.json"
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory(prefix="recon-timing-") as tmp:
        for index, case in enumerate(cases):
            # Each case may use an equal share of what is left, so a slow first case cannot
            # starve the second.
            share = (deadline - time.perf_counter()) / (len(cases) - index)
            try:
                record = run_case(case, args, Path(tmp), time.perf_counter() + share)
            except Exception as e:  # one failed case must not hide the other's figures
                traceback.print_exc()
                record = {"case": case, "error": f"{type(e).__name__}: {e}"}
            records.append(record)
            print(_row(record), flush=True)
            # Written after every case, so a run stopped from outside keeps what it measured.
            report["cases"] = records
            report["targets"] = targets(records, args.device, args.size)
            report["seconds_total"] = round(args.budget_s - (deadline - time.perf_counter()), 3)
            report["complete"] = index == len(cases) - 1
            path.write_text(json.dumps(report, indent=2) + "\n")
    for t in report["targets"]:
        print(f"target {t['case']}: {t['target']}: {'met' if t['met'] else 'NOT met'}")
    print(f"wrote {path}")
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
