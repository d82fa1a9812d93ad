"""Which local command stands in for a container image.

Images cannot be pulled or run here, so the project's own images map to the code in this
checkout (the runner image to `recon runner`, the operator image to `recon operator`)
through a table kept in the repository (``images.yaml``). Tests add entries of their own
with a map file merged over the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

BUILTIN_TABLE_FILE = Path(__file__).with_name("images.yaml")

ImageTable = Mapping[str, tuple[str, ...]]

_DEFAULT_REGISTRY = "docker.io"


class ImageTableError(ValueError):
    """An image map file is malformed; the message names the file and the entry."""


class NoCommandError(ValueError):
    """A container has no `command` and its image has no local entrypoint."""


def image_repository(image: str) -> str:
    """The image's repository with tag and digest dropped, in its fully qualified form.

    ``python:3.12`` and ``docker.io/library/python`` name the same repository, so both
    spellings are normalised the way a container runtime does: a first path component
    without a dot, colon or ``localhost`` is a Docker Hub name.
    """
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    parts = name.split("/")
    first = parts[0]
    has_registry = len(parts) > 1 and ("." in first or ":" in first or first == "localhost")
    if has_registry:
        return name
    if len(parts) == 1:
        return f"{_DEFAULT_REGISTRY}/library/{name}"
    return f"{_DEFAULT_REGISTRY}/{name}"


def parse_table(document: Any, base_dir: Path, source: str) -> dict[str, tuple[str, ...]]:
    """Entries of one map document, keyed by normalised repository.

    An argument that names an existing file relative to ``base_dir`` (the map file's
    directory) is made absolute, so a map kept beside its stand-in scripts works from any
    working directory.
    """
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ImageTableError(f"{source}: expected a mapping of image -> [command, args...]")
    table: dict[str, tuple[str, ...]] = {}
    for image, entry in document.items():
        if isinstance(entry, str):
            entry = [entry]
        ok = isinstance(entry, Sequence) and entry and all(isinstance(a, str) for a in entry)
        if not isinstance(image, str) or not ok:
            raise ImageTableError(
                f"{source}: entry {image!r} must map an image name to a non-empty list "
                "of strings (the entrypoint)"
            )
        table[image_repository(image)] = tuple(_resolve_arg(a, base_dir) for a in entry)
    return table


def _resolve_arg(arg: str, base_dir: Path) -> str:
    if arg.startswith("-") or Path(arg).is_absolute():
        return arg
    candidate = base_dir / arg
    return str(candidate.resolve()) if candidate.is_file() else arg


def load_table(path: Path) -> dict[str, tuple[str, ...]]:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ImageTableError(f"cannot read image map {path}: {e}") from e
    return parse_table(document, path.parent, str(path))


def image_table(extra: Path | None = None) -> dict[str, tuple[str, ...]]:
    """The built-in table with the entries of ``extra`` (if given) merged over it."""
    table = load_table(BUILTIN_TABLE_FILE)
    if extra is not None:
        table.update(load_table(extra))
    return table


def container_argv(container: Mapping[str, Any], table: ImageTable) -> list[str]:
    """The argv a container runs: `command` or the image's entrypoint, then `args`."""
    entrypoint, from_spec = split_argv(container, table)
    return [*entrypoint, *from_spec]


def split_argv(container: Mapping[str, Any], table: ImageTable) -> tuple[list[str], list[str]]:
    """(the image's entrypoint, the argv the pod spec gives).

    This is the container runtime's rule (command replaces ENTRYPOINT, args replaces
    CMD), with the image table playing the part of the image's ENTRYPOINT. No image here
    has a CMD, so `args` alone is appended to the entrypoint. The two parts are kept apart
    because only the pod spec's part speaks of the container's filesystem: the table's
    entrypoint is a path on this machine and must never be rewritten into a volume.
    """
    command = list(container.get("command") or [])
    args = list(container.get("args") or [])
    if command:
        return [], command + args
    image = str(container.get("image") or "")
    entrypoint = table.get(image_repository(image)) if image else None
    if entrypoint is None:
        raise NoCommandError(
            f"container {container.get('name')!r} sets no command and image {image!r} "
            "has no local entrypoint in the process node's image table"
        )
    return list(entrypoint), args


class ImageTableSource:
    """The table as it stands now: built-in entries plus an optional map file.

    The map file is re-read when it changes, so a test can map a stand-in image on a node
    that is already running; a broken edit keeps the last good table (and is reported by
    the error of the pod that needed it, not by a crash).
    """

    def __init__(self, extra: Path | None = None) -> None:
        self.extra = extra
        self._stamp: tuple[int, int] | None = None
        self._table = image_table(extra if extra is not None and extra.exists() else None)

    def current(self) -> ImageTable:
        if self.extra is None:
            return self._table
        try:
            st = self.extra.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._table = image_table(self.extra if stamp is not None else None)
            self._stamp = stamp
        return self._table
