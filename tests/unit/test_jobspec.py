"""The child Job and its RBAC: what the cluster is asked to run, and with what rights."""

from __future__ import annotations

from recon_api.runner_params import RunnerParams
from recon_operator import jobspec
from recon_operator.settings import Settings

from tests.support.reconjobs import reconjob

SETTINGS = Settings(
    runner_image="ghcr.io/recon-operator/recon-runner:1.0", storage_endpoint="minio:9000"
)


def gpu_job(reconstruction=None, **resources):
    spec = {
        "input": {"bucket": "scans", "prefix": "chair-001/", "expectedViews": 8},
        "output": {"bucket": "meshes", "formats": ["glb", "ply"]},
        "storage": {"credentialsSecret": "team-minio"},
        "reconstruction": {"preset": "high", "iterations": 50, "seed": 7, **(reconstruction or {})},
        "resources": {"gpus": 2, "cpu": "2", "memory": "8Gi", **resources},
        "timeoutSeconds": 900,
        "retries": 3,
    }
    return reconjob(spec=spec, uid="u-1")


def container(job):
    return job["spec"]["template"]["spec"]["containers"][0]


def test_name_is_deterministic_and_fits_a_label() -> None:
    assert jobspec.child_name("chair-001") == "chair-001-recon"
    long_a, long_b = "a" * 80 + "x", "a" * 80 + "y"
    assert jobspec.child_name(long_a) == jobspec.child_name(long_a)
    assert jobspec.child_name(long_a) != jobspec.child_name(long_b)
    assert all(len(jobspec.child_name(n)) <= 63 for n in (long_a, long_b, "b" * 253))


def test_job_requests_gpus_cpu_memory_and_placement() -> None:
    rj = gpu_job(
        nodeSelector={"gpu": "a100"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        priorityClassName="batch-high",
    )
    job = jobspec.build_job(rj, SETTINGS)
    res = container(job)["resources"]
    assert res["requests"] == {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "2"}
    assert res["limits"]["nvidia.com/gpu"] == "2"
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"gpu": "a100"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert pod["priorityClassName"] == "batch-high"
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "chair-001-recon"


def test_gpu_resource_name_is_a_setting_and_zero_gpus_asks_for_none() -> None:
    other = Settings(runner_image="img", gpu_resource="amd.com/gpu")
    assert "amd.com/gpu" in container(jobspec.build_job(gpu_job(), other))["resources"]["limits"]
    cpu_only = container(jobspec.build_job(gpu_job(gpus=0), SETTINGS))
    assert set(cpu_only["resources"]["requests"]) == {"cpu", "memory"}
    env = {e["name"]: e.get("value") for e in cpu_only["env"]}
    assert env["RECON_DEVICE"] == "cpu"


def test_deadline_retries_and_failure_policy() -> None:
    spec = jobspec.build_job(gpu_job(), SETTINGS)["spec"]
    assert spec["activeDeadlineSeconds"] == 900
    assert spec["backoffLimit"] == 3
    assert spec["ttlSecondsAfterFinished"] > 0
    rules = spec["podFailurePolicy"]["rules"]
    by_action = {r["action"]: r for r in rules}
    assert by_action["FailJob"]["onExitCodes"]["values"] == [3]
    assert by_action["Count"]["onExitCodes"]["values"] == [75]
    assert by_action["Ignore"]["onPodConditions"] == [
        {"type": "DisruptionTarget", "status": "True"}
    ]


def test_owned_by_the_reconjob() -> None:
    rj = gpu_job()
    for obj in (
        jobspec.build_job(rj, SETTINGS),
        jobspec.build_service_account(rj),
        jobspec.build_role(rj),
        jobspec.build_role_binding(rj),
    ):
        (ref,) = obj["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "recon.dev/v1alpha1",
            "kind": "ReconJob",
            "name": "chair-001",
            "uid": "u-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert obj["metadata"]["namespace"] == "studio"


def test_restricted_security_context_with_writable_tmp() -> None:
    job = jobspec.build_job(gpu_job(), SETTINGS)
    pod = job["spec"]["template"]["spec"]
    c = container(job)
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] > 0
    (mount,) = c["volumeMounts"]
    assert mount["mountPath"] == "/tmp"
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume
    assert {"name": "TMPDIR", "value": "/tmp"} in c["env"]


def test_runner_reads_back_exactly_the_parameters_of_the_spec() -> None:
    c = container(jobspec.build_job(gpu_job(), SETTINGS))
    plain = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    params = RunnerParams.from_env(plain)
    assert (params.job_name, params.job_namespace, params.job_uid) == ("chair-001", "studio", "u-1")
    assert (params.input_bucket, params.input_prefix, params.expected_views) == (
        "scans",
        "chair-001/",
        8,
    )
    assert params.output_bucket == "meshes"
    assert params.output_prefix == "chair-001/output/u-1/"
    assert [f.value for f in params.formats] == ["glb", "ply"]
    assert (params.preset.value, params.iterations, params.seed) == ("high", 50, 7)
    assert params.storage_endpoint == "minio:9000"


def test_bounds_reach_the_runner_exactly() -> None:
    box = {"min": [-0.1, 0.2, -3e-5], "max": [0.7, 1.0 / 3.0, 2.0]}
    c = container(jobspec.build_job(gpu_job(reconstruction={"bounds": box}), SETTINGS))
    plain = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    params = RunnerParams.from_env(plain)
    assert params.bounds == (tuple(box["min"]), tuple(box["max"]))
    assert RunnerParams.from_env({**plain, "RECON_BOUNDS": ""}).bounds is None
    assert "RECON_BOUNDS" not in {
        e["name"] for e in container(jobspec.build_job(gpu_job(), SETTINGS))["env"]
    }


def test_credentials_only_by_secret_reference() -> None:
    c = container(jobspec.build_job(gpu_job(), SETTINGS))
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
    assert refs == {
        "RECON_STORAGE_ACCESS_KEY": {"name": "team-minio", "key": "accessKey"},
        "RECON_STORAGE_SECRET_KEY": {"name": "team-minio", "key": "secretKey"},
    }
    default = container(jobspec.build_job(reconjob(uid="u"), SETTINGS))
    names = {e["valueFrom"]["secretKeyRef"]["name"] for e in default["env"] if "valueFrom" in e}
    assert names == {SETTINGS.storage_secret}


def test_role_allows_only_its_own_reconjob() -> None:
    rj = gpu_job()
    role = jobspec.build_role(rj)
    assert role["rules"] == [
        {
            "apiGroups": ["recon.dev"],
            "resources": ["reconjobs"],
            "resourceNames": ["chair-001"],
            "verbs": ["get"],
        },
        {
            "apiGroups": ["recon.dev"],
            "resources": ["reconjobs/status"],
            "resourceNames": ["chair-001"],
            "verbs": ["patch"],
        },
    ]
    binding = jobspec.build_role_binding(rj)
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "chair-001-recon", "namespace": "studio"}
    ]
