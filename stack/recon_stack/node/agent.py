"""The process node's agent: register the Node, watch the pods bound to it, run them.

One watch (fieldSelector ``spec.nodeName``) feeds every pod's worker; a relist after the
watch expires, or at start-up, reconciles the workers with what the API holds. Pods left
behind by an earlier run of the node are settled: a finished pod being deleted is
removed, a pod whose process vanished with the earlier run is failed as a kubelet fails a
container it cannot find, and a pod that never started is started.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from recon_stack.node.heartbeat import NodeHeartbeat
from recon_stack.node.kubeapi import NodeApi
from recon_stack.node.launch import PodDirs
from recon_stack.node.nodeinfo import NodeShape
from recon_stack.node.podrun import stop_all
from recon_stack.node.podworker import (
    TERMINAL_PHASES,
    NodeContext,
    PodWorker,
    backoff,
    is_deleting,
    remove_pod_files,
)
from recon_stack.node.status import has_started, lost_states, pod_status
from recon_stack.node.timestamps import rfc3339, utcnow

log = logging.getLogger(__name__)

Json = dict[str, Any]

# A watch is re-opened this often, so a silently dropped connection is noticed.
WATCH_SECONDS = 300


class Agent:
    def __init__(self, api: NodeApi, shape: NodeShape, ctx: NodeContext) -> None:
        self.api = api
        self.shape = shape
        self.ctx = ctx
        self.heartbeat = NodeHeartbeat(api, shape)
        self.workers: dict[str, PodWorker] = {}
        self.stop = threading.Event()
        self.selector = f"spec.nodeName={shape.name}"

    def start(self) -> None:
        """Register the Node, then heartbeat and watch pods in background threads."""
        self.heartbeat.register()
        for target, name in ((self._heartbeat, "heartbeat"), (self._watch_pods, "pod-watch")):
            threading.Thread(target=target, name=name, daemon=True).start()
        log.info("node %s registered; watching its pods", self.shape.name)

    def shutdown(self, grace_seconds: float) -> None:
        """Stop watching and end every pod process this node started."""
        self.stop.set()
        processes = [p for w in list(self.workers.values()) for p in w.running_processes()]
        if processes:
            log.info("stopping %d pod process(es)", len(processes))
        stop_all(processes, grace_seconds)

    def may_write_log(self, namespace: str, name: str, container: str) -> bool:
        """Whether a container's log may still grow (for `kubectl logs -f`)."""
        return any(
            w.namespace == namespace and w.name == name and w.may_write_log(container)
            for w in list(self.workers.values())
        )

    def _heartbeat(self) -> None:
        self.heartbeat.run(self.stop)

    def _watch_pods(self) -> None:
        resource_version = ""
        failures = 0
        while not self.stop.is_set():
            try:
                if not resource_version:
                    listing = self.api.list_pods(self.selector)
                    resource_version = str(listing["metadata"]["resourceVersion"])
                    self.resync(listing.get("items") or [])
                for event in self.api.watch_pods(self.selector, resource_version, WATCH_SECONDS):
                    kind = event.get("type")
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        # 410 Gone: our resourceVersion was compacted away; relist.
                        log.info("pod watch ended: %s", obj.get("message"))
                        resource_version = ""
                        break
                    resource_version = str(obj["metadata"]["resourceVersion"])
                    if kind != "BOOKMARK":
                        self.dispatch(str(kind), obj)
                failures = 0
            except ApiException as e:
                if e.status == 410:
                    resource_version = ""
                    continue
                failures += 1
                log.warning("pod watch failed (%s), retrying", e.status)
                self.stop.wait(backoff(failures))
            except (HTTPError, OSError) as e:
                failures += 1
                log.warning("pod watch interrupted (%s), retrying", e)
                self.stop.wait(backoff(failures))

    def resync(self, pods: Iterable[Json]) -> None:
        """Bring workers in line with a full listing of the node's pods."""
        listed = {str(p["metadata"]["uid"]): p for p in pods}
        for uid in [u for u in self.workers if u not in listed]:
            self.workers.pop(uid).object_deleted()
        for pod in listed.values():
            self.dispatch("MODIFIED", pod)

    def dispatch(self, kind: str, pod: Json) -> None:
        uid = str(pod["metadata"]["uid"])
        if kind == "DELETED":
            worker = self.workers.pop(uid, None)
            if worker is not None:
                worker.object_deleted()
            else:
                remove_pod_files(PodDirs.for_pod(self.ctx.pods_root, pod))
            return
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        self._adopt(pod)

    def _adopt(self, pod: Json) -> None:
        """A pod this run of the node has no worker for."""
        phase = (pod.get("status") or {}).get("phase")
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        if phase not in TERMINAL_PHASES and policy == "Never" and has_started(pod):
            pod = self._fail_lost(pod)
            phase = (pod.get("status") or {}).get("phase")
        if phase in TERMINAL_PHASES:
            if is_deleting(pod):
                self._remove(pod)
            return
        worker = PodWorker(pod, self.ctx)
        self.workers[worker.uid] = worker
        log.info("starting pod %s/%s", worker.namespace, worker.name)
        worker.start()

    def _fail_lost(self, pod: Json) -> Json:
        meta = pod["metadata"]
        now = rfc3339(utcnow())
        init, main = lost_states(pod, now)
        start = str((pod.get("status") or {}).get("startTime") or now)
        status = pod_status(pod, init, main, start, now, self.ctx.node_ip)
        log.info("pod %s/%s lost its process with an earlier run", meta["namespace"], meta["name"])
        try:
            return self.api.patch_pod_status(meta["namespace"], meta["name"], status)
        except (ApiException, HTTPError, OSError) as e:
            log.warning("reporting lost pod %s/%s failed: %s", meta["namespace"], meta["name"], e)
            return pod

    def _remove(self, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        try:
            self.api.delete_pod_now(meta["namespace"], meta["name"], meta["uid"])
        except (ApiException, HTTPError, OSError) as e:
            log.warning("deleting pod %s/%s failed: %s", meta["namespace"], meta["name"], e)
        remove_pod_files(PodDirs.for_pod(self.ctx.pods_root, pod))
