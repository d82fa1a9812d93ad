"""What a local image build depends on, as one content hash: the key of the image cache.

`recon dev images` rebuilds an image only when this key changes, so a warm run builds
nothing. The key covers the Dockerfile, every file of the build context that
`.dockerignore` lets through (names and bytes), the build arguments and the key of the base
image. Caches that only make a build faster (the torch wheel folder) are not inputs: the
same inputs give the same image with or without them.

Pure apart from reading the files it is given.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

KEY_LENGTH = 16


def dockerignore_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, comments and blank lines dropped."""
    patterns = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            patterns.append(stripped.rstrip("/"))
    return patterns


def is_ignored(relative: str, patterns: Sequence[str]) -> bool:
    """Whether .dockerignore excludes ``relative`` (a POSIX path in the context).

    The last matching pattern wins, and a pattern that matches a parent directory matches
    everything below it, as Docker and buildah read the file.
    """
    parts = relative.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern[1:] if negate else pattern
        if any(fnmatch.fnmatchcase(p, glob) for p in prefixes):
            ignored = not negate
    return ignored


def _may_reinclude(directory: str, patterns: Sequence[str]) -> bool:
    """Whether a negated pattern could bring back something below an ignored directory."""
    for pattern in patterns:
        if pattern.startswith("!"):
            glob = pattern[1:]
            if glob.startswith(directory + "/") or not re.match(r"^[\w.-]+(/|$)", glob):
                return True
    return False


def context_files(root: Path, patterns: Sequence[str]) -> list[str]:
    """The files of the build context under ``root``, as sorted POSIX paths.

    Ignored directories are not walked (the venv and .git hold most of the repository's
    bytes) unless a negated pattern could re-include something inside them.
    """
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath).relative_to(root).as_posix()
        base = "" if base == "." else base + "/"
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not (is_ignored(base + d, patterns) and not _may_reinclude(base + d, patterns))
        )
        for name in sorted(filenames):
            relative = base + name
            if not is_ignored(relative, patterns):
                found.append(relative)
    return sorted(found)


def digest_files(root: Path, relatives: Iterable[str]) -> str:
    """One SHA-256 over the names, modes (executable or not) and bytes of the files."""
    digest = hashlib.sha256()
    for relative in relatives:
        path = root / relative
        executable = os.access(path, os.X_OK)
        digest.update(f"{relative}\0{int(executable)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def image_key(
    dockerfile: bytes,
    context_digest: str,
    build_args: Mapping[str, str],
    base_keys: Sequence[str] = (),
) -> str:
    """The cache key of one image: a change to any input gives another key."""
    digest = hashlib.sha256()
    digest.update(hashlib.sha256(dockerfile).digest())
    digest.update(context_digest.encode())
    for name in sorted(build_args):
        digest.update(f"{name}={build_args[name]}\0".encode())
    for key in base_keys:
        digest.update(f"base:{key}\0".encode())
    return digest.hexdigest()[:KEY_LENGTH]


def base_key(suite: str, packages: Sequence[str], extra_files: Mapping[str, bytes]) -> str:
    """The cache key of a base root filesystem: its Debian suite, packages and added files
    (the machine's CA bundle, which pip inside the build needs)."""
    digest = hashlib.sha256()
    digest.update(f"{suite}\0{','.join(sorted(packages))}\0".encode())
    for name in sorted(extra_files):
        digest.update(f"{name}\0".encode() + hashlib.sha256(extra_files[name]).digest())
    return digest.hexdigest()[:KEY_LENGTH]


def dockerfile_arg_default(dockerfile: str, name: str) -> str | None:
    """The default value of ``ARG name=...`` in a Dockerfile, or None when it has none."""
    match = re.search(rf"^\s*ARG\s+{re.escape(name)}=(\S+)\s*$", dockerfile, re.M)
    return match.group(1).strip("\"'") if match else None
