"""Prometheus metrics: what a dashboard needs to see the queue and the jobs' health.

A registry of its own per operator instance, so two operators in one test process (or an
embedding program) never collide on metric names.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from recon_api.constants import Phase

# Reconstruction runs take minutes to hours.
DURATION_BUCKETS = (30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Gauge("recon_jobs", "ReconJobs by phase.", ["phase"], registry=self.registry)
        self.queue_length = Gauge(
            "recon_queue_length", "ReconJobs waiting for a run slot.", registry=self.registry
        )
        self.duration = Histogram(
            "recon_job_duration_seconds",
            "Time from admission to a terminal phase, by outcome.",
            ["phase"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.validation_failures = Counter(
            "recon_validation_failures",
            "ReconJobs whose capture failed validation.",
            registry=self.registry,
        )
        self.api_writes = Counter(
            "recon_operator_api_writes",
            "Writes the operator made to the API server outside kopf's own bookkeeping.",
            ["kind"],
            registry=self.registry,
        )

    def set_phases(self, counts: dict[Phase | None, int]) -> None:
        for phase in Phase:
            self.jobs.labels(phase=phase.value).set(counts.get(phase, 0))
        self.queue_length.set(counts.get(Phase.QUEUED, 0))

    def finished(self, phase: Phase, started: datetime | None, finished: datetime) -> None:
        if started is not None:
            self.duration.labels(phase=phase.value).observe(
                max(0.0, (finished - started).total_seconds())
            )

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        start_http_server(port, addr=addr, registry=self.registry)
