"""The GPU check's pure parts: the wheel list and its completeness check, and the timing's
run budgeting, phone-style options and targets."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from benchmarks import runner_timing
from scripts import check_wheels

ROOT = Path(__file__).resolve().parents[2]
WHEEL_LIST = ROOT / "scripts" / "gpu-check-wheels.txt"


def _pins() -> dict[str, Version]:
    return check_wheels.pinned(WHEEL_LIST.read_text().splitlines())


def _write_wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    stem = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{stem}-py3-none-any.whl"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {r}" for r in requires]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            f"{name.replace('-', '_')}-{version}.dist-info/METADATA", "\n".join(metadata)
        )
    return path


def test_every_runner_dependency_the_gpu_machine_lacks_is_pinned():
    """A package added to the core or the runner extra must reach the GPU machine too."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = project["dependencies"] + project["optional-dependencies"]["runner"]
    pins = _pins()
    for line in needed:
        name = canonicalize_name(Requirement(line).name)
        if name in check_wheels.PROVIDED:
            continue
        assert name in pins, f"{name} (pyproject.toml) is missing from {WHEEL_LIST.name}"
        assert Requirement(line).specifier.contains(pins[name]), f"{name}=={pins[name]} vs {line}"


def test_ninja_is_pinned_as_the_runner_image_builds_nvdiffrast():
    dockerfile = (ROOT / "Dockerfile.runner").read_text()
    image_pin = re.search(r'"ninja==([^"]+)"', dockerfile)
    assert image_pin is not None
    assert _pins()["ninja"] == Version(image_pin.group(1))


def test_the_list_pins_one_version_per_line():
    with pytest.raises(ValueError, match="line 2: 'numpy>=1' must pin one version"):
        check_wheels.pinned(["# comment", "numpy>=1"])
    assert check_wheels.pinned(["Foo_Bar==1.0  # why", ""]) == {"foo-bar": Version("1.0")}


def test_a_complete_folder_has_no_problems(tmp_path):
    wheels = [
        check_wheels.read_wheel(_write_wheel(tmp_path, "a", "1.0", ["b>=2", "numpy"])),
        check_wheels.read_wheel(_write_wheel(tmp_path, "b", "2.1", [])),
    ]
    pins = {"a": Version("1.0"), "b": Version("2.1")}
    assert check_wheels.problems(wheels, pins) == []


def test_each_shortfall_is_named(tmp_path):
    wheels = [
        check_wheels.read_wheel(
            _write_wheel(
                tmp_path,
                "a",
                "1.0",
                [
                    "b>=3",  # carried, too old
                    "c",  # not carried
                    'd; python_version < "3.12"',  # not for 3.12: ignored
                    'e; extra == "speedups"',  # an extra nobody asks for: ignored
                    "torch>=2",  # the machine has it
                ],
            )
        ),
        check_wheels.read_wheel(_write_wheel(tmp_path, "b", "2.1", [])),
        check_wheels.read_wheel(_write_wheel(tmp_path, "stray", "0.1", [])),
    ]
    pins = {"a": Version("1.1"), "b": Version("2.1"), "f": Version("1.0")}
    found = check_wheels.problems(wheels, pins)
    assert found == [
        "a: pinned 1.1, wheel a-1.0-py3-none-any.whl is 1.0",
        "f==1.0: pinned but no wheel",
        "stray-0.1-py3-none-any.whl: not on the list",
        "a-1.0-py3-none-any.whl: needs 'b>=3', but b-2.1-py3-none-any.whl is 2.1",
        "a-1.0-py3-none-any.whl: needs 'c', which no wheel provides",
    ]


def test_drift_from_the_environment_is_reported():
    pins = {"a": Version("1.0"), "b": Version("2.0"), "c": Version("3.0")}
    installed = {"a": "1.0", "b": "2.1"}
    assert check_wheels.drift(pins, installed.get) == [
        "b: pinned 2.0, installed here 2.1",
        "c: pinned 3.0, not installed here",
    ]


def test_the_first_run_always_happens_and_later_ones_only_within_the_budget():
    fits = runner_timing.another_run_fits
    assert fits(0, 5, last_seconds=100.0, now=50.0, until=10.0)  # one figure, whatever it costs
    assert fits(1, 5, last_seconds=4.0, now=10.0, until=14.0)
    assert not fits(1, 5, last_seconds=4.0, now=10.5, until=14.0)
    assert not fits(5, 5, last_seconds=0.1, now=0.0, until=100.0)


def test_median_of_runs():
    assert runner_timing.median_of([3.0, 1.0, 2.0]) == 2.0
    assert runner_timing.median_of([4.0, 1.0]) == 2.5


def test_the_phone_style_options_are_what_the_synthetic_writer_offers():
    from recon_runner.synthetic import writer

    options = runner_timing.capture_options("phone")
    assert options.applied["depth_noise"] == runner_timing.PHONE_DEPTH_NOISE
    style = getattr(writer, "CaptureStyle", None)
    if style is None:
        assert "style" not in options.kwargs
        assert options.not_applied == sorted(runner_timing.PHONE_STYLE)
    else:
        fields = {f.name for f in dataclasses.fields(style)}
        assert set(options.not_applied) == set(runner_timing.PHONE_STYLE) - fields
        for name in set(runner_timing.PHONE_STYLE) & fields:
            assert getattr(options.kwargs["style"], name) == runner_timing.PHONE_STYLE[name]
    assert runner_timing.capture_options("clean").kwargs == {}
    with pytest.raises(ValueError, match="unknown case 'lab'"):
        runner_timing.capture_options("lab")


def test_the_speed_target_applies_to_standard_on_cuda_at_512():
    records: list[dict[str, object]] = [
        {"case": "clean", "preset": "standard", "median_seconds": 8.0},
        {"case": "phone", "preset": "standard", "median_seconds": 12.0},
        {"case": "broken", "error": "RuntimeError: x"},
    ]
    assert runner_timing.targets(records, "cuda", 512) == [
        {"case": "clean", "target": "median at most 10 s", "met": True},
        {"case": "phone", "target": "median at most 10 s", "met": False},
    ]
    assert runner_timing.targets(records, "cpu", 512) == []
    assert runner_timing.targets(records, "cuda", 64) == []
