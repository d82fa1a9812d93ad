"""Without Go and without binaries, the user gets one message saying what to install."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from recon_stack.binaries import CLI_UTILS_VERSION, KSTATUS, BinaryError, Component, build_component


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


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain to run a build")
def test_a_failed_build_shows_the_error_and_the_full_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("GOPROXY", "off")  # the module cannot be fetched: a fast, offline failure
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "gomod"))
    bogus = Component(
        name="nothing",
        version="v0.0.1",
        binaries=("nothing",),
        module="example.invalid/nothing",
        packages=("example.invalid/nothing",),
    )
    with pytest.raises(BinaryError) as failure:
        build_component(bogus, log=lambda _message: None)
    message = str(failure.value)
    log_path = tmp_path / "cache" / "recon-operator" / "logs" / "build-nothing-v0.0.1.log"
    assert f"Full log: {log_path}" in message
    assert "building nothing v0.0.1 failed" in message
    assert "GOPROXY=off" in message  # go's own error, from the log's last lines
    assert "GOPROXY=off" in log_path.read_text()
    assert not bogus.cache_dir.exists()


def test_the_kstatus_tool_pins_the_cli_utils_version_it_is_cached_under() -> None:
    """The cache directory names CLI_UTILS_VERSION; the build uses tools/kstatus/go.mod."""
    assert KSTATUS.source is not None
    gomod = (KSTATUS.source / "go.mod").read_text()
    assert f"sigs.k8s.io/cli-utils {CLI_UTILS_VERSION}" in gomod
    assert (
        (KSTATUS.source / "go.sum").read_text().count(f"sigs.k8s.io/cli-utils {CLI_UTILS_VERSION}")
    )
    assert KSTATUS.cache_dir.name.startswith(f"kstatus-{CLI_UTILS_VERSION}-")


def test_a_build_waits_for_one_already_running_and_uses_its_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two test sessions on a fresh machine both find the cache empty: the second waits on
    the component's lock and takes the first one's binary instead of building again in
    the same `.partial` folder (with GOPROXY=off a second build would fail loudly)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("GOPROXY", "off")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "gomod"))
    component = Component(
        name="shared",
        version="v0.0.1",
        binaries=("shared",),
        module="example.invalid/shared",
        packages=("example.invalid/shared",),
    )
    lock_path = tmp_path / "cache" / "recon-operator" / "locks" / "shared-v0.0.1.lock"
    lock_path.parent.mkdir(parents=True)
    messages: list[str] = []
    result: dict[str, Path] = {}
    with lock_path.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the first build, still running
        waiter = threading.Thread(
            target=lambda: result.update(build_component(component, messages.append))
        )
        waiter.start()
        waiter.join(timeout=1.0)
        assert waiter.is_alive(), "the second build did not wait for the first"
        component.cache_dir.mkdir(parents=True)
        binary = component.cache_dir / "shared"
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
        fcntl.flock(held, fcntl.LOCK_UN)
    waiter.join(timeout=30)
    assert not waiter.is_alive()
    assert result == {"shared": binary}
    assert messages == ["shared v0.0.1 was built meanwhile by another process"]
