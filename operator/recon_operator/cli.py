"""`recon operator`: run the operator with the current kubeconfig (in-cluster config when
running in a pod). Settings come from the environment the Helm chart sets."""

from __future__ import annotations

import argparse
import os
import sys

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
    rt = Runtime(settings=settings, cluster=Cluster(api_client()))
    if args.metrics_port:
        rt.metrics.serve(args.metrics_port)
    kopf.run(
        standalone=not args.peering,
        peering_name=args.peering,
        priority=0,
        clusterwide=settings.cluster_wide,
        namespaces=list(settings.namespaces),
        liveness_endpoint=args.liveness or None,
        memo=kopf.Memo(rt=rt),
    )
    return 0
