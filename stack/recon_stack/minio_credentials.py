"""The local MinIO server's root user: generated once per state directory, then reused.

Reused because the MinIO data directory remembers its root user; a new one each `up` would
lock the user out of the buckets created before.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MinioCredentials:
    access_key: str
    secret_key: str


def generate() -> MinioCredentials:
    return MinioCredentials(f"recon-{secrets.token_hex(4)}", secrets.token_urlsafe(24))


def ensure(path: Path) -> MinioCredentials:
    existing = load(path)
    if existing is not None:
        return existing
    creds = generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"accessKey": creds.access_key, "secretKey": creds.secret_key}, f)
    return creds


def load(path: Path) -> MinioCredentials | None:
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return MinioCredentials(data["accessKey"], data["secretKey"])
