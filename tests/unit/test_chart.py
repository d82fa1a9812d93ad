"""The Helm chart, rendered by the real helm binary: what `helm install` would create.

These checks hold the chart to the operator it deploys: the environment it sets must be
accepted by the operator's own settings parser, the permissions it grants must cover the
per-job Roles the operator hands out, and the images must be the ones the local stack's
process node knows how to run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from recon_api.constants import GROUP, PLURAL
from recon_api.models import ReconJob
from recon_operator import jobspec
from recon_operator.jobspec import build_role
from recon_operator.settings import Settings, parse_namespaces
from recon_stack.binaries import BinaryError, build_component, component_of, resolve_binaries

from tests.support.reconjobs import reconjob

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "recon-operator"
RELEASE = "recon"
NAMESPACE = "recon-system"

# DESIGN.md, "Operator settings": the chart must set every one of them.
DESIGN_SETTINGS = (
    "RECON_MAX_RUNNING_JOBS",
    "RECON_STALE_AFTER_SECONDS",
    "RECON_CANCEL_TTL_SECONDS",
    "RECON_STORAGE_ENDPOINT",
    "RECON_STORAGE_SECURE",
    "RECON_STORAGE_SECRET",
    "RECON_GPU_RESOURCE",
    "RECON_RUNNER_IMAGE",
    "RECON_MAX_FILE_BYTES",
    "RECON_MAX_TOTAL_BYTES",
    "RECON_NAMESPACES",
)


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        return resolve_binaries(build=False)["helm"]
    except BinaryError:
        on_path = shutil.which("helm")
        if on_path:
            return Path(on_path)
        # Only helm is needed here; it is built once into the user cache, like the stack's.
        log = lambda m: print(m, file=sys.stderr)  # noqa: E731
        return build_component(component_of("helm"), log)["helm"]


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=60, check=False
    )


def render(helm: Path, *set_args: str) -> list[dict[str, Any]]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for s in set_args:
        args += ["--set", s]
    result = run_helm(helm, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = only(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def env_of(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(docs)["env"] if "value" in e}


def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def app_version() -> str:
    return str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


@pytest.fixture(scope="module")
def defaults(helm: Path) -> list[dict[str, Any]]:
    return render(helm)


# ------------------------------------------------------------------------------- lint


def test_chart_lints_clean_in_strict_mode(helm: Path) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


def test_chart_identity() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "recon-operator"
    assert chart["appVersion"] == "0.1.0"


# ------------------------------------------------------------------------- deployment


def test_one_replica_with_recreate_so_two_operators_never_overlap(
    defaults: list[dict[str, Any]],
) -> None:
    spec = only(defaults, "Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_args_are_what_recon_operator_accepts_and_probes_use_its_ports(
    defaults: list[dict[str, Any]],
) -> None:
    from recon_cli.main import build_parser

    c = container(defaults)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    # Parsed by the operator's own command line: a flag it lacks would crash-loop the pod.
    args = build_parser().parse_args(["operator", *c["args"]])
    assert not getattr(args, "_import_error", None)
    assert args.liveness == f"http://0.0.0.0:{ports['health']}/healthz"
    assert args.metrics_port == ports["metrics"]
    assert args.peering == chart_values()["peering"]["name"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
        assert c[probe]["periodSeconds"] >= 1


def test_pod_runs_restricted(defaults: list[dict[str, Any]]) -> None:
    pod = only(defaults, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(defaults)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # A read-only root needs somewhere writable for Python's temporary files.
    mounts = {m["mountPath"] for m in container(defaults)["volumeMounts"]}
    assert "/tmp" in mounts


def test_operator_has_resources(defaults: list[dict[str, Any]]) -> None:
    resources = container(defaults)["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_images_default_to_the_app_version_the_process_node_maps(
    defaults: list[dict[str, Any]],
) -> None:
    version = app_version()
    assert container(defaults)["image"] == f"ghcr.io/recon-operator/recon-operator:{version}"
    assert (
        env_of(defaults)["RECON_RUNNER_IMAGE"] == f"ghcr.io/recon-operator/recon-runner:{version}"
    )
    # The local stack runs pods by image repository; both must be in its table.
    table = yaml.safe_load((ROOT / "stack/recon_stack/node/images.yaml").read_text())
    assert table["ghcr.io/recon-operator/recon-operator"] == ["recon", "operator"]
    assert table["ghcr.io/recon-operator/recon-runner"] == ["recon", "runner"]
    # Only flags: the command comes from the image's entrypoint (or the node's table).
    assert "command" not in container(defaults)


def test_image_digest_pins_over_tag(helm: Path) -> None:
    digest = "sha256:" + "ab" * 32
    docs = render(helm, f"image.digest={digest}", f"runner.image.digest={digest}")
    assert container(docs)["image"] == f"ghcr.io/recon-operator/recon-operator@{digest}"
    assert env_of(docs)["RECON_RUNNER_IMAGE"] == f"ghcr.io/recon-operator/recon-runner@{digest}"


def test_env_carries_every_design_setting(defaults: list[dict[str, Any]]) -> None:
    env = env_of(defaults)
    missing = [name for name in (*DESIGN_SETTINGS, "RECON_LOG_LEVEL") if name not in env]
    assert not missing


def test_default_env_is_what_the_operator_parses_to_the_values(
    defaults: list[dict[str, Any]],
) -> None:
    values = chart_values()
    settings = Settings.from_env(env_of(defaults))
    assert settings.max_running_jobs == values["maxRunningJobs"]
    assert settings.stale_after_seconds == values["staleAfterSeconds"]
    assert settings.cancel_ttl_seconds == values["cancelTtlSeconds"]
    assert settings.storage_endpoint == values["storage"]["endpoint"]
    assert settings.storage_secure is values["storage"]["secure"]
    assert settings.storage_secret == values["storage"]["credentialsSecret"]
    assert settings.gpu_resource == values["gpuResource"]
    assert settings.max_file_bytes == 20 * 1024**2
    assert settings.max_total_bytes == 200 * 1024**2
    assert settings.namespaces == ()
    assert settings.log_level == values["logLevel"]
    assert settings.kueue_default_queue == values["kueue"]["defaultQueueName"] == ""
    # Storage access: the default endpoint only, its list public, plain HTTP allowed.
    assert settings.storage_allowed_endpoints == ()
    assert settings.storage_allowed_endpoints_private is False
    assert settings.storage_allow_insecure is values["storage"]["allowInsecure"] is True


def test_changed_values_reach_the_operator(helm: Path) -> None:
    docs = render(
        helm,
        "maxRunningJobs=9",
        "staleAfterSeconds=120",
        "cancelTtlSeconds=60",
        "storage.endpoint=s3.example.com:443",
        "storage.secure=true",
        "storage.credentialsSecret=s3-keys",
        "storage.allowedEndpoints={*.s3.example.com:443,[fd00::7]:9000}",
        "storage.allowedEndpointsPrivate=true",
        "storage.allowInsecure=false",
        "gpuResource=amd.com/gpu",
        "maxFileBytes=5000000",
        "maxTotalBytes=1Gi",
        "watchNamespaces={team-b,team-a}",
        "logLevel=DEBUG",
        "runner.image.tag=9.9.9",
        "kueue.defaultQueueName=team-gpus",
    )
    settings = Settings.from_env(env_of(docs))
    assert settings.max_running_jobs == 9
    assert settings.stale_after_seconds == 120
    assert settings.cancel_ttl_seconds == 60
    assert settings.storage_endpoint == "s3.example.com:443"
    assert settings.storage_secure is True
    assert settings.storage_secret == "s3-keys"
    assert [str(p) for p in settings.storage_allowed_endpoints] == [
        "*.s3.example.com:443",
        "[fd00::7]:9000",
    ]
    assert settings.storage_allowed_endpoints_private is True
    assert settings.storage_allow_insecure is False
    assert settings.gpu_resource == "amd.com/gpu"
    # A large number must reach the env as digits, not as 5e+06.
    assert env_of(docs)["RECON_MAX_FILE_BYTES"] == "5000000"
    assert settings.max_file_bytes == 5_000_000
    assert settings.max_total_bytes == 1024**3
    assert settings.namespaces == ("team-a", "team-b")
    assert settings.log_level == "DEBUG"
    assert settings.runner_image == "ghcr.io/recon-operator/recon-runner:9.9.9"
    assert settings.kueue_default_queue == "team-gpus"


# ------------------------------------------------------------------------------- RBAC


def rules_of(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for d in docs if d["kind"] in ("ClusterRole", "Role") for rule in d["rules"]]


def allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in r["apiGroups"]
        and resource in r["resources"]
        and verb in r["verbs"]
        and not r.get("resourceNames")
        for r in rules
    )


def test_rbac_has_no_wildcards_and_no_cluster_admin(defaults: list[dict[str, Any]]) -> None:
    for rule in rules_of(defaults):
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule
        # Granting by escalation would let the operator hand out anything.
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
    for binding in by_kind(defaults, "ClusterRoleBinding") + by_kind(defaults, "RoleBinding"):
        assert binding["roleRef"]["name"] not in ("cluster-admin", "admin", "edit")
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": only(defaults, "ServiceAccount")["metadata"]["name"],
                "namespace": NAMESPACE,
            }
        ]


def test_rbac_allows_what_the_operator_does(defaults: list[dict[str, Any]]) -> None:
    rules = rules_of(defaults)
    needed = [
        (GROUP, PLURAL, ("get", "list", "watch", "patch", "update")),
        (GROUP, f"{PLURAL}/status", ("get", "patch", "update")),
        ("batch", "jobs", ("get", "list", "watch", "create", "delete")),
        ("", "pods", ("get", "list", "watch")),
        ("", "events", ("create", "patch")),
        ("", "secrets", ("get",)),
        ("", "serviceaccounts", ("get", "create", "delete")),
        ("rbac.authorization.k8s.io", "roles", ("get", "create", "delete")),
        ("rbac.authorization.k8s.io", "rolebindings", ("get", "create", "delete")),
        ("apiextensions.k8s.io", "customresourcedefinitions", ("get", "list", "watch")),
        ("", "namespaces", ("list", "watch")),
        ("kopf.dev", "clusterkopfpeerings", ("get", "list", "watch", "patch")),
    ]
    for group, resource, verbs in needed:
        for verb in verbs:
            assert allows(rules, group, resource, verb), f"{verb} {group}/{resource}"
    # Secrets are read one by one, by the name a ReconJob gives; never listed.
    assert not allows(rules, "", "secrets", "list")
    assert not allows(rules, "", "secrets", "watch")


def test_operator_holds_every_permission_it_grants_a_runner(
    defaults: list[dict[str, Any]],
) -> None:
    """RBAC refuses to create a Role granting more than its creator holds (without the
    `escalate` verb, which the chart does not give)."""
    recon = ReconJob.model_validate(
        {
            "metadata": {"name": "chair-001", "namespace": "studio", "uid": "u-1"},
            "spec": {"input": {"bucket": "scans"}},
        }
    )
    operator_rules = [
        rule
        for d in by_kind(defaults, "ClusterRole")
        if d["metadata"]["name"].endswith("-jobs")
        for rule in d["rules"]
    ]
    granted = build_role(recon)["rules"]
    assert granted
    for rule in granted:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert allows(operator_rules, group, resource, verb), (
                        f"the runner's Role grants {verb} {resource} the operator lacks"
                    )


def test_watch_namespaces_bind_permissions_only_there(helm: Path) -> None:
    docs = render(helm, "watchNamespaces={team-a,team-b}")
    bindings = by_kind(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert all(b["roleRef"]["kind"] == "ClusterRole" for b in bindings)
    jobs_role = bindings[0]["roleRef"]["name"]
    # The namespaced permissions are not granted cluster-wide as well.
    assert all(b["roleRef"]["name"] != jobs_role for b in by_kind(docs, "ClusterRoleBinding"))
    cluster_rules = [
        rule
        for d in by_kind(docs, "ClusterRole")
        if d["metadata"]["name"] != jobs_role
        for rule in d["rules"]
    ]
    assert not allows(cluster_rules, "", "namespaces", "list")
    assert not allows(cluster_rules, "kopf.dev", "clusterkopfpeerings", "patch")
    jobs_rules = next(d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"] == jobs_role)
    assert allows(jobs_rules["rules"], "kopf.dev", "kopfpeerings", "patch")
    # One peering object per watched namespace, where the namespaced operator looks.
    peerings = by_kind(docs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    assert not by_kind(docs, "ClusterKopfPeering")
    assert parse_namespaces(env_of(docs)["RECON_NAMESPACES"]) == ("team-a", "team-b")


# ---------------------------------------------------------------------------- peering


def test_peering_on_by_default_with_its_object(defaults: list[dict[str, Any]]) -> None:
    name = chart_values()["peering"]["name"]
    args = container(defaults)["args"]
    assert f"--peering={name}" in args and "--standalone" not in args
    env = {e["name"]: e for e in container(defaults)["env"]}
    peering = only(defaults, "ClusterKopfPeering")
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert peering["metadata"]["name"] == name
    # kopf names each peer after POD_ID, so a paused instance says whom it waits for.
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_peering_off_runs_standalone(helm: Path) -> None:
    docs = render(helm, "peering.enabled=false")
    args = container(docs)["args"]
    assert "--standalone" in args
    assert not [a for a in args if a.startswith("--peering")]
    assert not by_kind(docs, "ClusterKopfPeering") and not by_kind(docs, "KopfPeering")
    assert not allows(rules_of(docs), "kopf.dev", "clusterkopfpeerings", "patch")


def test_chart_ships_the_peering_crds_kopf_looks_for() -> None:
    from kopf._cogs.structs import references

    crds = list(yaml.safe_load_all((CHART / "crds" / "kopfpeering.yaml").read_text()))
    served = {
        (c["spec"]["group"], v["name"], c["spec"]["names"]["plural"], c["spec"]["scope"])
        for c in crds
        for v in c["spec"]["versions"]
        if v["served"]
    }
    for selector, scope in (
        (references.CLUSTER_PEERINGS_K, "Cluster"),
        (references.NAMESPACED_PEERINGS_K, "Namespaced"),
    ):
        assert (selector.group, selector.version, selector.any_name, scope) in served


# ------------------------------------------------------------- metrics, network policy


def test_metrics_service_selects_the_operator_pod(defaults: list[dict[str, Any]]) -> None:
    service = only(defaults, "Service")
    pod_labels = only(defaults, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert "metrics" in {p["name"] for p in container(defaults)["ports"]}
    # Optional extras stay off unless asked for.
    assert not by_kind(defaults, "ServiceMonitor")
    assert not by_kind(defaults, "NetworkPolicy")


def test_service_monitor_scrapes_the_metrics_service(helm: Path) -> None:
    docs = render(
        helm, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom"
    )
    monitor = only(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    service = only(docs, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


def test_network_policy_admits_metrics_and_probes_only(helm: Path) -> None:
    docs = render(helm, "networkPolicy.enabled=true")
    policy = only(docs, "NetworkPolicy")
    pod_labels = only(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress_ports == {"metrics", "health"}
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert {53, 443, 9000} <= egress_ports


RUNNER_POLICY = "recon-recon-operator-runner"


def runner_policies(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in by_kind(docs, "NetworkPolicy") if d["metadata"]["name"] == RUNNER_POLICY]


def egress_rules(policy: dict[str, Any]) -> list[tuple[set[Any], list[dict[str, Any]]]]:
    return [({p["port"] for p in r["ports"]}, r.get("to", [])) for r in policy["spec"]["egress"]]


def test_runner_network_policy_is_off_by_default(defaults: list[dict[str, Any]]) -> None:
    assert not by_kind(defaults, "NetworkPolicy")


def test_runner_network_policy_limits_runner_egress_to_dns_api_and_storage(helm: Path) -> None:
    minio = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "minio"}}}]
    api = [{"ipBlock": {"cidr": "10.96.0.1/32"}}]
    docs = render(
        helm,
        "runnerNetworkPolicy.enabled=true",
        "watchNamespaces={team-a,team-b}",
        "storage.allowedEndpoints={s3.example.com:9443,[fd00::7]:9000}",
        "runnerNetworkPolicy.storageTo[0].namespaceSelector.matchLabels"
        ".kubernetes\\.io/metadata\\.name=minio",
        "runnerNetworkPolicy.apiServerTo[0].ipBlock.cidr=10.96.0.1/32",
    )
    policies = runner_policies(docs)
    assert sorted(p["metadata"]["namespace"] for p in policies) == ["team-a", "team-b"]
    recon = reconjob(namespace="team-a", uid="u-1")
    for policy in policies:
        # It selects exactly the pods the operator's Jobs create.
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert selector.items() <= jobspec.labels(recon).items()
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        assert policy["spec"]["ingress"] == []
        assert egress_rules(policy) == [
            ({53}, []),
            ({443, 6443}, api),
            ({9000, 9443}, minio),
        ]


def test_runner_network_policy_needs_watched_namespaces_and_ports(helm: Path) -> None:
    base = ["template", RELEASE, str(CHART), "--set", "runnerNetworkPolicy.enabled=true"]
    cluster_wide = run_helm(helm, *base)
    assert cluster_wide.returncode != 0 and "watchNamespaces" in cluster_wide.stderr
    any_port = run_helm(
        helm,
        *base,
        "--set",
        "watchNamespaces={team-a}",
        "--set",
        "storage.allowedEndpoints={*.s3.example.com}",
    )
    assert any_port.returncode != 0
    assert "runnerNetworkPolicy.storagePorts" in any_port.stderr
    assert "*.s3.example.com" in any_port.stderr
    given = render(
        helm,
        "runnerNetworkPolicy.enabled=true",
        "watchNamespaces={team-a}",
        "storage.allowedEndpoints={*.s3.example.com}",
        "runnerNetworkPolicy.storagePorts={443}",
    )
    (policy,) = runner_policies(given)
    assert egress_rules(policy)[-1] == ({443}, [])


def test_notes_say_how_to_label_the_credentials_secret() -> None:
    # `helm install --dry-run` needs a cluster; `helm lint --strict` above renders NOTES.
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert (
        "kubectl -n <namespace> label secret {{ .Values.storage.credentialsSecret }} "
        "recon.dev/storage-credentials=true" in notes
    )
    assert "EndpointNotAllowed" in notes


# --------------------------------------------------------------------- values schema


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("maxRunningJobs=many", "maxRunningJobs"),
        ("maxRunningJobs=-1", "maxRunningJobs"),
        ("staleAfterSeconds=0", "staleAfterSeconds"),
        ("logLevel=verbose", "logLevel"),
        ("maxFileBytes=20 parsecs", "maxFileBytes"),
        ("storage.endpoint=http://minio:9000", "storage/endpoint"),
        ("watchNamespaces={Team_A}", "watchNamespaces"),
        ("storage.allowedEndpoints={http://evil:9000}", "storage/allowedEndpoints"),
        ("storage.allowedEndpoints={minio.svc}", "storage/allowedEndpoints"),
        ("storage.allowInsecure=false", "storage/secure"),
        ("maxRunningJob=4", "maxRunningJob"),
    ],
)
def test_wrong_value_fails_with_a_message_naming_it(helm: Path, setting: str, named: str) -> None:
    result = run_helm(helm, "template", RELEASE, str(CHART), "--set", setting)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert named in result.stderr


def test_schema_forbids_unknown_top_level_values() -> None:
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    # Every value the chart ships is described by the schema.
    assert set(chart_values()) <= set(schema["properties"])


# ------------------------------------------------------------------------------- CRDs


def crd_files(folder: Path) -> Iterator[Path]:
    return iter(sorted(p for p in folder.glob("*.yaml")))


def test_chart_crds_equal_the_repository_crds() -> None:
    """`helm install` installs the chart's crds/; `kubectl apply -f crds/` the top-level
    ones. Both must be the same files with the same content."""
    top = {p.name: p.read_text() for p in crd_files(ROOT / "crds")}
    chart = {p.name: p.read_text() for p in crd_files(CHART / "crds")}
    assert "kopfpeering.yaml" in top
    assert chart == top


# ------------------------------------------------------------------ standby replicas


def test_two_replicas_hold_one_lease_so_one_is_active(helm: Path) -> None:
    from recon_cli.main import build_parser

    docs = render(helm, "replicaCount=2")
    spec = only(docs, "Deployment")["spec"]
    assert spec["replicas"] == 2
    # The standby waits for the Lease, so old and new pods may overlap in a rollout.
    assert spec["strategy"]["type"] == "RollingUpdate"
    c = container(docs)
    args = build_parser().parse_args(["operator", *c["args"]])
    assert args.lease == "recon-operator"
    refs = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}) for e in c["env"]}
    assert refs["POD_NAMESPACE"] == {"fieldPath": "metadata.namespace"}
    assert refs["POD_ID"] == {"fieldPath": "metadata.name"}
    (role,) = [r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("-lease")]
    assert role["metadata"]["namespace"] == NAMESPACE
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert named == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["recon-operator"],
            "verbs": ["get", "update"],
        }
    ]
    binding = next(
        b for b in by_kind(docs, "RoleBinding") if b["roleRef"]["name"].endswith("-lease")
    )
    assert binding["subjects"][0]["name"] == only(docs, "ServiceAccount")["metadata"]["name"]


def test_one_replica_has_no_lease(defaults: list[dict[str, Any]]) -> None:
    c = container(defaults)
    assert not any(a.startswith("--lease") for a in c["args"])
    assert not [r for r in by_kind(defaults, "Role") if r["metadata"]["name"].endswith("-lease")]
