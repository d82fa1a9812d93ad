"""Reading an OCI archive's config and final filesystem, whiteouts applied."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from recon_stack import oci_archive


def _tar(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _archive(path: Path, config: dict[str, object], layers: list[dict[str, bytes]]) -> Path:
    blobs: dict[str, bytes] = {}

    def add(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return digest

    layer_digests = [add(_tar(layer)) for layer in layers]
    config_digest = add(json.dumps({"config": config}).encode())
    manifest = {
        "schemaVersion": 2,
        "config": {"digest": config_digest},
        "layers": [{"digest": d} for d in layer_digests],
    }
    manifest_digest = add(json.dumps(manifest).encode())
    outer = {
        "oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
        "index.json": json.dumps({"manifests": [{"digest": manifest_digest}]}).encode(),
    }
    for digest, data in blobs.items():
        outer["blobs/sha256/" + digest.split(":")[1]] = data
    path.write_bytes(_tar(outer))
    return path


def test_config_and_paths_with_whiteouts(tmp_path: Path) -> None:
    site = "opt/venv/lib/python3.11/site-packages"
    archive = _archive(
        tmp_path / "image.oci.tar",
        {"Entrypoint": ["recon", "runner"], "User": "65532:65532"},
        [
            {f"{site}/torch/__init__.py": b"", f"{site}/kopf/__init__.py": b"", "etc/a": b"1"},
            {f"{site}/.wh.kopf": b"", "etc/.wh..wh..opq": b"", "etc/b": b"2"},
        ],
    )
    config = oci_archive.image_config(archive)
    assert config["Entrypoint"] == ["recon", "runner"]
    assert config["User"] == "65532:65532"
    paths = oci_archive.image_paths(archive)
    assert oci_archive.site_packages(paths) == {"torch"}
    assert "etc/b" in paths and "etc/a" not in paths


def test_a_file_that_is_no_oci_archive_is_named(tmp_path: Path) -> None:
    path = tmp_path / "plain.tar"
    path.write_bytes(_tar({"hello": b"x"}))
    with pytest.raises(oci_archive.ArchiveError, match=r"index\.json"):
        oci_archive.image_config(path)
