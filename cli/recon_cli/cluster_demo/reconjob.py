"""examples/reconjob.yaml as a user applies it, with the few changes a run here needs.

The example asks for the `standard` preset and a 16Gi pod; on the local stack's CPU that
takes minutes, so the demo and the tests keep everything else and change only what they
must: the namespace, where the capture and outputs live, and the quality settings.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from recon_cli.cluster_demo.tools import Tools, get_json

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "reconjob.yaml"

Manifest = dict[str, Any]


def example() -> Manifest:
    doc: Manifest = yaml.safe_load(EXAMPLE.read_text())
    return doc


def customised(
    base: Manifest,
    *,
    name: str | None = None,
    namespace: str | None = None,
    input_prefix: str | None = None,
    output_prefix: str | None = None,
    reconstruction: dict[str, Any] | None = None,
) -> Manifest:
    """A copy of ``base`` with only the given fields replaced."""
    doc = copy.deepcopy(base)
    meta, spec = doc["metadata"], doc["spec"]
    if name is not None:
        meta["name"] = name
    if namespace is not None:
        meta["namespace"] = namespace
    if input_prefix is not None:
        spec["input"]["prefix"] = input_prefix
    if output_prefix is not None:
        spec["output"]["prefix"] = output_prefix
    if reconstruction is not None:
        spec["reconstruction"] = {**spec.get("reconstruction", {}), **reconstruction}
    return doc


def to_yaml(doc: Manifest) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


def apply(tools: Tools, doc: Manifest, *extra: str) -> str:
    """`kubectl apply -f -` of one manifest (``extra``: e.g. --server-side); kubectl's
    report, such as `reconjob.recon.dev/chair-001 created` or `... unchanged`."""
    return tools.kubectl("apply", *extra, "-f", "-", input=to_yaml(doc)).stdout.strip()


def get(tools: Tools, namespace: str, name: str) -> Manifest:
    return get_json(tools, "reconjob", name, "-n", namespace)


def condition(job: Manifest, type_: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") == type_:
            return dict(cond)
    return None
