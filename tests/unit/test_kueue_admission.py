"""Kueue admission decisions: who goes to Kueue, and the ReconJob's status from Kueue's
Job and Workload (Queued while waiting, Running once admitted, Queued again on eviction
without a retry counted)."""

from __future__ import annotations

from typing import Any

import pytest
from recon_api.constants import KUEUE_QUEUE_LABEL, Phase
from recon_api.models import ReconJob
from recon_operator import jobspec, kueue
from recon_operator.queue import Entry, plan, recorded_positions
from recon_operator.registry import Registry
from recon_operator.settings import Settings, SettingsError

from tests.support.reconjobs import T0, apply_status, body, reconjob

LABELS = {"kueue.x-k8s.io/queue-name": "team-a", "kueue.x-k8s.io/priority-class": "high"}


def labelled(**kw: Any):
    data = body(status=kw.pop("status", None))
    data["metadata"]["labels"] = kw.pop("labels", LABELS)
    return ReconJob.model_validate(data)


def queued(**kw: Any):
    job = labelled(**kw)
    return apply_status(job, {"phase": "Queued"})


def handed(job=None):
    job = job or queued()
    return apply_status(job, kueue.hand_over(job, "chair-001-recon", "team-a", T0).patch)


def runner_job(suspend: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": "chair-001-recon", "labels": {KUEUE_QUEUE_LABEL: "team-a"}},
        "spec": {"suspend": suspend},
        "status": {},
    }


def workload(*conditions: dict[str, Any], cluster_queue: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": list(conditions)}
    if cluster_queue:
        status["admission"] = {"clusterQueue": cluster_queue}
    return {
        "metadata": {
            "name": "job-chair-001-recon-1a2b3",
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": "chair-001-recon"}
            ],
        },
        "spec": {"queueName": "team-a"},
        "status": status,
    }


PENDING = {
    "type": "QuotaReserved",
    "status": "False",
    "reason": "Pending",
    "message": "couldn't assign flavors to pod set main: insufficient unused quota for "
    "nvidia.com/gpu in flavor default-flavor, 1 more needed",
}
PREEMPTED = {
    "type": "Evicted",
    "status": "True",
    "reason": "Preempted",
    "message": "Preempted to accommodate a workload (UID: x) due to prioritization",
}


def test_the_label_or_the_default_queue_opts_in() -> None:
    assert kueue.queue_name(labelled(), "") == "team-a"
    assert kueue.queue_name(labelled(labels={}), "") is None
    assert kueue.queue_name(labelled(labels={}), "shared") == "shared"
    assert kueue.queue_name(labelled(), "shared") == "team-a", "the job's own label wins"


def test_the_child_job_is_created_suspended_with_kueues_labels() -> None:
    job = labelled()
    built = jobspec.build_job(job, Settings(), kueue.job_labels(job, "team-a"))
    assert built["spec"]["suspend"] is True
    assert built["metadata"]["labels"][KUEUE_QUEUE_LABEL] == "team-a"
    assert built["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "high"
    assert jobspec.UID_LABEL in built["metadata"]["labels"], "the operator still finds it"
    plain = jobspec.build_job(job, Settings())
    assert "suspend" not in plain["spec"]
    assert KUEUE_QUEUE_LABEL not in plain["metadata"]["labels"]


def entry(name: str, **kw: Any) -> Entry:
    return Entry(
        uid=name,
        namespace="ns",
        name=name,
        priority=0,
        created=kw.pop("created", "2025-01-01T12:00:00Z"),
        phase=kw.pop("phase", Phase.QUEUED),
        **kw,
    )


def test_kueue_jobs_are_handed_over_and_never_take_an_operator_slot() -> None:
    entries = [
        entry("kueue-running", phase=Phase.RUNNING, kueue_queue="q", kueue_handed_over=True),
        entry("kueue-new", kueue_queue="q"),
        entry("kueue-waiting", kueue_queue="q", kueue_handed_over=True),
        entry("plain-1", created="2025-01-01T12:00:01Z"),
        entry("plain-2", created="2025-01-01T12:00:02Z"),
    ]
    result = plan(entries, max_running=1)
    assert [e.name for e in result.admit] == ["plain-1"], "the Kueue job holds no slot"
    assert result.positions == {"plain-2": 1}
    assert [(e.name, q) for e, q in result.hand_over] == [("kueue-new", "q")]
    assert set(recorded_positions(entries)) == {"plain-1", "plain-2"}


def test_the_default_queue_takes_every_job_the_operator_has_not_started() -> None:
    entries = [
        entry("operator-running", phase=Phase.RUNNING),
        entry("plain", created="2025-01-01T12:00:01Z"),
    ]
    result = plan(entries, max_running=4, default_queue="shared")
    assert result.admit == [] and result.positions == {}
    assert [(e.name, q) for e, q in result.hand_over] == [("plain", "shared")]


def test_hand_over_records_the_job_and_waits_for_kueue() -> None:
    job = handed()
    cond = job.status.conditions[[c.type for c in job.status.conditions].index("Admitted")]
    assert job.status.phase == Phase.QUEUED
    assert job.status.job_name == "chair-001-recon"
    assert (cond.status, cond.reason) == ("False", "WaitingForKueue")
    assert kueue.handed_over(job)
    assert not kueue.hand_over(job, "chair-001-recon", "team-a", T0), "once only"


def test_kueues_reason_reaches_the_admitted_message() -> None:
    job = handed()
    step = kueue.from_workload(job, workload(PENDING), T0)
    after = apply_status(job, step.patch)
    cond = next(c for c in after.status.conditions if c.type == "Admitted")
    assert cond.reason == "WaitingForKueue"
    assert "insufficient unused quota for nvidia.com/gpu" in cond.message
    assert [n.reason for n in step.notes] == ["WaitingForKueue"]
    assert not kueue.from_workload(after, workload(PENDING), T0), "same words, no write"


def test_unsuspended_job_is_running_and_suspended_again_is_queued_without_a_retry() -> None:
    job = handed()
    assert not kueue.from_job(job, runner_job(True), None, "", T0), "still suspended"
    admitted = kueue.from_job(job, runner_job(False), workload(cluster_queue="gpus"), "", T0)
    running = apply_status(job, admitted.patch)
    assert running.status.phase == Phase.RUNNING
    cond = next(c for c in running.status.conditions if c.type == "Admitted")
    assert (cond.status, cond.reason) == ("True", "AdmittedByKueue")
    assert "ClusterQueue gpus" in cond.message
    started = running.status.started_at

    running = apply_status(running, {"attempts": 1})
    evicted = kueue.from_job(running, runner_job(True), workload(PREEMPTED), "", T0)
    back = apply_status(running, evicted.patch)
    assert back.status.phase == Phase.QUEUED
    assert back.status.attempts == 1, "no retry counted"
    assert back.status.started_at == started and back.status.job_name == "chair-001-recon"
    cond = next(c for c in back.status.conditions if c.type == "Admitted")
    assert (cond.status, cond.reason) == ("False", "WaitingForKueue")
    assert "Preempted" in cond.message
    assert next(c for c in back.status.conditions if c.type == "Running").reason == "EvictedByKueue"
    assert [n.reason for n in evicted.notes] == ["EvictedByKueue"]
    assert kueue.evicted(running, back)

    again = apply_status(back, kueue.from_job(back, runner_job(False), None, "", T0).patch)
    assert again.status.phase == Phase.RUNNING and again.status.attempts == 1
    assert again.status.started_at == started


def test_a_job_the_operator_admitted_is_not_kueues() -> None:
    job = apply_status(reconjob(), {"phase": "Running", "jobName": "chair-001-recon"})
    assert not kueue.handed_over(job)
    assert not kueue.from_job(job, runner_job(True), None, "", T0)


def test_a_late_workload_event_names_the_cluster_queue_of_a_running_job() -> None:
    job = handed()
    running = apply_status(job, kueue.from_job(job, runner_job(False), None, "", T0).patch)
    cond = next(c for c in running.status.conditions if c.type == "Admitted")
    assert "ClusterQueue" not in cond.message
    later = kueue.from_workload(running, workload(cluster_queue="gpus"), T0)
    after = apply_status(running, later.patch)
    cond = next(c for c in after.status.conditions if c.type == "Admitted")
    assert (cond.status, cond.reason) == ("True", "AdmittedByKueue")
    assert "ClusterQueue gpus" in cond.message and not later.notes
    assert after.status.phase == Phase.RUNNING


def test_a_running_jobs_event_corrects_an_admitted_condition_written_from_an_older_copy() -> None:
    job = handed()
    running = apply_status(job, kueue.from_job(job, runner_job(False), None, "", T0).patch)
    # A write decided while the Workload still waited lands after the admission.
    stale = kueue.from_workload(job, workload(PENDING), T0)
    mixed = apply_status(running, {"conditions": stale.patch["conditions"]})
    assert mixed.status.phase == Phase.RUNNING
    fixed = apply_status(mixed, kueue.from_job(mixed, runner_job(False), None, "", T0).patch)
    cond = next(c for c in fixed.status.conditions if c.type == "Admitted")
    assert (cond.status, cond.reason) == ("True", "AdmittedByKueue")
    again = kueue.from_job(fixed, runner_job(False), None, "", T0)
    assert not again, "nothing to write once settled"


def test_the_owner_job_of_a_workload() -> None:
    assert kueue.owner_job_name(workload()) == "chair-001-recon"
    assert kueue.owner_job_name({"metadata": {"ownerReferences": []}}) is None


def test_the_default_queue_setting_is_checked() -> None:
    settings = Settings.from_env({"RECON_KUEUE_DEFAULT_QUEUE_NAME": "team-a"})
    assert settings.kueue_default_queue == "team-a"
    with pytest.raises(SettingsError, match="RECON_KUEUE_DEFAULT_QUEUE_NAME"):
        Settings.from_env({"RECON_KUEUE_DEFAULT_QUEUE_NAME": "Not A Queue"})


def test_the_registry_finds_a_workloads_reconjob_before_its_job_name_is_recorded() -> None:
    registry = Registry()
    registry.observe(body())
    known = registry.by_job_name("studio", "chair-001-recon")
    assert known is not None and known.job.status.job_name is None
    assert registry.by_job_name("other-namespace", "chair-001-recon") is None


def test_a_held_child_event_older_than_one_followed_is_stale() -> None:
    registry = Registry()
    newer = {"metadata": {"resourceVersion": "20"}}
    older = {"metadata": {"resourceVersion": "10"}}
    assert registry.current_child("uid", "job", newer)
    assert not registry.current_child("uid", "job", older)
    assert registry.current_child("uid", "pod", older), "kinds are apart"
    assert registry.current_child("uid", "job", newer), "the same version again is current"


def test_a_new_runs_pod_is_not_stale_beside_the_evicted_runs_pod() -> None:
    """After a Kueue eviction the old pod's deletion (a newer version) is seen after the
    next run's pod event was held: that held event is still the new pod's latest."""
    registry = Registry()
    new_pod = {"metadata": {"name": "chair-001-recon-b", "resourceVersion": "30"}}
    old_pod_deleted = {"metadata": {"name": "chair-001-recon-a", "resourceVersion": "35"}}
    assert registry.current_child("uid", "pod", new_pod)
    assert registry.current_child("uid", "pod", old_pod_deleted)
    assert registry.current_child("uid", "pod", new_pod), "replayed after the old pod's event"
    older_new_pod = {"metadata": {"name": "chair-001-recon-b", "resourceVersion": "25"}}
    assert not registry.current_child("uid", "pod", older_new_pod)
