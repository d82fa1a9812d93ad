"""Read an OCI image archive (what `recon dev images` writes): its config and its files.

So the built images can be checked as the node receives them (the entrypoint, the user,
which packages the filesystem holds) without a container engine: an OCI archive is a tar of
content-addressed blobs, the image's filesystem is its layers applied in order, with
whiteout entries (``.wh.NAME``, ``.wh..wh..opq``) deleting what earlier layers added.
Standard library only: ``tarfile`` reads both the archive and its (gzip or plain) layers.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from pathlib import Path
from typing import IO, Any

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class ArchiveError(ValueError):
    """The file is not an OCI image archive of one image."""


def _blob(outer: tarfile.TarFile, digest: str) -> IO[bytes]:
    algorithm, _, value = digest.partition(":")
    try:
        f = outer.extractfile(f"blobs/{algorithm}/{value}")
    except KeyError as e:
        raise ArchiveError(f"blob {digest} is missing from the archive") from e
    if f is None:
        raise ArchiveError(f"blob {digest} is not a file")
    return f


def _json_blob(outer: tarfile.TarFile, digest: str) -> dict[str, Any]:
    value = json.load(_blob(outer, digest))
    if not isinstance(value, dict):
        raise ArchiveError(f"blob {digest} is not a JSON object")
    return value


def _manifest(outer: tarfile.TarFile, path: Path) -> dict[str, Any]:
    try:
        index_file = outer.extractfile("index.json")
    except KeyError as e:
        raise ArchiveError(f"{path}: no index.json, not an OCI image archive") from e
    if index_file is None:
        raise ArchiveError(f"{path}: index.json is not a file")
    manifests = json.load(index_file).get("manifests") or []
    if len(manifests) != 1:
        raise ArchiveError(f"{path}: holds {len(manifests)} images, expected one")
    return _json_blob(outer, manifests[0]["digest"])


def image_config(path: Path) -> dict[str, Any]:
    """The image's ``config`` object (Entrypoint, Cmd, User, Env, WorkingDir, Labels)."""
    with tarfile.open(path) as outer:
        manifest = _manifest(outer, path)
        config = _json_blob(outer, manifest["config"]["digest"])
    value = config.get("config") or {}
    return value if isinstance(value, dict) else {}


def _apply_layer(files: set[str], layer: tarfile.TarFile) -> None:
    for member in layer:
        name = posixpath.normpath(member.name.lstrip("./").lstrip("/"))
        if name == ".":
            continue
        directory, base = posixpath.split(name)
        if base == OPAQUE:
            prefix = directory + "/"
            files.difference_update({f for f in files if f.startswith(prefix)})
        elif base.startswith(WHITEOUT):
            gone = posixpath.join(directory, base[len(WHITEOUT) :])
            files.difference_update({f for f in files if f == gone or f.startswith(gone + "/")})
        else:
            files.add(name)


def image_paths(path: Path) -> set[str]:
    """Every path of the image's final filesystem, relative to its root (no leading /)."""
    files: set[str] = set()
    with tarfile.open(path) as outer:
        manifest = _manifest(outer, path)
        for layer in manifest.get("layers") or []:
            with tarfile.open(fileobj=_blob(outer, layer["digest"]), mode="r:*") as tar:
                _apply_layer(files, tar)
    return files


def site_packages(paths: set[str], venv: str = "opt/venv") -> set[str]:
    """The top-level names installed in a virtualenv of the image (``torch``, ``kopf``)."""
    names = set()
    prefix = f"{venv}/lib/"
    for p in paths:
        if p.startswith(prefix) and "/site-packages/" in p:
            rest = p.split("/site-packages/", 1)[1]
            if rest:
                names.add(rest.split("/", 1)[0])
    return names
