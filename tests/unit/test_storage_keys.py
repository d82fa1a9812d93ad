"""Which keys the runner fetches, and its storage retry settings."""

from __future__ import annotations

import pytest
from recon_runner.errors import InvalidInputError, RunnerError
from recon_runner.storage import RetryPolicy, as_prefix, referenced_files


def test_referenced_files_in_frame_order_normalised_and_deduplicated() -> None:
    transforms = {
        "frames": [
            {"file_path": "./images/a.png", "depth_file_path": "depth/a.png"},
            {"file_path": "images/b.png", "depth_file_path": "depth/shared.png"},
            {"file_path": "images/c.png", "depth_file_path": "depth/shared.png"},
        ]
    }
    assert referenced_files(transforms) == [
        "images/a.png",
        "depth/a.png",
        "images/b.png",
        "depth/shared.png",
        "images/c.png",
    ]


@pytest.mark.parametrize(
    "path", ["../x.png", "/etc/passwd", "images/../../x.png", "s3://other/x.png", "a\\..\\b"]
)
def test_paths_outside_the_capture_are_invalid_input(path: str) -> None:
    transforms = {"frames": [{"file_path": path, "depth_file_path": "depth/a.png"}]}
    with pytest.raises(InvalidInputError) as info:
        referenced_files(transforms)
    assert info.value.file == "transforms.json" and repr(path) in info.value.problem


@pytest.mark.parametrize(
    "transforms",
    [[], {}, {"frames": []}, {"frames": ["x"]}, {"frames": [{"file_path": "a.png"}]}],
)
def test_malformed_frames_are_invalid_input(transforms: object) -> None:
    with pytest.raises(InvalidInputError):
        referenced_files(transforms)


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
