"""The shipped Argo CD health check, run by a real Lua 5.1 interpreter against objects
captured from the stack (testdata/) and the expectations in health_test.yaml, in the
layout Argo CD's own resource_customizations use."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gitops_health import (
    CHECK_DIR,
    HEALTH_LUA,
    HEALTH_TESTS,
    REPO,
    TABLE,
    TESTDATA,
    argocd_health,
    load_yaml,
)

CASES: list[dict[str, Any]] = load_yaml(HEALTH_TESTS)["tests"]


def phase_of(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "Pending")


@pytest.mark.parametrize("case", CASES, ids=[c["inputPath"] for c in CASES])
def test_health_test_yaml_expectations(case: dict[str, Any]) -> None:
    obj = load_yaml(CHECK_DIR / case["inputPath"])
    assert argocd_health(obj) == case["healthStatus"]


@pytest.mark.parametrize("case", CASES, ids=[c["inputPath"] for c in CASES])
def test_the_expectations_follow_the_design_table(case: dict[str, Any]) -> None:
    """health_test.yaml cannot drift from DESIGN.md: each expected status is the table's
    for the captured object's phase."""
    obj = load_yaml(CHECK_DIR / case["inputPath"])
    assert obj["kind"] == "ReconJob" and obj["apiVersion"] == "recon.dev/v1alpha1"
    assert case["healthStatus"]["status"] == TABLE[phase_of(obj)][1]


def test_every_phase_the_operator_writes_has_captured_testdata() -> None:
    phases = {phase_of(load_yaml(CHECK_DIR / c["inputPath"])) for c in CASES}
    assert phases >= set(TABLE)
    assert {p.name for p in TESTDATA.iterdir()} == {c["inputPath"].split("/", 1)[1] for c in CASES}


def test_a_failed_job_is_degraded_with_the_reason_and_message_of_failed() -> None:
    for case in CASES:
        obj = load_yaml(CHECK_DIR / case["inputPath"])
        if phase_of(obj) != "Failed":
            continue
        (failed,) = [c for c in obj["status"]["conditions"] if c["type"] == "Failed"]
        assert argocd_health(obj)["message"] == f"{failed['reason']}: {failed['message']}"


def test_an_object_from_a_newer_generation_is_progressing() -> None:
    """Argo CD must not call a job Healthy on the strength of a status written for an
    older spec."""
    case = next(c for c in CASES if c["healthStatus"]["status"] == "Healthy")
    obj = load_yaml(CHECK_DIR / case["inputPath"])
    obj["metadata"]["generation"] = obj["status"]["observedGeneration"] + 1
    health = argocd_health(obj)
    assert health["status"] == "Progressing"
    assert "generation" in health["message"]


def test_an_unknown_phase_is_unknown_not_healthy() -> None:
    obj = load_yaml(CHECK_DIR / CASES[0]["inputPath"])
    obj["status"] = {"phase": "Paused", "observedGeneration": obj["metadata"]["generation"]}
    assert argocd_health(obj) == {"status": "Unknown", "message": "Unknown phase Paused"}


def test_the_chart_and_the_readme_carry_the_shipped_check_unchanged() -> None:
    script = HEALTH_LUA.read_text()
    chart_copy = REPO / "charts" / "recon-operator" / "files" / "argocd-health.lua"
    assert chart_copy.read_text() == script
    readme = (REPO / "README.md").read_text()
    key = "resource.customizations.health.recon.dev_ReconJob: |\n"
    block = "".join("    " + line if line.strip() else line for line in script.splitlines(True))
    assert key + block in readme
