"""The image cache key: what the local image builds depend on, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from recon_stack import image_inputs

ROOT = Path(__file__).resolve().parents[2]


def patterns() -> list[str]:
    return image_inputs.dockerignore_patterns((ROOT / ".dockerignore").read_text())


def test_the_context_is_the_metadata_and_the_python_sources_only() -> None:
    files = list(image_inputs.context_files(ROOT, patterns()))
    assert "pyproject.toml" in files
    assert "stack/recon_stack/image_inputs.py" in files
    assert "runner/recon_runner/pod/cli.py" in files
    tops = {f.split("/")[0] for f in files}
    assert tops == {"pyproject.toml", "api", "cli", "operator", "runner", "stack"}
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert files == sorted(files)


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("tests/unit/x.py", True),
        (".venv/bin/python", True),
        ("Dockerfile.runner", True),
        ("api/recon_api/models.py", False),
        ("api/recon_api/__pycache__/models.cpython-311.pyc", True),
        ("pyproject.toml", False),
    ],
)
def test_dockerignore_reads_as_buildah_reads_it(path: str, ignored: bool) -> None:
    assert image_inputs.is_ignored(path, patterns()) is ignored


def _tree(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("A = 1\n")
    (root / "notes.txt").write_text("not in the image\n")
    (root / ".dockerignore").write_text("*\n!pkg/\n")
    return root


def _key(root: Path, dockerfile: bytes = b"FROM x\n", args: dict[str, str] | None = None) -> str:
    pats = image_inputs.dockerignore_patterns((root / ".dockerignore").read_text())
    digest = image_inputs.digest_files(root, image_inputs.context_files(root, pats))
    return image_inputs.image_key(dockerfile, digest, args or {"BASE": "base"}, ["b1"])


def test_the_key_changes_with_each_input_and_only_with_them(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    key = _key(root)
    assert _key(root) == key
    (root / "notes.txt").write_text("edited, but outside the context\n")
    assert _key(root) == key
    (root / "pkg" / "a.py").write_text("A = 2\n")
    edited = _key(root)
    assert edited != key
    (root / "pkg" / "b.py").write_text("")
    assert _key(root) != edited
    assert _key(root, dockerfile=b"FROM y\n") != _key(root)
    assert _key(root, args={"BASE": "base", "X": "1"}) != _key(root)
    pats = image_inputs.dockerignore_patterns((root / ".dockerignore").read_text())
    digest = image_inputs.digest_files(root, image_inputs.context_files(root, pats))
    assert image_inputs.image_key(b"FROM x\n", digest, {"BASE": "base"}, ["b2"]) != _key(root)


def test_the_base_key_follows_packages_and_the_ca_bundle() -> None:
    key = image_inputs.base_key("bookworm", ["python3"], {"ca.crt": b"one"})
    assert image_inputs.base_key("bookworm", ["python3"], {"ca.crt": b"one"}) == key
    assert image_inputs.base_key("bookworm", ["python3"], {"ca.crt": b"two"}) != key
    assert image_inputs.base_key("bookworm", ["python3", "g++"], {"ca.crt": b"one"}) != key
    assert image_inputs.base_key("trixie", ["python3"], {"ca.crt": b"one"}) != key


def test_the_runner_dockerfile_pins_torch_where_the_wheel_download_reads_it() -> None:
    text = (ROOT / "Dockerfile.runner").read_text()
    assert image_inputs.dockerfile_arg_default(text, "TORCH_VERSION") == "2.15.0"
    assert image_inputs.dockerfile_arg_default(text, "NVDIFFRAST_PRECOMPILE") == "1"
    assert image_inputs.dockerfile_arg_default(text, "NO_SUCH_ARG") is None
