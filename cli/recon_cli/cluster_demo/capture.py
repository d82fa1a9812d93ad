"""A synthetic capture of a known object, uploaded where a ReconJob reads it, and the
credentials Secret the ReconJob names."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from recon_api.constants import STORAGE_CREDENTIALS_LABEL
from recon_runner.synthetic import SyntheticObject, make_object, write_capture

from recon_cli.cluster_demo.tools import Tools


def ensure_bucket(client: Any, bucket: str) -> None:
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)


def upload_dir(client: Any, root: Path, bucket: str, prefix: str) -> list[str]:
    """Every file under ``root`` to ``bucket`` under ``prefix``; returns the keys."""
    ensure_bucket(client, bucket)
    keys = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = prefix + path.relative_to(root).as_posix()
        client.fput_object(bucket, key, str(path))
        keys.append(key)
    return keys


def upload_synthetic_capture(
    client: Any,
    bucket: str,
    prefix: str,
    object_name: str,
    views: int = 6,
    size: int = 128,
) -> SyntheticObject:
    """Render ``object_name`` from ``views`` cameras at ``size`` pixels and upload the
    capture (transforms.json, images/, depth/); returns the object, the ground truth."""
    obj = make_object(object_name)
    with tempfile.TemporaryDirectory(prefix="recon-capture-") as tmp:
        write_capture(obj, Path(tmp), views=views, width=size, height=size)
        upload_dir(client, Path(tmp), bucket, prefix)
    return obj


def apply_credentials_secret(
    tools: Tools, namespace: str, access_key: str, secret_key: str, name: str = "minio-credentials"
) -> None:
    """The Secret of examples/secret-template.yaml, filled in and labelled as storage
    credentials (the operator uses no other Secret); applying it again is a no-op."""
    created = tools.kubectl(
        "create",
        "secret",
        "generic",
        name,
        "-n",
        namespace,
        f"--from-literal=accessKey={access_key}",
        f"--from-literal=secretKey={secret_key}",
        "--dry-run=client",
        "-o",
        "json",
    ).stdout
    manifest = json.loads(created)
    manifest["metadata"].setdefault("labels", {})[STORAGE_CREDENTIALS_LABEL] = "true"
    tools.kubectl("apply", "-f", "-", input=json.dumps(manifest))
