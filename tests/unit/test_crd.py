"""The generated CRD: in step with the models, structural, and carrying the documented API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from recon_api import crd
from recon_api.models import ReconJobStatus

ROOT = Path(__file__).resolve().parents[2]


def version() -> dict[str, Any]:
    versions = crd.crd_manifest()["spec"]["versions"]
    assert len(versions) == 1
    return versions[0]


def schema() -> dict[str, Any]:
    return version()["schema"]["openAPIV3Schema"]


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node with its dotted path."""
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for name, sub in node.get("properties", {}).items():
            out.extend(walk(sub, f"{path}.{name}"))
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                out.extend(walk(node[key], f"{path}[{key}]"))
    return out


def test_checked_in_crds_match_the_models() -> None:
    stale = crd.drifted(ROOT)
    assert stale == [], f"{stale} drifted from the models: run `make crds`"
    ours = (ROOT / "crds/reconjob.yaml").read_text()
    assert (ROOT / "charts/recon-operator/crds/reconjob.yaml").read_text() == ours


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    assert crd.main(["--check", "--root", str(tmp_path)]) == 1
    assert crd.main(["--write", "--root", str(tmp_path)]) == 0
    assert crd.main(["--check", "--root", str(tmp_path)]) == 0
    chart = tmp_path / "charts/recon-operator/crds/reconjob.yaml"
    chart.write_text(chart.read_text().replace("default: 6", "default: 7"))
    assert crd.drifted(tmp_path) == [Path("charts/recon-operator/crds/reconjob.yaml")]
    assert crd.main(["--check", "--root", str(tmp_path)]) == 1


def test_names_and_scope() -> None:
    manifest = yaml.safe_load(crd.render_crd())
    assert manifest["metadata"]["name"] == "reconjobs.recon.dev"
    spec = manifest["spec"]
    assert spec["group"] == "recon.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "ReconJob",
        "listKind": "ReconJobList",
        "plural": "reconjobs",
        "singular": "reconjob",
        "shortNames": ["rj"],
    }
    v = version()
    assert (v["name"], v["served"], v["storage"]) == ("v1alpha1", True, True)
    assert v["subresources"] == {"status": {}}


def test_printer_columns_in_documented_order() -> None:
    columns = [
        (c["name"], c["jsonPath"], c.get("priority", 0))
        for c in version()["additionalPrinterColumns"]
    ]
    assert columns == [
        ("Phase", ".status.phase", 0),
        ("Progress", ".status.progress.percent", 0),
        ("Stage", ".status.progress.stage", 0),
        ("Queue", ".status.queuePosition", 0),
        ("Age", ".metadata.creationTimestamp", 0),
        ("Node", ".status.nodeName", 1),
        ("Message", ".status.progress.message", 1),
    ]


def test_spec_is_immutable_by_cel_rule() -> None:
    rules = schema()["properties"]["spec"]["x-kubernetes-validations"]
    assert rules[0]["rule"] == "self == oldSelf"
    assert "new ReconJob" in rules[0]["message"]


def test_schema_is_structural() -> None:
    for path, node in walk(schema()):
        assert "$ref" not in node, path
        assert "uniqueItems" not in node, path
        assert "title" not in node, path
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            continue
        assert "anyOf" not in node and "oneOf" not in node, path
        assert node.get("type") in ("object", "array", "string", "integer", "number", "boolean"), (
            path
        )
        named_field = path.startswith((".spec", ".status")) and not path.endswith("]")
        if named_field:
            assert node.get("description"), f"{path} has no description"
            assert "\n" not in node["description"], path


def test_defaults_bounds_and_enums_reach_the_api_server() -> None:
    spec = schema()["properties"]["spec"]
    props = spec["properties"]
    assert spec["required"] == ["input"]
    assert props["input"]["required"] == ["bucket"]
    views = props["input"]["properties"]["expectedViews"]
    assert (views["default"], views["minimum"]) == (6, 1)
    assert props["output"]["default"] == {}
    assert props["output"]["properties"]["formats"]["default"] == ["glb"]
    assert props["output"]["properties"]["formats"]["items"]["enum"] == ["glb", "obj", "ply"]
    assert props["output"]["properties"]["formats"]["x-kubernetes-list-type"] == "set"
    preset = props["reconstruction"]["properties"]["preset"]
    assert (preset["enum"], preset["default"]) == (["draft", "standard", "high"], "standard")
    res = props["resources"]["properties"]
    assert (res["gpus"]["default"], res["cpu"]["default"], res["memory"]["default"]) == (
        1,
        "4",
        "16Gi",
    )
    assert "pattern" in res["memory"]
    assert (props["timeoutSeconds"]["default"], props["retries"]["default"]) == (3600, 2)
    assert props["priority"]["default"] == 0


def test_status_schema_keeps_every_status_field() -> None:
    """Fields missing from the schema are pruned on write, silently losing status."""
    status = schema()["properties"]["status"]["properties"]
    aliases = {f.alias or name for name, f in ReconJobStatus.model_fields.items()}
    assert set(status) == aliases
    assert set(status) >= {
        "phase",
        "queuePosition",
        "progress",
        "conditions",
        "jobName",
        "nodeName",
        "attempts",
        "startedAt",
        "finishedAt",
        "cancel",
        "outputs",
        "metrics",
        "observedGeneration",
    }
    assert set(status["progress"]["properties"]) == {
        "percent",
        "stage",
        "message",
        "updatedAt",
        "etaSeconds",
    }
    assert set(status["conditions"]["items"]["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    assert set(status["cancel"]["properties"]) == {"requestedAt", "expiresAt"}
    assert set(status["outputs"]["properties"]) == {"mesh", "preview", "metrics"}
    assert set(status["metrics"]["properties"]) == {
        "vertices",
        "faces",
        "seconds",
        "psnr",
        "maskIoU",
        "depthErrorMm",
        "observedFraction",
        "filledFraction",
    }
