"""The sound transforms.json document that the capture contract's and the operator's
validation unit tests break one field at a time."""

from __future__ import annotations

from typing import Any

from tests.support import captures

W, H = 64, 48


def capture_document(views: int = 6) -> dict[str, Any]:
    """A valid transforms.json of ``views`` W x H frames (PNG colour and depth)."""
    return captures.transforms(views, W, H, focal=50.0)
