"""Pod start on the real node: a Job created to its container running, and the node's
idle memory.

Runs against a stack started with `recon dev up --node real` (the operator image, already
imported, is the Job's image: what is measured is the node, not an image pull).

    .venv/bin/python benchmarks/realnode_pod_start.py --state-dir DIR --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client, config
from recon_stack import image_build
from recon_stack.image_build import OPERATOR
from recon_stack.processes import read_pidfile
from recon_stack.realnode import host
from recon_stack.realnode import node as realnode
from recon_stack.stack import ALL_COMPONENTS, Stack


def job(name: str, image: str) -> Any:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 30,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
                    "containers": [
                        {
                            "name": "main",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "command": ["python", "-c", "import time; time.sleep(3)"],
                        }
                    ],
                }
            },
        },
    }


def running_after(core: client.CoreV1Api, name: str, started: float) -> float:
    while True:
        pods = core.list_namespaced_pod("default", label_selector=f"job-name={name}").items
        for pod in pods:
            for status in (pod.status and pod.status.container_statuses) or []:
                if status.state and status.state.running:
                    return time.monotonic() - started
        time.sleep(0.05)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    stack = Stack(args.state_dir, node="real")
    config.load_kube_config(str(stack.kubeconfig))
    batch, core = client.BatchV1Api(), client.CoreV1Api()
    # The operator image of this working tree, from the cache (built by `recon dev images`),
    # imported here: the stack may have been started with no images at all.
    base_key = image_build.base_image_key()[0]
    key, _ = image_build.image_plan(OPERATOR, image_build.base_reference(base_key), base_key)
    archive = image_build.images_dir() / f"{OPERATOR.name}-{key}.oci.tar"
    image = f"{OPERATOR.repository}:{key}"
    built = image_build.BuiltImage(OPERATOR.name, image, key, archive, False, 0.0, 0)
    realnode.import_images(stack.layout, [built])
    times = []
    for _ in range(args.runs):
        name = f"start-{uuid.uuid4().hex[:6]}"
        started = time.monotonic()
        batch.create_namespaced_job("default", job(name, image))
        times.append(running_after(core, name, started))
        print(f"{name}: Job created -> container running in {times[-1]:.2f}s")
    print(
        f"pod start over {len(times)} Jobs: median {statistics.median(times):.2f}s, "
        f"min {min(times):.2f}s, max {max(times):.2f}s"
    )
    total = 0
    for name in ALL_COMPONENTS:
        record = read_pidfile(stack.layout.pidfile(name))
        if record is not None and Path(f"/proc/{record.pid}").exists():
            kib = rss_kib(record.pid)
            total += kib
            print(f"  {name:<24} {kib / 1024:6.0f} MiB")
    sock = str(stack.layout.root / "realnode" / "containerd.sock")
    shims = sum(rss_kib(p) for p in host.pids_with_argument(sock))
    print(f"  {'containerd shims':<24} {shims / 1024:6.0f} MiB")
    print(f"stack RSS: {(total + shims) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
