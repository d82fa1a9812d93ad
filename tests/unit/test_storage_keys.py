"""Which keys the runner fetches, and its storage retry settings."""

from __future__ import annotations

import json

import pytest
from recon_runner.errors import InvalidInputError, RunnerError
from recon_runner.pod.storage import RetryPolicy, as_prefix, referenced_files

from tests.support import captures


def transforms(*frames: dict[str, object]) -> bytes:
    """A transforms.json of these frames (at the identity pose unless they say otherwise)."""
    listed = [{"transform_matrix": captures.IDENTITY, **f} for f in frames]
    return json.dumps({**captures.transforms(0), "frames": listed}).encode()


def test_referenced_files_in_frame_order_normalised_and_deduplicated() -> None:
    raw = transforms(
        {"file_path": "./images/a.jpg", "depth_file_path": "depth/a.png"},
        {
            "file_path": "images/b.png",
            "depth_file_path": "depth/shared.png",
            "mask_path": "masks/b.png",
            "confidence_path": "confidence/b.png",
        },
        {"file_path": "images/c.png", "depth_file_path": "depth/shared.png"},
    )
    assert referenced_files(raw) == [
        "images/a.jpg",
        "depth/a.png",
        "images/b.png",
        "depth/shared.png",
        "masks/b.png",
        "confidence/b.png",
        "images/c.png",
    ]


def test_a_document_the_contract_refuses_is_invalid_input_before_any_download() -> None:
    """The rules themselves are the capture contract's (test_capture_layout); the transfer
    refuses what it refuses, naming the field."""
    raw = transforms({"file_path": "../x.png", "depth_file_path": "depth/a.png"})
    with pytest.raises(InvalidInputError) as info:
        referenced_files(raw)
    assert info.value.file == "transforms.json: frames[0].file_path"
    assert "'../x.png'" in info.value.problem
    with pytest.raises(InvalidInputError) as info:
        referenced_files(b"{not json")
    assert info.value.file == "transforms.json" and "not valid JSON" in info.value.problem


def test_prefix_names_a_folder() -> None:
    assert as_prefix("") == ""
    assert as_prefix("chair") == "chair/"
    assert as_prefix("chair/") == "chair/"


def test_retry_policy_from_environment() -> None:
    policy = RetryPolicy.from_env(
        {"RECON_STORAGE_RETRIES": "2", "RECON_STORAGE_BACKOFF_SECONDS": "0.5"}
    )
    assert (policy.attempts, policy.backoff) == (2, 0.5)
    assert RetryPolicy.from_env({}) == RetryPolicy()
    with pytest.raises(RunnerError, match="retry"):
        RetryPolicy.from_env({"RECON_STORAGE_RETRIES": "many"})
