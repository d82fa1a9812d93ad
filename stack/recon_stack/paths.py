"""Where the stack keeps its cache (binaries, build logs) and its default state directory."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recon-operator"


def default_state_dir() -> Path:
    return cache_root() / "stack" / "default"
