"""Hostile ReconJob specs against the stack's real API server with the generated CRD.

Hypothesis draws specs, valid ones and broken ones (fields missing, wrong JSON types,
numbers out of range, unknown enum values, unknown fields, huge and unicode strings,
nulls), and each is sent to the API server as a server-side dry-run create, the request
`kubectl apply` makes. Two properties are checked on every spec:

* Whatever the API server admits, the operator can use: the stored object parses with the
  pydantic model, the child Job, ServiceAccount, Role and RoleBinding are built without
  an exception and the API server accepts each of them (dry-run again), and the runner's
  environment round-trips to the same parameters.
* The API server and the pydantic model, which the CRD is generated from, agree on what
  is valid. Where they do not, the disagreement must belong to a named kind below (unknown
  fields, which the operator ignores; nulls, which the API server drops and defaults), and
  the counts are printed at the end of the module. Disagreements found and fixed earlier
  are kept as plain tests further down.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException
from pydantic import ValidationError
from recon_api.constants import GROUP, PLURAL, VERSION, MeshFormat, Preset
from recon_api.crd import model_schema
from recon_api.models import (
    BUCKET_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    ENDPOINT_PATTERN,
    MAX_ENDPOINT_LENGTH,
    MAX_QUANTITY_LENGTH,
    PREFIX_PATTERN,
    QUANTITY_PATTERN,
    ReconJob,
    ReconJobSpec,
)
from recon_api.runner_params import RunnerParams
from recon_operator.jobspec import (
    build_job,
    build_role,
    build_role_binding,
    build_service_account,
    runner_params,
)
from recon_operator.settings import Settings

from tests.support.stack_handle import StackHandle

pytestmark = pytest.mark.stack

CRD = Path(__file__).resolve().parents[2] / "crds" / "reconjob.yaml"
SETTINGS = Settings(runner_image="registry.example/recon-runner:test")

Json = Any

# ------------------------------------------------------------------ the API server


@dataclass
class Verdict:
    admitted: bool
    stored: dict[str, Any] | None
    message: str


class ApiServer:
    """Server-side dry-run creates in one namespace, over one kept-alive connection."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.calls = 0

    def reconjob(self, spec: Json, name: str | None = None) -> Verdict:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ReconJob",
            "metadata": {"name": name or f"rj-{uuid.uuid4().hex[:10]}"},
            "spec": spec,
        }
        self.calls += 1
        try:
            stored = self.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                body,
                dry_run="All",
                field_validation="Strict",
            )
        except ApiException as e:
            assert e.status in (400, 422), f"API server answered {e.status}: {e.body}"
            return Verdict(False, None, _message(e))
        assert isinstance(stored, dict)
        return Verdict(True, stored, "")

    def child_refusal(self, obj: dict[str, Any]) -> str | None:
        """None when the API server accepts the object the operator would create."""
        creators: dict[str, Callable[..., object]] = {
            "Job": self.batch.create_namespaced_job,
            "ServiceAccount": self.core.create_namespaced_service_account,
            "Role": self.rbac.create_namespaced_role,
            "RoleBinding": self.rbac.create_namespaced_role_binding,
        }
        create = creators[obj["kind"]]
        self.calls += 1
        try:
            create(self.namespace, obj, dry_run="All", field_validation="Strict")
        except ApiException as e:
            assert e.status in (400, 422), f"API server answered {e.status}: {e.body}"
            return _message(e)
        return None


def _message(e: ApiException) -> str:
    try:
        return str(json.loads(str(e.body)).get("message", e.body))
    except (TypeError, ValueError, AttributeError):
        return str(e.body)


@pytest.fixture(scope="module")
def api(stack: StackHandle) -> Iterator[ApiServer]:
    stack.kubectl("apply", "-f", str(CRD))
    stack.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=60s")
    namespace = f"hostile-{uuid.uuid4().hex[:8]}"
    stack.kubectl("create", "namespace", namespace)
    api_client = kube_config.new_client_from_config(config_file=str(stack.kubeconfig))
    server = ApiServer(api_client, namespace)
    yield server
    print(f"\nhostile specs: {server.calls} API server round trips; outcomes: {dict(OUTCOMES)}")
    api_client.close()
    stack.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


OUTCOMES: Counter[str] = Counter()

# ------------------------------------------------------------------ strategies

SPEC_SCHEMA = model_schema(ReconJobSpec)


def _paths(schema: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field path the CRD knows, objects and leaves (from the generated schema)."""
    out = []
    for name, sub in schema.get("properties", {}).items():
        path = (*prefix, name)
        out.append(path)
        out.extend(_paths(sub, path))
        if "items" in sub:
            out.extend(_paths(sub["items"], (*path, "0")))
    return out


FIELD_PATHS = _paths(SPEC_SCHEMA)


def _regex(pattern: str, alphabet: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True, alphabet=alphabet)


label_name = _regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?")
label_key = st.one_of(
    label_name,
    st.builds(lambda d, n: f"{d}/{n}", _regex(r"[a-z0-9]{1,10}\.[a-z]{2,5}"), label_name),
)
label_value = st.one_of(st.just(""), label_name)
quantity = st.one_of(
    st.integers(0, 2**31 - 1),
    _regex(QUANTITY_PATTERN, st.characters(codec="ascii")).filter(
        lambda s: len(s) <= MAX_QUANTITY_LENGTH
    ),
)
toleration = st.one_of(
    st.fixed_dictionaries(
        {"operator": st.just("Exists")},
        optional={
            "key": label_key,
            "effect": st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
        },
    ),
    st.fixed_dictionaries(
        {"key": label_key, "value": label_value},
        optional={
            "operator": st.just("Equal"),
            "effect": st.sampled_from(["NoSchedule", "PreferNoSchedule"]),
        },
    ),
    st.fixed_dictionaries(
        {
            "key": label_key,
            "operator": st.just("Exists"),
            "effect": st.just("NoExecute"),
            "tolerationSeconds": st.integers(-(2**40), 2**40),
        }
    ),
)

valid_spec = st.fixed_dictionaries(
    {
        "input": st.fixed_dictionaries(
            {"bucket": _regex(BUCKET_PATTERN).filter(lambda s: len(s) <= 63)},
            optional={
                "prefix": _regex(PREFIX_PATTERN).filter(lambda s: len(s) <= 1024),
                "expectedViews": st.integers(1, 1024),
            },
        )
    },
    optional={
        "output": st.fixed_dictionaries(
            {},
            optional={
                "bucket": _regex(BUCKET_PATTERN).filter(lambda s: len(s) <= 63),
                "prefix": _regex(PREFIX_PATTERN).filter(lambda s: 0 < len(s) <= 1024),
                "formats": st.lists(
                    st.sampled_from([f.value for f in MeshFormat]), min_size=1, unique=True
                ),
            },
        ),
        "storage": st.fixed_dictionaries(
            {},
            optional={
                "endpoint": _regex(ENDPOINT_PATTERN).filter(
                    lambda s: len(s) <= MAX_ENDPOINT_LENGTH
                ),
                "secure": st.booleans(),
                "credentialsSecret": _regex(DNS_SUBDOMAIN_PATTERN).filter(lambda s: len(s) <= 253),
            },
        ),
        "reconstruction": st.fixed_dictionaries(
            {},
            optional={
                "preset": st.sampled_from([p.value for p in Preset]),
                "gridResolution": st.integers(32, 1024),
                "iterations": st.integers(0, 20000),
                "textureSize": st.integers(64, 8192),
                "seed": st.integers(0, 2**31 - 1),
            },
        ),
        "resources": st.fixed_dictionaries(
            {},
            optional={
                "gpus": st.integers(0, 16),
                "cpu": quantity,
                "memory": quantity,
                "nodeSelector": st.dictionaries(label_key, label_value, max_size=3),
                "tolerations": st.lists(toleration, max_size=3),
                "priorityClassName": st.one_of(
                    st.just(""),
                    _regex(r"[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?"),
                ),
            },
        ),
        "priority": st.integers(-1_000_000, 1_000_000),
        "timeoutSeconds": st.integers(1, 7 * 24 * 3600),
        "retries": st.integers(0, 10),
    },
)

# Values a hostile or careless user puts where a field goes.
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: out of range and beyond int64
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),  # JSON has no NaN to send
    st.text(max_size=40),  # any unicode, control characters included
    st.text(min_size=1, max_size=4).map(lambda s: s * 700),  # huge strings
    st.sampled_from(
        ["", "GLB", "ultra", "Draft", "glb", "true", "5", "-1", "1e3", "4Gi", "../x", "s3://x/"]
    ),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=6,
)


@dataclass(frozen=True)
class Mutation:
    path: tuple[str, ...]
    kind: str  # "set" or "delete"
    value: Json = None


def _apply(spec: Json, mutation: Mutation) -> Json:
    """A copy of spec with the mutation made, creating parents the path needs."""
    if not isinstance(spec, dict):
        return spec
    original, spec = spec, json.loads(json.dumps(spec))
    node = spec
    for part in mutation.path[:-1]:
        if isinstance(node, list):
            if not part.isdigit():
                return original  # the path runs through a value another mutation replaced
            index = int(part)
            while len(node) <= index:
                node.append({})
            if not isinstance(node[index], dict | list):
                node[index] = {}
            node = node[index]
        else:
            if not isinstance(node.get(part), dict | list):
                node[part] = [] if part in ("tolerations", "formats") else {}
            node = node[part]
    last = mutation.path[-1]
    if isinstance(node, list):
        if not last.isdigit():
            return original
        index = int(last)
        if mutation.kind == "delete":
            if index < len(node):
                node.pop(index)
        else:
            while len(node) <= index:
                node.append(None)
            node[index] = mutation.value
    elif mutation.kind == "delete":
        node.pop(last, None)
    else:
        node[last] = mutation.value
    return spec


mutation = st.one_of(
    st.builds(Mutation, st.sampled_from(FIELD_PATHS), st.just("set"), json_value),
    st.builds(Mutation, st.sampled_from(FIELD_PATHS), st.just("delete")),
    # An unknown field somewhere (a typo such as expectedView).
    st.builds(
        lambda parent, name, value: Mutation((*parent, name), "set", value),
        st.sampled_from([(), *(p for p in FIELD_PATHS if len(p) == 1)]),
        st.sampled_from(["expectedView", "bogus", "Priority", "gpu", "ñame"]),
        json_scalar,
    ),
)


@st.composite
def hostile_specs(draw: st.DrawFn) -> Json:
    spec = draw(valid_spec)
    for m in draw(st.lists(mutation, max_size=3)):
        spec = _apply(spec, m)
    return spec


# ------------------------------------------------------------------ what is known to differ


def _walk(value: Json, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Json]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, (*path, str(i)))


def _schema_at(path: tuple[str, ...]) -> dict[str, Any] | None:
    node: dict[str, Any] | None = SPEC_SCHEMA
    for part in path:
        if node is None:
            return None
        if "properties" in node:
            node = node["properties"].get(part)
        elif "items" in node:
            node = node["items"]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return node


def _unknown_fields(spec: Json) -> bool:
    """A key the schema does not list, under an object whose properties it does list."""
    for path, _ in _walk(spec):
        parent = _schema_at(path[:-1]) if path else None
        if parent and "properties" in parent and path[-1] not in parent["properties"]:
            return True
    return False


def _model_errors(spec: Json) -> list[tuple[str, ...]] | None:
    """The locations the model refuses (None when it accepts), as the operator parses."""
    try:
        ReconJobSpec.model_validate(spec)
    except ValidationError as e:
        return [tuple(str(p) for p in err["loc"]) for err in e.errors()]
    return None


def why_api_refuses_but_model_accepts(spec: Json, message: str) -> str | None:
    if "unknown field" in message and _unknown_fields(spec):
        return "unknown field: API server refuses it (strict field validation), model ignores it"
    return None


def why_api_admits_but_model_refuses(spec: Json, stored: dict[str, Any]) -> str | None:
    if any(v is None for _, v in _walk(spec)) and _model_errors(stored["spec"]) is None:
        return "null: API server drops nulls and defaults the field, model refuses null"
    return None


# Kubernetes parses a quantity's exponent as an integer and builds 10**exponent: a huge one
# ("1e100000000") keeps the API server busy for tens of seconds per Job request, so the CRD
# must never admit one (QUANTITY_PATTERN stops exponents at 18).
EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)$")


def exponent(quantity: str) -> int:
    match = EXPONENT.search(quantity)
    return abs(int(match.group(1))) if match else 0


# ------------------------------------------------------------------ the properties


def check_spec(api: ApiServer, spec: Json) -> None:
    verdict = api.reconjob(spec)
    model_errors = _model_errors(spec)
    if not verdict.admitted:
        if model_errors is not None:
            OUTCOMES["both refuse"] += 1
            return
        why = why_api_refuses_but_model_accepts(spec, verdict.message)
        assert why, f"API server refused a spec the model accepts: {verdict.message}\n{spec}"
        OUTCOMES[f"API refuses, model accepts ({why.split(':')[0]})"] += 1
        return

    stored = verdict.stored
    assert stored is not None
    if model_errors is not None:
        why = why_api_admits_but_model_refuses(spec, stored)
        assert why, f"API server admitted a spec the model refuses ({model_errors}):\n{spec}"
        OUTCOMES[f"API admits, model refuses raw spec ({why.split(':')[0]})"] += 1
    else:
        OUTCOMES["both admit"] += 1

    # The operator's view: the stored object, with the uid the API server gave it.
    stored["metadata"]["uid"] = stored["metadata"].get("uid") or str(uuid.uuid4())
    job = ReconJob.model_validate(stored)
    # Defaulting agrees: the API server's defaults are the model's defaults.
    assert job.spec == ReconJobSpec.model_validate(spec if model_errors is None else stored["spec"])
    params = runner_params(job, SETTINGS)
    resources = job.spec.resources
    assert exponent(resources.cpu) <= 18 and exponent(resources.memory) <= 18, resources
    assert RunnerParams.from_env(params.to_env()) == params
    children = [
        build_job(job, SETTINGS),
        build_service_account(job),
        build_role(job),
        build_role_binding(job),
    ]
    for child in children:
        refusal = api.child_refusal(child)
        assert refusal is None, (
            f"the API server refuses the {child['kind']} built for an admitted ReconJob: "
            f"{refusal}\n{spec}"
        )


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=hostile_specs())
def test_hostile_specs_admitted_only_when_usable(api: ApiServer, spec: Json) -> None:
    check_spec(api, spec)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=valid_spec)
def test_every_valid_spec_is_admitted_and_runs(api: ApiServer, spec: Json) -> None:
    verdict = api.reconjob(spec)
    assert verdict.admitted, f"{verdict.message}\n{spec}"
    check_spec(api, spec)


def test_admitted_long_names_make_valid_children(api: ApiServer) -> None:
    """The longest ReconJob names the API server allows still give valid Job names."""
    for name in ("a" * 253, "a." * 126 + "b", "x" * 62, "x" * 63 + "-y"):
        verdict = api.reconjob({"input": {"bucket": "scans"}}, name=name)
        assert verdict.admitted, verdict.message
        assert verdict.stored is not None
        verdict.stored["metadata"]["uid"] = str(uuid.uuid4())
        job = ReconJob.model_validate(verdict.stored)
        for child in (build_job(job, SETTINGS), build_service_account(job), build_role(job)):
            assert api.child_refusal(child) is None


# ------------------------------------------------------------------ mismatches found and fixed


def _admitted_job_is_accepted(api: ApiServer, spec: Json) -> None:
    verdict = api.reconjob(spec)
    assert verdict.admitted, f"{verdict.message}\n{spec}"
    assert verdict.stored is not None
    verdict.stored["metadata"]["uid"] = str(uuid.uuid4())
    job = ReconJob.model_validate(verdict.stored)
    assert api.child_refusal(build_job(job, SETTINGS)) is None, spec


def test_endpoints_mean_the_same_to_the_api_server_and_the_model(api: ApiServer) -> None:
    """Whitespace outside ASCII (or \\v) was admitted by the API server's \\s and refused by
    the model's; the endpoint's characters are now spelled out for both."""
    for endpoint in ("minio\u00a0svc:9000", "minio\u2003:9000", "minio\x0b:9000", "a b:1"):
        spec = {"input": {"bucket": "scans"}, "storage": {"endpoint": endpoint}}
        verdict = api.reconjob(spec)
        assert not verdict.admitted, endpoint
        assert "spec.storage.endpoint" in verdict.message, verdict.message
        assert _model_errors(spec) == [("storage", "endpoint")], endpoint
    for endpoint in ("minio.minio.svc:9000", "[::1]:9000", "10.0.0.7:9000"):
        _admitted_job_is_accepted(
            api, {"input": {"bucket": "scans"}, "storage": {"endpoint": endpoint}}
        )


def test_placement_the_pod_api_refuses_is_refused_at_apply(api: ApiServer) -> None:
    """nodeSelector labels and tolerations the Job would be refused for are refused when
    the ReconJob is applied, with a message naming the field."""
    for resources, field, text in (
        ({"nodeSelector": {"gpu type": "a100"}}, "spec.resources.nodeSelector", "label key"),
        ({"nodeSelector": {"a" * 254 + "/gpu": "x"}}, "spec.resources.nodeSelector", "253"),
        ({"nodeSelector": {"gpu": "a100 80gb"}}, "spec.resources.nodeSelector.gpu", "match"),
        (
            {"tolerations": [{"key": "gpu", "effect": "NoSchedule", "tolerationSeconds": 60}]},
            "spec.resources.tolerations[0].tolerationSeconds",
            "tolerationSeconds needs effect NoExecute",
        ),
        (
            {"tolerations": [{"key": "gpu", "operator": "Exists", "value": "yes"}]},
            "spec.resources.tolerations[0].value",
            "value must be empty when operator is Exists",
        ),
        (
            {"tolerations": [{"operator": "Equal", "value": "yes"}]},
            "spec.resources.tolerations[0].operator",
            "operator must be Exists when key is empty",
        ),
        (
            {"tolerations": [{"key": "gpu type", "operator": "Exists"}]},
            "spec.resources.tolerations[0].key",
            "match",
        ),
        (
            {"tolerations": [{"key": "x" * 64, "operator": "Exists"}]},
            "spec.resources.tolerations[0].key",
            "label key",
        ),
    ):
        spec = {"input": {"bucket": "scans"}, "resources": resources}
        verdict = api.reconjob(spec)
        assert not verdict.admitted, resources
        assert field in verdict.message and text in verdict.message, verdict.message
        assert _model_errors(spec) is not None, resources
    _admitted_job_is_accepted(
        api,
        {
            "input": {"bucket": "scans"},
            "resources": {
                "nodeSelector": {"nvidia.com/gpu.product": "A100-SXM4-80GB", "zone": ""},
                "tolerations": [
                    {"operator": "Exists"},
                    {"key": "gpu", "value": "yes", "effect": "NoSchedule"},
                    {
                        "key": "node.kubernetes.io/unreachable",
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": 30,
                    },
                ],
            },
        },
    )


def test_crd_refuses_quantities_kubernetes_cannot_parse(api: ApiServer) -> None:
    # Only the ReconJob is sent for the refused ones: the CRD checks the pattern, which is
    # cheap. Sending a Job with a huge exponent is what ties up the API server.
    for quantity in (
        "1e1.5",
        ".5e.5",
        "1e19",
        "1e100000000",
        "36e2239375680995486",
        "1e22393756809954800000",
        "1" * (MAX_QUANTITY_LENGTH + 1),
    ):
        verdict = api.reconjob({"input": {"bucket": "scans"}, "resources": {"memory": quantity}})
        assert not verdict.admitted, quantity
        assert "spec.resources.memory" in verdict.message, verdict.message
    for cpu, memory in (("1e-3", "1E18"), ("250m", "64Ei"), (".5", "1e+9"), (2, 2**40)):
        _admitted_job_is_accepted(
            api, {"input": {"bucket": "scans"}, "resources": {"cpu": cpu, "memory": memory}}
        )


def test_model_refuses_what_the_api_server_refuses(api: ApiServer) -> None:
    for spec in (
        {"input": {"bucket": "scans", "expectedViews": "5"}},
        {"input": {"bucket": "scans", "expectedViews": True}},
        {"input": {"bucket": "scans", "expectedViews": 5.5}},
        {"input": {"bucket": "scans"}, "storage": {"secure": "true"}},
        {"input": {"bucket": "scans"}, "resources": {"cpu": 0.5}},
        {"input": {"bucket": "scans"}, "resources": {"cpu": -1}},
        {"input": {"bucket": "scans"}, "priority": 2**63},
        {
            "input": {"bucket": "scans"},
            "resources": {
                "tolerations": [{"key": "k", "effect": "NoExecute", "tolerationSeconds": 2**70}]
            },
        },
    ):
        assert not api.reconjob(spec).admitted, spec
        assert _model_errors(spec) is not None, spec


def test_model_admits_what_the_api_server_admits(api: ApiServer) -> None:
    """A number with no fractional part is an integer to the API server (stored as one)."""
    for spec in (
        {"input": {"bucket": "scans", "expectedViews": 5.0}},
        {"input": {"bucket": "scans"}, "resources": {"cpu": 4.0}},
        {"input": {"bucket": "scans"}, "retries": 1e0},
    ):
        verdict = api.reconjob(spec)
        assert verdict.admitted, verdict.message
        assert verdict.stored is not None
        assert ReconJobSpec.model_validate(spec) == ReconJobSpec.model_validate(
            verdict.stored["spec"]
        )
