"""`recon operator`: run the operator with the current kubeconfig (in-cluster config when
running in a pod). Settings come from the environment the Helm chart sets."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

DEFAULT_METRICS_PORT = 8080
DEFAULT_HEALTH_PORT = 8081


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("RECON_METRICS_PORT", DEFAULT_METRICS_PORT)),
        help="port of the Prometheus /metrics endpoint (env RECON_METRICS_PORT; 0 disables)",
    )
    parser.add_argument(
        "--liveness",
        default=os.environ.get("RECON_LIVENESS", f"http://0.0.0.0:{DEFAULT_HEALTH_PORT}/healthz"),
        metavar="URL",
        help="where kopf serves liveness/readiness (env RECON_LIVENESS; default %(default)s)",
    )
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--peering",
        metavar="NAME",
        help="kopf peering object, so a second instance pauses while this one runs",
    )
    peering.add_argument(
        "--standalone",
        action="store_true",
        help="no peering (the default when --peering is not given)",
    )
    parser.add_argument(
        "--lease",
        metavar="NAME",
        default=os.environ.get("RECON_LEASE") or None,
        help="coordination.k8s.io Lease to hold while active: replicas given the same one "
        "run one at a time, the others wait as standby (env RECON_LEASE)",
    )
    parser.add_argument(
        "--lease-namespace",
        metavar="NAMESPACE",
        default=os.environ.get("POD_NAMESPACE") or "default",
        help="namespace of the Lease (env POD_NAMESPACE; default %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    import kopf

    from recon_operator import handlers, logs  # noqa: F401  (importing registers handlers)
    from recon_operator.cluster import Cluster, api_client
    from recon_operator.runtime import Runtime
    from recon_operator.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    api = api_client()
    priority = 0
    if args.lease:
        from recon_operator import leadership

        identity = os.environ.get("POD_ID") or f"{socket.gethostname()}-{os.getpid()}"
        lease = leadership.LeaseSettings(args.lease, args.lease_namespace, identity)
        with leadership.standby_health(args.liveness):
            leadership.acquire(lease, api)
        # The newest holder outranks every earlier one in kopf's peering, so a killed
        # predecessor's record (kept there until its lifetime ends) does not freeze it,
        # while an instance started without the Lease still pauses for it.
        priority = int(time.time())
    rt = Runtime(settings=settings, cluster=Cluster(api))
    if args.metrics_port:
        rt.metrics.serve(args.metrics_port)
    kopf.run(
        standalone=not args.peering,
        peering_name=args.peering,
        priority=priority,
        clusterwide=settings.cluster_wide,
        namespaces=list(settings.namespaces),
        liveness_endpoint=args.liveness or None,
        memo=kopf.Memo(rt=rt),
    )
    return 0
