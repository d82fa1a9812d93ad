"""The two GitOps readers of a ReconJob, run for real: Argo CD's health check (the shipped
`health.lua`, in Lua 5.1 through lupa, as Argo CD's gopher-lua runs it) and kstatus (the
`tools/kstatus` program built from sigs.k8s.io/cli-utils), with DESIGN.md's table of what
each must say per phase.

lupa embeds the reference Lua implementation, so the script meets a real interpreter rather
than a Python reading of it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import yaml

REPO = Path(__file__).resolve().parents[2]
CHECK_DIR = REPO / "resource_customizations" / "recon.dev" / "ReconJob"
HEALTH_LUA = CHECK_DIR / "health.lua"
HEALTH_TESTS = CHECK_DIR / "health_test.yaml"
TESTDATA = CHECK_DIR / "testdata"

# DESIGN.md, "GitOps health": phase -> (kstatus verdict, Argo CD health status).
TABLE: dict[str, tuple[str, str]] = {
    "Pending": ("InProgress", "Progressing"),
    "Validating": ("InProgress", "Progressing"),
    "Queued": ("Current", "Progressing"),
    "Running": ("Current", "Progressing"),
    "Succeeded": ("Current", "Healthy"),
    "Failed": ("Failed", "Degraded"),
    "Cancelled": ("Current", "Suspended"),
}


def argocd_health(obj: Mapping[str, Any]) -> dict[str, str]:
    """{"status": ..., "message": ...} as health.lua returns it for the object."""
    runtime = lua51.LuaRuntime()
    runtime.globals().obj = runtime.table_from(dict(obj), recursive=True)
    result = runtime.execute(HEALTH_LUA.read_text())
    return {key: str(result[key]) for key in ("status", "message") if result[key] is not None}


def kstatus(binary: Path, *objects: Mapping[str, Any]) -> list[dict[str, str]]:
    """kstatus's verdict for each object: {"status", "message", "name", ...}."""
    text = "\n".join(json.dumps(o) for o in objects)
    out = subprocess.run(
        [str(binary)], input=text, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def as_captured(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object as captured for testdata: as read from the API server, less managedFields
    and kopf's bookkeeping annotations, which only make the files longer."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith("kopf.")
    }
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return {**obj, "metadata": meta}
