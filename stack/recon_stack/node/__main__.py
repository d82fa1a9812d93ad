"""`python -m recon_stack.node`: run the process node until SIGTERM or SIGINT.

The stack starts it with the admin kubeconfig; on SIGTERM it ends every pod process it
started (SIGTERM, a short grace, SIGKILL) before exiting, so `recon dev down` leaves
nothing running.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from recon_stack.node.agent import Agent
from recon_stack.node.images import ImageTableError, ImageTableSource
from recon_stack.node.kubeapi import NodeApi
from recon_stack.node.logserver import LogServer
from recon_stack.node.nodeinfo import NodeShape
from recon_stack.node.podworker import NodeContext

log = logging.getLogger("recon_stack.node")

# How long pods get to exit when the node itself is stopped.
SHUTDOWN_GRACE_SECONDS = 5.0
REGISTER_TIMEOUT_SECONDS = 60.0
DEFAULT_IMAGE_MAP = "image-map.yaml"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m recon_stack.node",
        description="Run pods bound to one Node as local processes (the local stack's node).",
    )
    p.add_argument("--kubeconfig", type=Path, required=True, help="credentials of the node")
    p.add_argument(
        "--state-dir", type=Path, required=True, help="where pod logs and scratch dirs go"
    )
    p.add_argument("--node-name", default="local-gpu-0")
    p.add_argument("--gpus", type=int, default=2, help="GPUs advertised (default 2)")
    p.add_argument("--gpu-resource", default="nvidia.com/gpu")
    p.add_argument("--cpu", default="16", help="CPU capacity advertised (default 16)")
    p.add_argument("--memory", default="64Gi", help="memory capacity advertised")
    p.add_argument("--pods", type=int, default=110, help="pod capacity advertised")
    p.add_argument(
        "--image-map",
        type=Path,
        help="YAML of extra image -> entrypoint entries merged over the built-in table, "
        f"re-read when it changes (default: STATE_DIR/{DEFAULT_IMAGE_MAP}, if present)",
    )
    p.add_argument("--log-level", default="INFO")
    return p


def _register(agent: Agent, stop: threading.Event) -> bool:
    """Register, retrying while the API server is still coming up."""
    deadline = time.monotonic() + REGISTER_TIMEOUT_SECONDS
    delay = 0.5
    while True:
        try:
            agent.start()
            return True
        except (ApiException, HTTPError, OSError) as e:
            if time.monotonic() > deadline:
                log.error("cannot register the node: %s", e)
                return False
            log.warning("registering the node failed (%s), retrying", e)
        if stop.wait(delay):
            return False
        delay = min(delay * 2, 5.0)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s [%(threadName)s] %(message)s",
        stream=sys.stderr,
    )
    image_map = args.image_map or args.state_dir / DEFAULT_IMAGE_MAP
    try:
        images = ImageTableSource(image_map)
    except ImageTableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    api = NodeApi(args.kubeconfig)
    pods_root = args.state_dir / "pods"
    logs = LogServer(pods_root, args.state_dir / "pki", args.node_name)
    shape = NodeShape(
        name=args.node_name,
        cpu=args.cpu,
        memory=args.memory,
        pods=args.pods,
        gpus=args.gpus,
        gpu_resource=args.gpu_resource,
        kubelet_port=logs.port,
    )
    ctx = NodeContext(
        api=api,
        images=images,
        pods_root=pods_root,
        parent_env=dict(os.environ),
        venv_bin=os.path.dirname(sys.executable),
        gpu_resource=args.gpu_resource,
    )
    agent = Agent(api, shape, ctx)
    logs.is_running = agent.may_write_log
    logs.start()
    if not _register(agent, stop):
        return 1
    while not stop.wait(3600):
        pass
    logs.stop()
    agent.shutdown(SHUTDOWN_GRACE_SECONDS)
    log.info("node stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
