"""The image table: which local command stands in for a container image."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from recon_stack.node.images import (
    ImageTableError,
    ImageTableSource,
    NoCommandError,
    container_argv,
    image_repository,
    image_table,
    load_table,
)


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("ghcr.io/recon-operator/recon-runner:0.1.0", "ghcr.io/recon-operator/recon-runner"),
        ("ghcr.io/recon-operator/recon-runner@sha256:abc", "ghcr.io/recon-operator/recon-runner"),
        ("ghcr.io/recon-operator/recon-runner:1@sha256:ab", "ghcr.io/recon-operator/recon-runner"),
        ("python:3.12", "docker.io/library/python"),
        ("docker.io/library/python", "docker.io/library/python"),
        ("bitnami/kubectl:1.34", "docker.io/bitnami/kubectl"),
        ("localhost:5000/tools/x:dev", "localhost:5000/tools/x"),
        ("registry.local:5000/x", "registry.local:5000/x"),
    ],
)
def test_repository_ignores_tags_and_digests_and_normalises_docker_hub(
    image: str, repository: str
) -> None:
    assert image_repository(image) == repository


def test_project_images_run_the_local_entrypoints_with_their_args() -> None:
    table = image_table()
    runner = {"name": "runner", "image": "ghcr.io/recon-operator/recon-runner:v9", "args": ["-v"]}
    operator = {"name": "op", "image": "ghcr.io/recon-operator/recon-operator:latest"}
    assert container_argv(runner, table) == ["recon", "runner", "-v"]
    assert container_argv(operator, table) == ["recon", "operator"]


def test_a_command_replaces_the_entrypoint_as_in_a_container_runtime() -> None:
    table = image_table()
    c = {
        "name": "c",
        "image": "ghcr.io/recon-operator/recon-runner:v1",
        "command": ["python", "-c"],
        "args": ["print(1)"],
    }
    assert container_argv(c, table) == ["python", "-c", "print(1)"]


def test_an_unknown_image_without_command_cannot_run() -> None:
    with pytest.raises(NoCommandError, match=r"unknown\.example/thing:1"):
        container_argv({"name": "c", "image": "unknown.example/thing:1"}, image_table())


def test_map_file_entries_override_and_resolve_paths_next_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "standin.py").write_text("print('standing in')\n")
    extra = tmp_path / "map.yaml"
    extra.write_text(
        "ghcr.io/recon-operator/recon-standin: [python, standin.py, --flag]\n"
        "ghcr.io/recon-operator/recon-runner: [python, -m, fake_runner]\n"
    )
    table = image_table(extra)
    standin = {"name": "s", "image": "ghcr.io/recon-operator/recon-standin:test"}
    assert container_argv(standin, table) == ["python", str(tmp_path / "standin.py"), "--flag"]
    runner = {"name": "r", "image": "ghcr.io/recon-operator/recon-runner:1"}
    assert container_argv(runner, table) == ["python", "-m", "fake_runner"]
    # Built-in entries not overridden are kept.
    operator = {"name": "o", "image": "ghcr.io/recon-operator/recon-operator:1"}
    assert container_argv(operator, table) == ["recon", "operator"]


@pytest.mark.parametrize("text", ["- just\n- a list\n", "img: []\n", "img: [1, 2]\n"])
def test_a_malformed_map_file_is_named_in_the_error(tmp_path: Path, text: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ImageTableError, match=r"bad\.yaml"):
        load_table(bad)


def test_a_map_file_is_picked_up_when_it_appears_or_changes(tmp_path: Path) -> None:
    extra = tmp_path / "image-map.yaml"
    source = ImageTableSource(extra)
    standin = {"name": "s", "image": "example.org/standin:1"}
    with pytest.raises(NoCommandError):
        container_argv(standin, source.current())
    extra.write_text("example.org/standin: [echo, one]\n")
    assert container_argv(standin, source.current()) == ["echo", "one"]
    extra.write_text("example.org/standin: [echo, two, more]\n")
    later = time.time() + 5
    os.utime(extra, (later, later))
    assert container_argv(standin, source.current()) == ["echo", "two", "more"]
