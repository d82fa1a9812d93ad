"""Generate the ReconJob CustomResourceDefinition from the pydantic models.

    python -m recon_api.crd --write   # writes crds/reconjob.yaml and the chart's copy
    python -m recon_api.crd --check   # exits 1 when either file differs from the models

The API server only accepts *structural* schemas: no $ref, no anyOf-with-null, no
uniqueItems, defaults that are plain values. pydantic's JSON schema is turned into that
shape here, so the models stay the single place where the API is described.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from recon_api.constants import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from recon_api.models import ReconJobSpec, ReconJobStatus

CRD_NAME = f"{PLURAL}.{GROUP}"
CRD_PATHS = (Path("crds/reconjob.yaml"), Path("charts/recon-operator/crds/reconjob.yaml"))
IMMUTABLE_SPEC_MESSAGE = (
    "spec is immutable: a new reconstruction is a new ReconJob (create one with another name)"
)
HEADER = (
    "# Generated from api/recon_api/models.py by `make crds`\n"
    "# (python -m recon_api.crd --write). Do not edit by hand.\n"
)

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Progress", "type": "integer", "jsonPath": ".status.progress.percent"},
    {"name": "Stage", "type": "string", "jsonPath": ".status.progress.stage"},
    {"name": "Queue", "type": "integer", "jsonPath": ".status.queuePosition"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Node", "type": "string", "jsonPath": ".status.nodeName", "priority": 1},
    {"name": "Message", "type": "string", "jsonPath": ".status.progress.message", "priority": 1},
]

# JSON-schema keywords a structural schema has no use for (or forbids).
_DROPPED_KEYS = ("title", "$defs", "uniqueItems")


class _CrdJsonSchema(GenerateJsonSchema):
    """Emits the value of `default_factory` fields, which plain JSON schema leaves out,
    because the API server should fill those defaults in too."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            schema = {**schema, "default": factory()}  # type: ignore[call-arg]
            schema.pop("default_factory")
        return super().default_schema(schema)


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Rewrite a pydantic JSON schema node into the structural form the API server accepts."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    while True:
        ref = node.pop("$ref", None)
        if ref is not None:
            # Field-level keywords (description, default) win over the referenced model's.
            node = {**copy.deepcopy(defs[ref.rsplit("/", 1)[-1]]), **node}
            continue
        branches = [b for b in node.get("anyOf", ()) if b.get("type") != "null"]
        if "anyOf" in node and len(branches) == 1:
            # Optional[X]: the field may be left out, which is all `null` meant here.
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            node = {**branches[0], **rest}
            continue
        break
    if isinstance(node.get("description"), str):
        # Docstrings wrap lines; kubectl explain re-wraps the text itself.
        node["description"] = " ".join(node["description"].split())
    if node.get("default", 0) is None:
        del node["default"]
    if isinstance(node.get("default"), dict) and node.get("properties"):
        # Nested objects default to {} so the API server then fills in their own defaults.
        node["default"] = {}
    for key in _DROPPED_KEYS:
        node.pop(key, None)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties",):
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "anyOf"):
            out[key] = _structural(value, defs)
        else:
            out[key] = value
    if "properties" in out:
        out.setdefault("type", "object")
    return out


def model_schema(model: type[ReconJobSpec] | type[ReconJobStatus]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one model, $refs inlined."""
    raw = model.model_json_schema(by_alias=True, schema_generator=_CrdJsonSchema)
    defs = raw.get("$defs", {})
    return _order(_structural(raw, defs))


def _order(node: Any) -> Any:
    """Stable, readable key order: description and type first, then the rest as generated."""
    if isinstance(node, list):
        return [_order(item) for item in node]
    if not isinstance(node, dict):
        return node
    first = [k for k in ("description", "type") if k in node]
    rest = [k for k in node if k not in first]
    return {k: _order(node[k]) for k in first + rest}


def crd_manifest() -> dict[str, Any]:
    spec_schema = model_schema(ReconJobSpec)
    spec_schema["x-kubernetes-validations"] = [
        {"rule": "self == oldSelf", "message": IMMUTABLE_SPEC_MESSAGE}
    ]
    status_schema = model_schema(ReconJobStatus)
    root = {
        "description": (
            "A GPU 3D reconstruction of a multi-view RGB-D capture stored in S3/MinIO. "
            "The operator validates the capture, queues the job and runs it as a batch/v1 "
            "Job; cancel with the recon.dev/cancel annotation (requested, then confirmed)."
        ),
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "description": "Versioned schema of this object: recon.dev/v1alpha1.",
                "type": "string",
            },
            "kind": {"description": "ReconJob.", "type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def render_crd() -> str:
    body = yaml.safe_dump(crd_manifest(), sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body


def default_root() -> Path:
    """The repository root when run from a checkout, else the current directory."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def drifted(root: Path) -> list[Path]:
    """The CRD files under `root` that differ from what the models generate."""
    expected = render_crd()
    return [
        path
        for path in CRD_PATHS
        if not (root / path).is_file() or (root / path).read_text() != expected
    ]


def write(root: Path) -> list[Path]:
    text = render_crd()
    for path in CRD_PATHS:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return list(CRD_PATHS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recon_api.crd", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write the CRD files")
    mode.add_argument("--check", action="store_true", help="exit 1 if a CRD file is stale")
    mode.add_argument("--print", action="store_true", help="print the CRD to stdout")
    parser.add_argument("--root", type=Path, default=None, help="repository root")
    args = parser.parse_args(argv)
    root: Path = args.root or default_root()
    if args.print:
        sys.stdout.write(render_crd())
        return 0
    if args.write:
        for path in write(root):
            print(f"wrote {path}")
        return 0
    stale = drifted(root)
    for path in stale:
        print(f"{path} is out of date with the models; run `make crds`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
