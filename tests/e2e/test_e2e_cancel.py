"""Cancel end to end with the real runner: request, confirm, and the work stops.

The runner process gets SIGTERM (its own log says so), its pod and Job are gone and the
ReconJob is `Cancelled` within 10 s of the confirmation, and nothing is left under the
output prefix.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

from recon_cli.cluster_demo import reconjob, watch
from recon_cli.cluster_demo.tools import get_json

from tests.support.e2e_release import DRAFT, Installed, example_job, upload_synthetic
from tests.support.stack_handle import StackHandle, wait_for

CANCEL = "recon.dev/cancel"
# Far more refinement than the draft preset does, so the job is surely mid-work when the
# confirmation comes.
LONG_RUN = {**DRAFT, "iterations": 20000}


def runner_pods(stack: StackHandle, namespace: str, job_name: str) -> list[str]:
    pods = get_json(stack, "pods", "-n", namespace, "-l", f"job-name={job_name}")["items"]
    return [p["metadata"]["name"] for p in pods]


def follow_logs(stack: StackHandle, namespace: str, pod: str, path: Path) -> subprocess.Popen[str]:
    """`kubectl logs -f` of the runner's pod into ``path``, until the process ends."""
    with path.open("w") as out:
        return subprocess.Popen(
            [str(stack.kubectl_path), "logs", "-f", pod, "-n", namespace],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=stack.env(),
        )


def test_request_then_confirm_stops_the_runner_and_leaves_nothing(
    stack: StackHandle, installed: Installed, tmp_path: Path
) -> None:
    ns = installed.jobs_namespace
    run = f"cancel-{secrets.token_hex(3)}"
    job = example_job(ns, run, LONG_RUN)
    upload_synthetic(stack, job, "torus")
    spec, client = job["spec"], stack.minio_client()
    reconjob.apply(stack, job)

    watch.follow(
        stack,
        ns,
        run,
        timeout=300,
        until=lambda s: s.phase == "Running" and s.stage == "refine",
    )
    job_name = reconjob.get(stack, ns, run)["status"]["jobName"]
    (pod,) = runner_pods(stack, ns, job_name)
    log_path = tmp_path / "runner.log"
    logs = follow_logs(stack, ns, pod, log_path)
    try:
        stack.kubectl("annotate", "reconjob", run, "-n", ns, f"{CANCEL}=requested")
        requested = wait_for(
            lambda: reconjob.condition(reconjob.get(stack, ns, run), "CancelRequested"),
            timeout=30,
            what="CancelRequested",
        )
        assert requested["status"] == "True"
        # A request alone stops nothing.
        assert reconjob.get(stack, ns, run)["status"]["phase"] == "Running"
        assert runner_pods(stack, ns, job_name) == [pod]

        stack.kubectl("annotate", "reconjob", run, "-n", ns, f"{CANCEL}=confirmed", "--overwrite")
        confirmed = time.monotonic()

        def stopped() -> bool:
            # One kubectl at a time, twice a second: the machine is busy stopping the runner.
            phase = reconjob.get(stack, ns, run).get("status", {}).get("phase")
            return phase == "Cancelled" and not runner_pods(stack, ns, job_name)

        wait_for(stopped, timeout=10, interval=0.5, what="Cancelled with its pods gone")
        elapsed = time.monotonic() - confirmed
        logs.wait(timeout=30)
    finally:
        if logs.poll() is None:
            logs.terminate()
            logs.wait(timeout=10)

    final = reconjob.get(stack, ns, run)
    cancelled = reconjob.condition(final, "Cancelled")
    assert cancelled is not None and cancelled["status"] == "True"
    assert elapsed <= 10, elapsed
    jobs = get_json(stack, "jobs", "-n", ns)["items"]
    assert job_name not in [j["metadata"]["name"] for j in jobs]
    log = log_path.read_text()
    assert "SIGTERM received" in log, log[-3000:]
    prefix = spec["output"]["prefix"]
    left = list(client.list_objects(spec["output"]["bucket"], prefix=prefix, recursive=True))
    assert [o.object_name for o in left] == []
