"""The real MinIO client, noting every GET it is asked for (key, offset, length), so a test
can see what was read, and that no image or oversized file was downloaded whole."""

from __future__ import annotations

from typing import Any

from minio import Minio


class RecordingMinio(Minio):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gets: list[tuple[str, int, int]] = []

    @classmethod
    def plain(cls, endpoint: str, access_key: str, secret_key: str) -> RecordingMinio:
        """One for a plain-HTTP endpoint, as the stack's MinIO is."""
        return cls(endpoint, access_key=access_key, secret_key=secret_key, secure=False)

    def get_object(self, bucket_name: str, object_name: str, *args: Any, **kwargs: Any) -> Any:
        self.gets.append((object_name, kwargs.get("offset", 0), kwargs.get("length", 0)))
        return super().get_object(bucket_name, object_name, *args, **kwargs)
