"""The shell lines that point a user's shell at a running stack.

`eval "$(recon dev env)"` runs them, so every value is shell-quoted; only ``$PATH`` is left
for the shell to expand.
"""

from __future__ import annotations

import shlex
from pathlib import Path


def env_lines(
    kubeconfig: Path, bin_dir: Path, minio_endpoint: str, access_key: str, secret_key: str
) -> list[str]:
    return [
        f"export KUBECONFIG={shlex.quote(str(kubeconfig))}",
        f'export PATH={shlex.quote(str(bin_dir))}:"$PATH"',
        f"export MINIO_ENDPOINT={shlex.quote(minio_endpoint)}",
        f"export MINIO_ACCESS_KEY={shlex.quote(access_key)}",
        f"export MINIO_SECRET_KEY={shlex.quote(secret_key)}",
    ]
