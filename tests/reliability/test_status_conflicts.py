"""Conflicting status writes on one running ReconJob: the runner's progress patches in a
tight loop, the operator rewriting conditions and status.cancel on cancel request/withdraw
cycles, and a third client doing read-modify-write PUTs of the status subresource with a
resourceVersion (which the API server answers with 409 Conflict whenever anything else
wrote in between). Nobody's fields are lost, and progress never goes down."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from recon_api.constants import Stage
from recon_runner.control import overall_percent
from recon_runner.pod.progress import ProgressReport, progress_patch
from recon_runner.pod.status_reporter import kubernetes_api, status_patcher

from tests.support import captures
from tests.support.operator_process import (
    BUCKET,
    OperatorProcess,
    apply,
    get,
    reconjob_manifest,
    status,
)
from tests.support.stack_handle import StackHandle, wait_for
from tests.support.standin_runner import silent_file

pytestmark = pytest.mark.stack

GROUP, VERSION, PLURAL = "recon.dev", "v1alpha1", "reconjobs"
CANCEL = "recon.dev/cancel"
NAME = "contended"
PREFIX = "conflicts/hang/"
RUNNER_PATCHES = 150
RUNNER_PAUSE = 0.02  # between the runner's patches: ~5 s of patching, many operator cycles
RUNNER_STAGES = (Stage.FUSE, Stage.REFINE, Stage.TEXTURE)
MIN_CYCLES = 3
CANCEL_TTL = timedelta(seconds=600)  # the operator's default RECON_CANCEL_TTL_SECONDS


@dataclass
class Contended:
    ns: str
    operator: OperatorProcess
    log_dir: Path
    workdir: Path


@pytest.fixture(scope="module")
def contended(operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Contended:
    workdir = tmp_path_factory.mktemp("conflicts")
    return Contended(operator.namespace, operator, operator.log_dir, workdir)


def runner_patcher(
    stack: StackHandle, ns: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[dict[str, Any]], None]:
    """The runner's own patcher, on a token of the per-job ServiceAccount the operator made
    (its Role: get the ReconJob, patch its status), loaded the way the runner loads it."""
    path = stack.service_account_kubeconfig(
        f"{NAME}-recon", ns, workdir / "runner.kubeconfig", duration="1h"
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    return status_patcher(kubernetes_api(), ns, NAME)


def runner_reports() -> list[ProgressReport]:
    """150 reports through fuse, refine and texture, the percent rising (never falling)."""
    per_stage = RUNNER_PATCHES // len(RUNNER_STAGES)
    reports = []
    for stage in RUNNER_STAGES:
        for step in range(per_stage):
            fraction = (step + 1) / per_stage
            percent = min(100, math.floor(overall_percent(stage, fraction)))
            eta = RUNNER_PATCHES - len(reports)
            reports.append(ProgressReport(percent, stage, f"{stage.value} {step + 1}", eta))
    return reports


@dataclass
class Tally:
    runner_sent: list[dict[str, Any]] = field(default_factory=list)
    runner_errors: list[str] = field(default_factory=list)
    puts: int = 0
    conflicts: int = 0
    last_put: float = 0.0
    put_errors: list[str] = field(default_factory=list)
    cycles: int = 0
    last_request: datetime | None = None
    versions: list[dict[str, Any]] = field(default_factory=list)


def run_runner(patch: Callable[[dict[str, Any]], None], tally: Tally) -> None:
    for report in runner_reports():
        body = progress_patch(report, datetime.now(UTC))
        try:
            patch(body)
        except Exception as e:  # recorded and asserted on: none is expected
            tally.runner_errors.append(f"{getattr(e, 'status', '')} {type(e).__name__}")
            continue
        tally.runner_sent.append(body["status"]["progress"])
        time.sleep(RUNNER_PAUSE)


def run_updater(
    objects: client.CustomObjectsApi, ns: str, tally: Tally, stop: threading.Event
) -> None:
    """Read-modify-write of the whole status with the resourceVersion it read: status.metrics
    .seconds counts its writes. A 409 means someone wrote in between: read again, retry."""
    while not stop.is_set():
        value = float(tally.puts + 1)
        for _ in range(200):
            body = objects.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, NAME)
            body.setdefault("status", {}).setdefault("metrics", {})["seconds"] = value
            time.sleep(0.005)  # the client's "work" between read and write
            try:
                objects.replace_namespaced_custom_object_status(
                    GROUP, VERSION, ns, PLURAL, NAME, body
                )
            except ApiException as e:
                if e.status == 409:
                    tally.conflicts += 1
                    continue
                tally.put_errors.append(f"{e.status} {e.reason}")
                return
            tally.puts += 1
            tally.last_put = value
            break
        else:
            tally.put_errors.append(f"write {value} still conflicting after 200 tries")
            return


def run_watch(
    objects: client.CustomObjectsApi, ns: str, rv: str, tally: Tally, stop: threading.Event
) -> None:
    """Every version of the ReconJob, in order, from ``rv`` on."""
    while not stop.is_set():
        w = watch.Watch()
        for event in w.stream(
            objects.list_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            PLURAL,
            field_selector=f"metadata.name={NAME}",
            resource_version=rv,
            timeout_seconds=2,
        ):
            obj = event["object"]
            rv = obj["metadata"]["resourceVersion"]
            tally.versions.append(obj)


def annotate(objects: client.CustomObjectsApi, ns: str, value: str | None) -> None:
    body = {"metadata": {"annotations": {CANCEL: value}}}
    objects.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, NAME, body)


def cancel_condition(st: dict[str, Any]) -> dict[str, Any] | None:
    for cond in st.get("conditions") or ():
        if cond["type"] == "CancelRequested":
            return dict(cond)
    return None


def drive_operator(
    objects: client.CustomObjectsApi,
    ns: str,
    tally: Tally,
    runner: threading.Thread,
    writers_done: Callable[[], None],
) -> None:
    """Cancel request, then withdrawal, each waited for in the status, while the runner
    patches; then, once `writers_done` has stopped every other writer, one last request,
    left standing. The operator handles one object's changes in order, so its answer to
    that last request shows it has written everything the earlier ones caused: the state
    read after it is final, where a sleep would only show nothing came yet."""

    def current() -> dict[str, Any]:
        body = objects.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, NAME)
        return dict(body.get("status") or {})

    def requested() -> bool:
        st = current()
        cond = cancel_condition(st) or {}
        return bool((st.get("cancel") or {}).get("requestedAt")) and cond.get("status") == "True"

    def withdrawn() -> bool:
        st = current()
        cond = cancel_condition(st) or {}
        return "cancel" not in st and cond.get("reason") == "Withdrawn"

    while tally.cycles < MIN_CYCLES or runner.is_alive():
        annotate(objects, ns, "requested")
        wait_for(requested, 30, 0.05, "CancelRequested=True")
        annotate(objects, ns, None)
        wait_for(withdrawn, 30, 0.05, "the request withdrawn")
        tally.cycles += 1
    writers_done()
    tally.last_request = datetime.now(UTC).replace(microsecond=0)
    annotate(objects, ns, "requested")
    wait_for(requested, 30, 0.05, "the last CancelRequested=True")


def parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def operator_conflicts(log_dir: Path) -> list[str]:
    lines = []
    for path in sorted(log_dir.glob("operator-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if re.search(r"\b409\b|Conflict", line):
                lines.append(line)
    return lines


def test_runner_operator_and_an_updater_write_the_status_at_once(
    stack: StackHandle, contended: Contended, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = contended.ns
    captures.upload(stack.minio_client(), BUCKET, PREFIX, captures.files(6))
    job = reconjob_manifest(NAME, PREFIX)
    job["spec"]["resources"]["gpus"] = 0
    apply(stack, ns, job)
    # The stand-in reports once ("downloading") and falls silent 2.5 s later for good.
    wait_for(
        lambda: (status(stack, ns, NAME).get("progress") or {}).get("message") == "downloading",
        60,
        what="the stand-in's first report",
    )
    uid = get(stack, ns, NAME)["metadata"]["uid"]
    wait_for(silent_file(uid).exists, 30, what="the stand-in's reporter closed")
    admin = client.CustomObjectsApi(
        config.new_client_from_config(config_file=str(stack.kubeconfig))
    )
    before = admin.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, NAME)
    assert before["status"]["phase"] == "Running", before["status"]
    patch = runner_patcher(stack, ns, contended.workdir, monkeypatch)

    tally = Tally()
    stop_updater, stop_watch = threading.Event(), threading.Event()
    watcher = threading.Thread(
        target=run_watch, args=(admin, ns, before["metadata"]["resourceVersion"], tally, stop_watch)
    )
    runner = threading.Thread(target=run_runner, args=(patch, tally))
    updater = threading.Thread(target=run_updater, args=(admin, ns, tally, stop_updater))
    started = time.monotonic()
    watcher.start()
    runner.start()
    updater.start()

    def writers_done() -> None:
        runner.join(60)
        stop_updater.set()
        updater.join(60)

    try:
        drive_operator(admin, ns, tally, runner, writers_done)
    finally:
        writers_done()
    seconds = time.monotonic() - started
    stop_watch.set()
    watcher.join(10)

    after = admin.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, NAME)
    st = after["status"]
    print(
        f"\n{len(tally.runner_sent)} runner patches, {tally.cycles} request/withdraw cycles + 1"
        f" request, {tally.puts} PUTs with {tally.conflicts} 409s, {len(tally.versions)}"
        f" versions watched, {seconds:.1f} s"
    )

    # every writer got through
    assert tally.runner_errors == [], tally.runner_errors
    assert len(tally.runner_sent) == RUNNER_PATCHES
    assert tally.put_errors == [], tally.put_errors
    assert tally.puts > 0 and tally.conflicts > 0, (tally.puts, tally.conflicts)

    # the runner: what it last wrote, nothing of it lost
    last = {k: v for k, v in tally.runner_sent[-1].items() if v is not None}
    assert st["progress"] == last, (st["progress"], last)
    assert (last["percent"], last["stage"]) == (90, "texture"), last

    # the updater: its last write stands
    assert st["metrics"] == {"seconds": tally.last_put}, st.get("metrics")

    # the operator: its last action (a request) stands, and nothing else of its moved
    assert tally.last_request is not None
    cancel = st["cancel"]
    requested_at = parse(cancel["requestedAt"])
    assert tally.last_request <= requested_at <= datetime.now(UTC), cancel
    assert parse(cancel["expiresAt"]) - requested_at == CANCEL_TTL, cancel
    cond = cancel_condition(st)
    assert cond is not None and (cond["status"], cond["reason"]) == ("True", "Requested"), cond
    assert cond["message"].startswith(f"cancel requested; confirm before {cancel['expiresAt']}")
    for key in ("phase", "jobName", "startedAt", "attempts", "nodeName"):
        assert st.get(key) == before["status"].get(key), key

    def others(s: dict[str, Any]) -> list[tuple[str, str, str]]:
        return sorted(
            (c["type"], c["status"], c.get("reason", ""))
            for c in s.get("conditions") or ()
            if c["type"] != "CancelRequested"
        )

    assert others(st) == others(before["status"])

    # every version in between: progress and the updater's count never went back, and the
    # operator's cancel fields always agreed with its condition (no stale whole-status write)
    assert len(tally.versions) > RUNNER_PATCHES
    percents, counts = [], []
    for obj in tally.versions:
        s = obj.get("status") or {}
        percents.append((s.get("progress") or {}).get("percent", 0))
        counts.append((s.get("metrics") or {}).get("seconds", 0.0))
        cond = cancel_condition(s) or {}
        assert ("cancel" in s) == (cond.get("status") == "True"), (s.get("cancel"), cond)
        assert others(s) == others(before["status"]), s.get("conditions")
    assert percents == sorted(percents), "progress went down in some version"
    assert counts == sorted(counts), "the updater's count went down in some version"
    assert percents[-1] == last["percent"] and counts[-1] == tally.last_put

    # merge patches carry no resourceVersion: the operator never saw a conflict
    assert operator_conflicts(contended.log_dir) == []
