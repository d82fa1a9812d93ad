"""Build the project's two images locally from its Dockerfiles: the edge that runs buildah.

No registry is reachable from the machines the stack targets, so everything an image is
made of comes from Debian's packages and PyPI:

* the base is a Debian bookworm root filesystem made by ``mmdebstrap`` (Python 3.11, the
  version of the production bases), with the machine's CA bundle added so that pip inside
  the build trusts the same servers as pip on the host, committed with buildah;
* both images are built by ``buildah bud --isolation chroot`` from the working tree's
  ``Dockerfile.operator`` and ``Dockerfile.runner`` with the base given as a build
  argument, and exported as uncompressed OCI archives (compressing gigabytes of torch costs
  minutes and saves nothing on a local disk) that the node's containerd imports;
* torch and its CUDA wheels (about 3 GB) are downloaded once by the host's pip into a wheel
  folder of the cache, which the runner build mounts and finds through ``PIP_FIND_LINKS``.

Each image is cached under its content key (`image_inputs.image_key`), so a warm run builds
nothing. buildah keeps its own storage under the cache (overlay driver by default: vfs
copies every layer in full, which for the runner's multi-GB layers costs minutes); set
``RECON_BUILDAH_STORAGE_DRIVER=vfs`` where overlay mounts are not available.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from recon_stack import image_inputs
from recon_stack.paths import cache_root

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_SUITE = "bookworm"
# Python 3.11 as in the production bases; python-is-python3 gives the `python` the
# operator's Dockerfile calls; the rest of Debian's minbase is what apt needs.
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3")
BASE_REPOSITORY = "localhost/recon-base"
CA_BUNDLE_IN_IMAGE = "/etc/ssl/certs/ca-certificates.crt"
# Numbers of the manylinux tags a Linux x86_64 machine with glibc 2.28 or newer accepts,
# for `pip download` on a host whose own Python is not the image's.
_MANYLINUX = (
    "manylinux_2_28",
    "manylinux_2_27",
    "manylinux_2_26",
    "manylinux_2_25",
    "manylinux_2_24",
    "manylinux_2_18",
    "manylinux_2_17",
    "manylinux2014",
    "manylinux_2_12",
    "manylinux2010",
    "manylinux_2_5",
    "manylinux1",
)
IMAGE_PYTHON = "3.11"
LOG_TAIL_LINES = 20


class ImageBuildError(RuntimeError):
    """An image could not be built; the message names the step and its log."""


@dataclass(frozen=True)
class ImageSpec:
    """One of the project's images and how the local build differs from production."""

    name: str
    dockerfile: str
    repository: str
    # Build argument name -> "base" (the local base's reference) or a literal value.
    local_args: Mapping[str, str] = field(default_factory=dict)
    needs_wheels: bool = False


OPERATOR = ImageSpec(
    name="operator",
    dockerfile="Dockerfile.operator",
    repository="localhost/recon-operator",
    local_args={"BASE": "base"},
)
RUNNER = ImageSpec(
    name="runner",
    dockerfile="Dockerfile.runner",
    repository="localhost/recon-runner",
    local_args={
        "BUILD_BASE": "base",
        "RUNTIME_BASE": "base",
        "NVDIFFRAST_PRECOMPILE": "0",
        "PIP_FIND_LINKS": "/wheels",
    },
    needs_wheels=True,
)
IMAGES = (OPERATOR, RUNNER)


@dataclass(frozen=True)
class BuiltImage:
    """An image in the cache: its reference, key and the OCI archive containerd imports."""

    name: str
    ref: str
    key: str
    archive: Path
    built_now: bool
    seconds: float
    size_bytes: int


def images_dir() -> Path:
    return cache_root() / "images"


def logs_dir() -> Path:
    return cache_root() / "logs"


def _buildah_base_cmd() -> list[str]:
    root = cache_root() / "buildah"
    driver = os.environ.get("RECON_BUILDAH_STORAGE_DRIVER", "overlay")
    return [
        "buildah",
        "--root",
        str(root / "storage"),
        "--runroot",
        str(root / "run"),
        "--storage-driver",
        driver,
    ]


def host_ca_bundle() -> Path | None:
    """The CA bundle this machine's pip trusts (PIP_CERT and friends, else the system's)."""
    for variable in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(variable)
        if value and Path(value).is_file():
            return Path(value)
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    return system if system.is_file() else None


@contextmanager
def _lock(name: str) -> Iterator[None]:
    """One build of ``name`` at a time on this machine; later callers reuse its result."""
    path = cache_root() / "locks" / f"image-{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class _Steps:
    """Runs the commands of one build into one log file; a failure names the log."""

    def __init__(self, what: str, log_path: Path) -> None:
        self.what = what
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("")

    def run(self, *args: str, capture: bool = False) -> str:
        with self.log_path.open("a") as out:
            out.write(f"$ {' '.join(args)}\n")
            out.flush()
            try:
                proc = subprocess.run(
                    args,
                    cwd=REPO_ROOT,
                    stdout=subprocess.PIPE if capture else out,
                    stderr=out,
                    text=True,
                    check=False,
                )
            except FileNotFoundError as e:
                raise ImageBuildError(
                    f"{self.what}: `{args[0]}` is not installed; run "
                    "scripts/install-node-packages.sh (or `make node-packages`)"
                ) from e
        if proc.returncode != 0:
            tail = self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            raise ImageBuildError(
                f"{self.what} failed (`{' '.join(args[:4])} ...` exited {proc.returncode}). "
                "Last lines:\n  " + "\n  ".join(tail) + f"\nFull log: {self.log_path}"
            )
        return proc.stdout or ""


def _buildah_has_image(ref: str) -> bool:
    proc = subprocess.run(
        [*_buildah_base_cmd(), "inspect", "--type", "image", ref],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def base_image_key() -> tuple[str, Path | None]:
    bundle = host_ca_bundle()
    extra = {"ca-certificates.crt": bundle.read_bytes()} if bundle else {}
    return image_inputs.base_key(BASE_SUITE, BASE_PACKAGES, extra), bundle


def base_reference(key: str) -> str:
    return f"{BASE_REPOSITORY}:{BASE_SUITE}-{key}"


def ensure_base(log: Callable[[str], None]) -> tuple[str, str]:
    """The local base image's reference and key, made (mmdebstrap, buildah) when missing."""
    with _lock("buildah"):
        return _ensure_base_unlocked(log)


def _ensure_base_unlocked(log: Callable[[str], None]) -> tuple[str, str]:
    key, bundle = base_image_key()
    ref = base_reference(key)
    if _buildah_has_image(ref):
        return ref, key
    steps = _Steps("making the base image", logs_dir() / f"image-base-{key}.log")
    rootfs = images_dir() / f"base-{BASE_SUITE}-{key}.tar"
    started = time.monotonic()
    if not rootfs.is_file():
        log(f"making the {BASE_SUITE} root filesystem with mmdebstrap; log: {steps.log_path}")
        partial = rootfs.with_name(rootfs.name + ".partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        steps.run(
            "mmdebstrap",
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES)}",
            "--format=tar",
            BASE_SUITE,
            str(partial),
        )
        partial.rename(rootfs)
    buildah = _buildah_base_cmd()
    container = steps.run(*buildah, "from", "scratch", capture=True).strip()
    try:
        steps.run(*buildah, "add", container, str(rootfs), "/")
        if bundle is not None:
            steps.run(*buildah, "copy", container, str(bundle), CA_BUNDLE_IN_IMAGE)
            # pip 23 (Debian's) trusts its own certifi bundle unless told otherwise.
            steps.run(*buildah, "config", "--env", f"PIP_CERT={CA_BUNDLE_IN_IMAGE}", container)
        steps.run(*buildah, "config", "--cmd", '["/bin/bash"]', container)
        steps.run(*buildah, "commit", "--quiet", container, ref)
    finally:
        subprocess.run([*buildah, "rm", container], capture_output=True, check=False)
    log(f"made the base image {ref} in {time.monotonic() - started:.0f}s")
    return ref, key


def wheelhouse_for(torch_version: str) -> Path:
    return cache_root() / "wheels" / f"torch-{torch_version}-py{IMAGE_PYTHON}"


def ensure_wheels(torch_version: str, ninja_version: str, log: Callable[[str], None]) -> Path:
    """torch and its dependencies as wheels for the image's Python, downloaded once."""
    folder = wheelhouse_for(torch_version)
    done = folder / ".complete"
    with _lock(f"wheels-{torch_version}"):
        if done.is_file():
            return folder
        steps = _Steps(
            "downloading torch's wheels", logs_dir() / f"wheels-torch-{torch_version}.log"
        )
        log(f"downloading torch {torch_version} and its wheels from PyPI; log: {steps.log_path}")
        started = time.monotonic()
        platforms = [a for tag in _MANYLINUX for a in ("--platform", f"{tag}_x86_64")]
        steps.run(
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--python-version",
            IMAGE_PYTHON,
            "--implementation",
            "cp",
            *platforms,
            "--dest",
            str(folder),
            f"torch=={torch_version}",
            f"ninja=={ninja_version}",
        )
        done.write_text(f"torch=={torch_version}\nninja=={ninja_version}\n")
        log(f"downloaded the wheels in {time.monotonic() - started:.0f}s ({folder})")
        return folder


def _context_digest() -> str:
    patterns = image_inputs.dockerignore_patterns((REPO_ROOT / ".dockerignore").read_text())
    files = list(image_inputs.context_files(REPO_ROOT, patterns))
    return image_inputs.digest_files(REPO_ROOT, files)


def _torch_pins(dockerfile: str) -> tuple[str, str]:
    torch = image_inputs.dockerfile_arg_default(dockerfile, "TORCH_VERSION")
    ninja = None
    for line in dockerfile.splitlines():
        if '"ninja==' in line:
            ninja = line.split('"ninja==', 1)[1].split('"', 1)[0]
    if torch is None or ninja is None:
        raise ImageBuildError(
            "Dockerfile.runner: cannot read the torch and ninja pins "
            '(expected `ARG TORCH_VERSION=...` and "ninja==..." in a RUN line)'
        )
    return torch, ninja


def image_plan(spec: ImageSpec, base_ref: str, base_key: str) -> tuple[str, dict[str, str]]:
    """The key of ``spec`` for this working tree and the build arguments it is built with."""
    dockerfile = (REPO_ROOT / spec.dockerfile).read_bytes()
    args = {k: (base_ref if v == "base" else v) for k, v in spec.local_args.items()}
    # The base reference already carries its key; the key proper holds the literal values.
    keyed = dict(spec.local_args)
    return image_inputs.image_key(dockerfile, _context_digest(), keyed, [base_key]), args


def _archive(spec: ImageSpec, key: str) -> Path:
    return images_dir() / f"{spec.name}-{key}.oci.tar"


def _meta(spec: ImageSpec, key: str) -> Path:
    return images_dir() / f"{spec.name}-{key}.json"


def ensure_image(
    spec: ImageSpec, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)
) -> BuiltImage:
    """The image of ``spec`` for this working tree as an OCI archive, built when stale."""
    base_key = base_image_key()[0]
    base_ref = base_reference(base_key)
    key, args = image_plan(spec, base_ref, base_key)
    ref = f"{spec.repository}:{key}"
    archive, meta = _archive(spec, key), _meta(spec, key)
    with _lock("buildah"):
        if archive.is_file() and meta.is_file():
            recorded = json.loads(meta.read_text())
            return BuiltImage(
                spec.name,
                ref,
                key,
                archive,
                False,
                float(recorded["seconds"]),
                archive.stat().st_size,
            )
        # Working containers of a build that was killed (they hold gigabytes); no other
        # build runs while this process holds the lock.
        subprocess.run([*_buildah_base_cmd(), "rm", "--all"], capture_output=True, check=False)
        _ensure_base_unlocked(log)
        steps = _Steps(
            f"building the {spec.name} image", logs_dir() / f"image-{spec.name}-{key}.log"
        )
        started = time.monotonic()
        volumes: list[str] = []
        if spec.needs_wheels:
            torch, ninja = _torch_pins((REPO_ROOT / spec.dockerfile).read_text())
            wheels = ensure_wheels(torch, ninja, log)
            volumes = ["--volume", f"{wheels}:/wheels:ro"]
        log(f"building the {spec.name} image {ref} from {spec.dockerfile}; log: {steps.log_path}")
        buildah = _buildah_base_cmd()
        build_args = [a for k, v in sorted(args.items()) for a in ("--build-arg", f"{k}={v}")]
        steps.run(
            *buildah,
            "bud",
            "--isolation",
            "chroot",
            "--layers",
            "--force-rm",
            "--pull=never",
            *build_args,
            *volumes,
            "--file",
            spec.dockerfile,
            "--tag",
            ref,
            ".",
        )
        partial = archive.with_name(archive.name + ".partial")
        partial.unlink(missing_ok=True)
        steps.run(
            *buildah,
            "push",
            "--quiet",
            "--disable-compression",
            ref,
            f"oci-archive:{partial}:{ref}",
        )
        partial.rename(archive)
        seconds = time.monotonic() - started
        meta.write_text(json.dumps({"ref": ref, "seconds": round(seconds, 1)}, indent=1) + "\n")
        _forget_older(spec, key)
        size = archive.stat().st_size
        log(f"built the {spec.name} image in {seconds:.0f}s ({size / 2**20:.0f} MiB)")
        return BuiltImage(spec.name, ref, key, archive, True, seconds, size)


def _forget_older(spec: ImageSpec, key: str) -> None:
    """Drop the archives of this image's earlier keys, and the image itself and its build
    layers from buildah's storage: the archive is the cache, and the runner's layers are
    several copies of torch (about 6 GB each). Only the base stays, so a change to the
    sources rebuilds from the base with the wheels already on disk.
    """
    for path in images_dir().glob(f"{spec.name}-*"):
        if not path.name.startswith(f"{spec.name}-{key}"):
            path.unlink(missing_ok=True)
    buildah = _buildah_base_cmd()
    subprocess.run([*buildah, "rmi", f"{spec.repository}:{key}"], capture_output=True, check=False)
    subprocess.run([*buildah, "rmi", "--prune"], capture_output=True, check=False)


def ensure_images(
    specs: Sequence[ImageSpec] = IMAGES,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
) -> list[BuiltImage]:
    return [ensure_image(spec, log) for spec in specs]


PAUSE_REPOSITORY = "localhost/recon-pause"


def ensure_pause_image(
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
) -> BuiltImage:
    """The node's sandbox image: the static pause binary of tools/pause, alone in an image."""
    from recon_stack.binaries import resolve_pause

    binary = resolve_pause(build=True, log=log)
    key = hashlib.sha256(binary.read_bytes()).hexdigest()[: image_inputs.KEY_LENGTH]
    ref = f"{PAUSE_REPOSITORY}:{key}"
    archive = images_dir() / f"pause-{key}.oci.tar"
    if archive.is_file():
        return BuiltImage("pause", ref, key, archive, False, 0.0, archive.stat().st_size)
    with _lock("buildah"):
        started = time.monotonic()
        steps = _Steps("building the pause image", logs_dir() / f"image-pause-{key}.log")
        buildah = _buildah_base_cmd()
        container = steps.run(*buildah, "from", "scratch", capture=True).strip()
        try:
            steps.run(*buildah, "copy", container, str(binary), "/pause")
            steps.run(
                *buildah,
                "config",
                "--entrypoint",
                '["/pause"]',
                "--user",
                "65535:65535",
                container,
            )
            steps.run(*buildah, "commit", "--quiet", container, ref)
        finally:
            subprocess.run([*buildah, "rm", container], capture_output=True, check=False)
        partial = archive.with_name(archive.name + ".partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        steps.run(*buildah, "push", "--quiet", ref, f"oci-archive:{partial}:{ref}")
        partial.rename(archive)
        subprocess.run([*buildah, "rmi", ref], capture_output=True, check=False)
        seconds = time.monotonic() - started
        return BuiltImage("pause", ref, key, archive, True, seconds, archive.stat().st_size)
