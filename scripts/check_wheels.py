"""Is a folder of wheels complete for the GPU check: each pinned package there once, at its
pinned version, and every requirement of each wheel met by another wheel or by what the GPU
machine already has?

`pip download --no-deps` fetches exactly the pinned wheels and nothing they need, so a
requirement nobody listed only shows on the GPU machine, as an ImportError, when there is
no network left to fix it. This reads each wheel's METADATA and evaluates its
Requires-Dist for the target interpreter with `packaging` (the library pip itself uses for
markers and specifiers) instead of re-implementing either.

    python scripts/check_wheels.py --wheels .whl --list scripts/gpu-check-wheels.txt

With `--compare-installed` it also warns where the running environment (the development
`.venv`) has another version than the list pins, so the GPU machine runs what the tests ran.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.parser import HeaderParser
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

# What the GPU machine has before anything is installed (with their own requirements).
PROVIDED = frozenset({"torch", "numpy", "scipy", "scikit-image", "pillow"})

# CPython 3.12 on x86_64 Linux: the interpreter the wheels are downloaded for.
TARGET_ENVIRONMENT = {
    "implementation_name": "cpython",
    "implementation_version": "3.12.0",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.12.0",
    "python_version": "3.12",
    "sys_platform": "linux",
    "extra": "",
}


@dataclass(frozen=True)
class Wheel:
    file: str
    name: str  # canonical
    version: Version
    requires: tuple[str, ...]


def read_wheel(path: Path) -> Wheel:
    """Name, version and Requires-Dist from the wheel's `*.dist-info/METADATA`."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            raise ValueError(f"{path.name}: expected one .dist-info/METADATA, found {len(names)}")
        text = archive.read(names[0]).decode("utf-8")
    headers = HeaderParser().parsestr(text)
    return Wheel(
        file=path.name,
        name=canonicalize_name(headers["Name"]),
        version=Version(headers["Version"]),
        requires=tuple(headers.get_all("Requires-Dist") or ()),
    )


def pinned(lines: Iterable[str]) -> dict[str, Version]:
    """`NAME==VERSION` lines of the wheel list (comments and blank lines skipped)."""
    pins: dict[str, Version] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise ValueError(f"line {number}: {line!r} must pin one version with ==")
        pins[canonicalize_name(requirement.name)] = Version(specs[0].version)
    return pins


def problems(
    wheels: Iterable[Wheel],
    pins: Mapping[str, Version],
    provided: frozenset[str] = PROVIDED,
    environment: Mapping[str, str] = TARGET_ENVIRONMENT,
) -> list[str]:
    """Every way the folder falls short, one line each; empty when it is complete."""
    found: list[str] = []
    by_name: dict[str, Wheel] = {}
    for wheel in wheels:
        if wheel.name in by_name:
            found.append(f"{wheel.name}: two wheels, {by_name[wheel.name].file} and {wheel.file}")
        by_name[wheel.name] = wheel
    for name, version in sorted(pins.items()):
        carried = by_name.get(name)
        if carried is None:
            found.append(f"{name}=={version}: pinned but no wheel")
        elif carried.version != version:
            found.append(f"{name}: pinned {version}, wheel {carried.file} is {carried.version}")
    for name in sorted(set(by_name) - set(pins)):
        found.append(f"{by_name[name].file}: not on the list")
    for wheel in sorted(by_name.values(), key=lambda w: w.name):
        for line in wheel.requires:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate(
                dict(environment)
            ):
                continue
            needed = canonicalize_name(requirement.name)
            if needed in provided:
                continue
            have = by_name.get(needed)
            if have is None:
                found.append(f"{wheel.file}: needs {line!r}, which no wheel provides")
            elif not requirement.specifier.contains(have.version, prereleases=True):
                found.append(f"{wheel.file}: needs {line!r}, but {have.file} is {have.version}")
    return found


def drift(pins: Mapping[str, Version], installed: Callable[[str], str | None]) -> list[str]:
    """Pins whose version differs from `installed(name)` (None: not installed there)."""
    found = []
    for name, version in sorted(pins.items()):
        have = installed(name)
        if have is None:
            found.append(f"{name}: pinned {version}, not installed here")
        elif Version(have) != version:
            found.append(f"{name}: pinned {version}, installed here {have}")
    return found


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, default=Path(".whl"))
    parser.add_argument("--list", type=Path, default=Path("scripts/gpu-check-wheels.txt"))
    parser.add_argument("--compare-installed", action="store_true")
    args = parser.parse_args(argv)
    pins = pinned(args.list.read_text().splitlines())
    if args.compare_installed:
        for line in drift(pins, installed_version):
            print(f"warning: {line}", file=sys.stderr)
    files = sorted(args.wheels.glob("*.whl"))
    if not files:
        print(f"error: no wheels in {args.wheels}/", file=sys.stderr)
        return 1
    found = problems([read_wheel(f) for f in files], pins)
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    if not found:
        print(f"{len(files)} wheels in {args.wheels}/: every pin present, every requirement met")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
