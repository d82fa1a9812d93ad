"""The operator's view of every ReconJob, fed by the watch and by its own writes.

It is a cache, never a store: it is rebuilt from the API server after a restart. Keeping
it lets admission, positions and the Job watch decide without a read per decision, and
taking each write's response at once keeps the next decision from acting on a stale
phase (admitting a job twice, say) while the watch catches up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from recon_api.constants import Phase
from recon_api.models import ReconJob

from recon_operator import kueue
from recon_operator.jobspec import child_name
from recon_operator.queue import Entry


@dataclass(frozen=True)
class Known:
    body: Mapping[str, Any]
    job: ReconJob
    entry: Entry


def _resource_version(body: Mapping[str, Any]) -> int | None:
    try:
        return int((body.get("metadata") or {}).get("resourceVersion", ""))
    except ValueError:
        return None


def _entry(job: ReconJob) -> Entry:
    meta = job.metadata
    return Entry(
        uid=job.uid,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        priority=job.spec.priority,
        created=str(meta.get("creationTimestamp", "")),
        phase=job.status.phase,
        queue_position=job.status.queue_position,
        kueue_queue=kueue.queue_name(job, ""),
        kueue_handed_over=kueue.handed_over(job),
    )


class Registry:
    def __init__(self) -> None:
        self._known: dict[str, Known] = {}
        self._gone: set[str] = set()
        self._cancelling: set[str] = set()
        # The latest Kueue Workload of each handed-over job: Kueue's words for its status.
        self._workloads: dict[str, Mapping[str, Any]] = {}
        # The newest resourceVersion seen of each runner Job and pod, by owner uid, kind and
        # object name (a new run's pod must not read as stale beside the last run's).
        self._child_versions: dict[tuple[str, str, str], int] = {}
        # Runner Job and pod events that came while their ReconJob still read Queued, by
        # uid then kind: replayed once the admission is recorded (see children.py).
        self._early: dict[str, dict[str, Mapping[str, Any]]] = {}

    def observe(self, body: Mapping[str, Any]) -> Known | None:
        """Take a body unless an equal or newer one is already known; returns what is
        known afterwards."""
        uid = str((body.get("metadata") or {}).get("uid", ""))
        if not uid or uid in self._gone:
            return None
        current = self._known.get(uid)
        if current is not None:
            new_rv, old_rv = _resource_version(body), _resource_version(current.body)
            if new_rv is not None and old_rv is not None and new_rv < old_rv:
                return current
        try:
            job = ReconJob.model_validate(dict(body))
        except ValidationError:
            # The API server validated it; a body that does not parse is one this version
            # of the operator cannot run, and it is left alone rather than crash the loop.
            return current
        known = Known(body=dict(body), job=job, entry=_entry(job))
        self._known[uid] = known
        return known

    def seed(self, bodies: Iterable[Mapping[str, Any]]) -> None:
        """The initial listing: entries the watch already delivered are at least as new."""
        for body in bodies:
            uid = str((body.get("metadata") or {}).get("uid", ""))
            if uid and uid not in self._known:
                self.observe(body)

    def forget(self, uid: str) -> None:
        self._known.pop(uid, None)
        self._workloads.pop(uid, None)
        self._early.pop(uid, None)
        for key in [k for k in self._child_versions if k[0] == uid]:
            del self._child_versions[key]
        self._cancelling.discard(uid)
        self._gone.add(uid)

    def get(self, uid: str) -> Known | None:
        return self._known.get(uid)

    def entries(self) -> list[Entry]:
        return [k.entry for k in self._known.values()]

    def all(self) -> list[Known]:
        return list(self._known.values())

    def count_by_phase(self) -> dict[Phase | None, int]:
        counts: dict[Phase | None, int] = {}
        for known in self._known.values():
            counts[known.entry.phase] = counts.get(known.entry.phase, 0) + 1
        return counts

    def by_job_name(self, namespace: str, job_name: str) -> Known | None:
        """The ReconJob whose child Job this is: Job names are derived from ReconJob names
        (`jobspec.child_name`), so this holds before the Job's name is recorded too."""
        for known in self._known.values():
            meta = known.job.metadata
            if meta.get("namespace") == namespace and child_name(meta["name"]) == job_name:
                return known
        return None

    def current_child(self, uid: str, kind: str, body: Mapping[str, Any]) -> bool:
        """Whether a Job or pod body is at least as new as any seen before of that object
        (a held event replayed after a newer one arrived is stale). Versions are compared
        per object: after a Kueue eviction the stopped run's pod keeps changing (it is
        terminated, then deleted) with versions newer than the next run's held pod."""
        version = _resource_version(body)
        if version is None:
            return True
        key = (uid, kind, str((body.get("metadata") or {}).get("name", "")))
        newest = self._child_versions.get(key)
        if newest is not None and version < newest:
            return False
        self._child_versions[key] = version
        return True

    def observe_workload(self, uid: str, workload: Mapping[str, Any]) -> None:
        if uid in self._known:
            self._workloads[uid] = dict(workload)

    def workload(self, uid: str) -> Mapping[str, Any] | None:
        return self._workloads.get(uid)

    def hold_early(self, uid: str, kind: str, body: Mapping[str, Any]) -> None:
        """Keep the latest event of this kind until the job's admission is recorded."""
        if uid in self._known:
            self._early.setdefault(uid, {})[kind] = body

    def take_early(self, uid: str) -> dict[str, Mapping[str, Any]]:
        """The held events, by kind, forgotten as they are handed over."""
        return self._early.pop(uid, {})

    def mark_cancelling(self, uid: str) -> None:
        """From now on the Job's and pods' dying breaths must not read as a failure."""
        self._cancelling.add(uid)

    def cancelling(self, uid: str) -> bool:
        return uid in self._cancelling

    def done_cancelling(self, uid: str) -> None:
        with contextlib.suppress(KeyError):
            self._cancelling.remove(uid)
