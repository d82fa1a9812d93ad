"""The status patch rate limit of DESIGN.md, driven by a fake clock."""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from recon_api.constants import STAGE_SPANS, Stage
from recon_api.run_metrics import RunMetrics
from recon_runner.pod.progress import (
    ProgressLimiter,
    ProgressReport,
    final_patch,
    progress_patch,
    rfc3339,
)
from recon_runner.stages.export import metrics_bytes

from tests.support.run_metrics import run_metrics


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def deliver(limiter: ProgressLimiter, report: ProgressReport | None) -> ProgressReport | None:
    if report is not None:
        limiter.delivered(report)
    return report


def test_updates_within_a_stage_are_sent_at_most_every_two_seconds() -> None:
    clock = FakeClock()
    limiter = ProgressLimiter(clock)
    sent: list[tuple[float, ProgressReport]] = []
    for i in range(400):  # 10 s of refine at 40 updates per second
        clock.now = 1000.0 + i * 0.025
        report = deliver(limiter, limiter.offer(Stage.REFINE, i / 400, f"iteration {i}/400"))
        if report is not None:
            sent.append((clock.now, report))
    times = [t for t, _ in sent]
    assert len(sent) == 5  # t = 0 (boundary), 2, 4, 6, 8
    assert all(b - a >= 2.0 - 1e-9 for a, b in itertools.pairwise(times))
    assert sent[-1][1].message == "iteration 320/400"
    assert sent[-1][1].percent == math.floor(25 + 50 * 320 / 400)


def test_every_stage_boundary_is_sent_at_once() -> None:
    clock = FakeClock()
    limiter = ProgressLimiter(clock)
    stages = list(Stage)
    sent = []
    for stage in stages:  # all within the same instant
        sent.append(deliver(limiter, limiter.offer(stage, 0.0, f"{stage} started")))
        assert deliver(limiter, limiter.offer(stage, 0.5, "halfway")) is None
    assert [r.stage for r in sent if r is not None] == stages
    assert [r.percent for r in sent if r is not None] == [STAGE_SPANS[s][0] for s in stages]


def test_a_trailing_update_is_flushed_by_the_ticker_after_the_interval() -> None:
    clock = FakeClock()
    limiter = ProgressLimiter(clock)
    deliver(limiter, limiter.offer(Stage.FUSE, 0.0, "fusing"))
    clock.now += 0.5
    assert limiter.offer(Stage.FUSE, 0.9, "almost") is None
    clock.now += 1.0
    assert limiter.poll() is None
    clock.now += 0.5
    report = deliver(limiter, limiter.poll())
    assert report is not None and report.message == "almost" and report.percent == 23
    clock.now += 3.0
    assert limiter.poll() is None  # nothing new, heartbeat not due


def test_heartbeat_resends_inside_a_long_silent_stage() -> None:
    clock = FakeClock()
    limiter = ProgressLimiter(clock, heartbeat=15.0)
    deliver(limiter, limiter.offer(Stage.FUSE, 0.5, "marching cubes"))
    beats = []
    for _ in range(120):  # a minute of 0.5 s ticks and no progress at all
        clock.now += 0.5
        report = deliver(limiter, limiter.poll())
        if report is not None:
            beats.append((clock.now, report))
    assert [t - 1000.0 for t, _ in beats] == [15.0, 30.0, 45.0, 60.0]
    assert all(r.percent == 15 and r.message == "marching cubes" for _, r in beats)


def test_failed_patch_is_retried_on_the_next_tick_after_the_interval() -> None:
    clock = FakeClock()
    limiter = ProgressLimiter(clock)
    first = limiter.offer(Stage.DOWNLOAD, 0.0, "downloading")
    assert first is not None  # not delivered: the API server was down
    clock.now += 1.0
    assert limiter.poll() is None
    clock.now += 1.0
    retry = limiter.poll()
    assert retry is not None and retry.message == "downloading"
    limiter.delivered(retry)
    clock.now += 2.0
    assert limiter.poll() is None


def test_percent_never_decreases_and_eta_follows_elapsed_time() -> None:
    clock = FakeClock()
    limiter = ProgressLimiter(clock)
    deliver(limiter, limiter.offer(Stage.REFINE, 0.5, "a"))  # 50 %
    clock.now += 10.0
    report = deliver(limiter, limiter.offer(Stage.REFINE, 0.1, "went back"))
    assert report is not None and report.percent == 50
    assert report.eta_seconds == 10  # 10 s for 50 %, 50 % to go
    report = deliver(limiter, limiter.offer(Stage.FUSE, 0.0, "earlier stage"))
    assert report is not None and report.percent == 50


@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(Stage)),
            st.floats(-1.0, 2.0, allow_nan=False),
            st.floats(0.0, 5.0, allow_nan=False),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_sent_percent_is_monotonic_and_spacing_holds_except_at_boundaries(
    steps: list[tuple[Stage, float, float]],
) -> None:
    clock = FakeClock()
    limiter = ProgressLimiter(clock)
    last_percent = 0
    last_time: float | None = None
    previous_stage: Stage | None = None
    for stage, fraction, dt in steps:
        clock.now += dt
        report = deliver(limiter, limiter.offer(stage, fraction, "m"))
        if report is not None:
            assert 0 <= report.percent <= 100
            assert report.percent >= last_percent
            if stage == previous_stage and last_time is not None:
                assert clock.now - last_time >= 2.0
            last_percent, last_time = report.percent, clock.now
        previous_stage = stage
    end = limiter.finish(Stage.UPLOAD, "done")
    assert (end.percent, end.eta_seconds) == (100, 0)


def test_patch_bodies_use_the_status_field_names() -> None:
    now = datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=timezone(timedelta(hours=2)))
    report = ProgressReport(42, Stage.REFINE, "iteration 168/400", 40)
    assert progress_patch(report, now) == {
        "status": {
            "progress": {
                "percent": 42,
                "stage": "refine",
                "message": "iteration 168/400",
                "updatedAt": "2025-03-04T03:06:07Z",
                "etaSeconds": 40,
            }
        }
    }
    # Every field of metrics.json; the status carries the headline, in the same names.
    metrics = run_metrics(
        vertices=1200,
        faces=2400,
        seconds={"download": 0.5, "fuse": 1.0, "total": 3.25},
        psnr=30.5,
        maskIoU=0.98,
        depthErrorMm=1.5,
        observedFraction=0.9,
        filledFraction=0.1,
    )
    outputs = {"mesh": "s3://b/out/mesh.glb", "preview": "s3://b/out/preview.png"}
    patch = final_patch(ProgressReport(100, Stage.UPLOAD, "done", 0), now, outputs, metrics)
    assert patch["status"]["outputs"] == outputs
    assert patch["status"]["metrics"] == {
        "vertices": 1200,
        "faces": 2400,
        "seconds": 3.25,
        "psnr": 30.5,
        "maskIoU": 0.98,
        "depthErrorMm": 1.5,
        "observedFraction": 0.9,
        "filledFraction": 0.1,
    }
    assert patch["status"]["progress"]["percent"] == 100


def test_the_status_leaves_out_what_json_cannot_carry_and_totals_the_stages() -> None:
    headline = run_metrics(psnr=math.inf, seconds={"a": 1.0, "b": 2.0}).headline().to_api()
    assert "psnr" not in headline
    assert headline["seconds"] == 3.0


def test_metrics_json_holds_every_field_in_the_status_names() -> None:
    """metrics.json and status.metrics are one model: each headline figure appears in the
    file under the same name, with the same value (seconds: the file's total)."""
    metrics = run_metrics(psnr=31.5, seconds={"fuse": 1.0, "total": 2.5})
    document = json.loads(metrics_bytes(metrics))
    headline = metrics.headline().to_api()
    for name, value in headline.items():
        expected = document["seconds"]["total"] if name == "seconds" else document[name]
        assert value == expected, name
    assert RunMetrics.model_validate(document) == metrics


def test_rfc3339_is_utc_with_z() -> None:
    assert rfc3339(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05Z"
