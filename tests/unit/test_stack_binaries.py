"""Without Go and without binaries, the user gets one message saying what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _run_without_go(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": str(tmp_path / "empty-bin"),
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_binaries_build_without_go_names_go_and_kubebuilder_assets(tmp_path: Path) -> None:
    result = _run_without_go(tmp_path, "-m", "recon_stack.binaries")
    assert result.returncode == 1
    assert result.stderr.count("error:") == 1
    assert "Install Go 1.24 or newer" in result.stderr
    assert "KUBEBUILDER_ASSETS" in result.stderr
    assert "Traceback" not in result.stderr


def test_dev_up_without_go_fails_cleanly_and_starts_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = _run_without_go(tmp_path, "-m", "recon_cli", "dev", "up", "--state-dir", str(state))
    assert result.returncode == 1
    assert "Install Go 1.24 or newer" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not list((state / "run").glob("*.pid")) if (state / "run").exists() else True
