"""Find or build the local stack's binaries: etcd, Kubernetes (the control plane, kubectl,
and the real node's kubelet and kube-proxy), helm and MinIO.

Also the project's own small Go tools under ``tools/`` (``kstatus``: the verdict of the
kstatus library Flux uses), built the same way from their committed go.mod and go.sum.

There is no Docker engine or kind on the machines this project targets, so the stack runs
the real upstream binaries as plain processes. They are built from pinned Go modules (the
Go module proxy is the one source we can rely on), cached outside the repository under
``${XDG_CACHE_HOME:-~/.cache}/recon-operator/bin/<component>-<version>/`` so a warm run
builds nothing, and taken from ``KUBEBUILDER_ASSETS`` or ``PATH`` when a user already has
them. Every build writes a full log; a failure names it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from recon_stack.paths import cache_root

KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.6"
HELM_VERSION = "v3.19.2"
# MinIO tags releases as RELEASE.<date>; the module proxy knows them as pseudo-versions.
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
# sigs.k8s.io/cli-utils, whose pkg/kstatus/status the kstatus tool wraps; tools/kstatus/go.mod
# requires exactly this version.
CLI_UTILS_VERSION = "v0.37.2"
# sigs.k8s.io/kueue: its controller manager runs on the stack for the tests of Kueue
# admission, and its CRDs, RBAC and configuration come from the same module's config/.
KUEUE_VERSION = "v0.17.0"
TOOLS_DIR = Path(__file__).resolve().parents[2] / "tools"

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
# The real node's binaries, from the same Kubernetes module and version as the control
# plane; a component of their own, so adding them did not invalidate the control plane's
# cached build.
KUBE_NODE_BINARIES = ("kubelet", "kube-proxy")
ALL_BINARIES = (*KUBE_BINARIES, *KUBE_NODE_BINARIES, "etcd", "helm", "minio")


class BinaryError(RuntimeError):
    """A binary could not be found or built; the message says what to do."""


@dataclass(frozen=True)
class Component:
    """One pinned Go build producing one or more binaries."""

    name: str
    version: str
    binaries: tuple[str, ...]
    module: str
    packages: tuple[str, ...]
    ldflags: tuple[str, ...] = ()
    go_directive: str = "1.24.0"
    extra_gomod: Callable[[Path], str] = field(default=lambda _modfile: "")
    # A module of this repository (its go.mod and go.sum pin everything) built in place,
    # instead of `module` fetched at `version`.
    source: Path | None = None

    @property
    def cache_dir(self) -> Path:
        name = f"{self.name}-{self.version}"
        if self.source is not None:
            # An edited tool must not be served from the cache of its previous source.
            name += f"-{_source_digest(self.source)}"
        return cache_root() / "bin" / name


def _source_digest(source: Path) -> str:
    digest = hashlib.sha256()
    for path in [*sorted(source.glob("*.go")), source / "go.mod", source / "go.sum"]:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _kubernetes_replaces(modfile: Path) -> str:
    """Pin every staging module k8s.io/kubernetes replaces locally to the matching v0.x tag.

    k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
    ./staging paths, which only work inside its own repository; a consumer must pin them.
    """
    text = modfile.read_text()
    staging = sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+) => \./staging/", text, re.M)))
    staging_version = "v0" + KUBERNETES_VERSION[2:]  # v1.34.4 -> v0.34.4
    lines = [f"\t{mod} => {mod} {staging_version}" for mod in staging]
    return "godebug default=go1.24\n\nreplace (\n" + "\n".join(lines) + "\n)\n"


def _kube_version_ldflags() -> tuple[str, ...]:
    major, minor = KUBERNETES_VERSION[1:].split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={KUBERNETES_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return tuple(flags)


COMPONENTS = (
    Component(
        name="kubernetes",
        version=KUBERNETES_VERSION,
        binaries=KUBE_BINARIES,
        module="k8s.io/kubernetes",
        packages=tuple(f"k8s.io/kubernetes/cmd/{b}" for b in KUBE_BINARIES),
        ldflags=_kube_version_ldflags(),
        extra_gomod=_kubernetes_replaces,
    ),
    Component(
        name="kubernetes-node",
        version=KUBERNETES_VERSION,
        binaries=KUBE_NODE_BINARIES,
        module="k8s.io/kubernetes",
        packages=tuple(f"k8s.io/kubernetes/cmd/{b}" for b in KUBE_NODE_BINARIES),
        ldflags=_kube_version_ldflags(),
        extra_gomod=_kubernetes_replaces,
    ),
    Component(
        name="etcd",
        version=ETCD_VERSION,
        binaries=("etcd",),
        module="go.etcd.io/etcd/server/v3",
        packages=("go.etcd.io/etcd/server/v3",),
    ),
    Component(
        name="helm",
        version=HELM_VERSION,
        binaries=("helm",),
        module="helm.sh/helm/v3",
        packages=("helm.sh/helm/v3/cmd/helm",),
        ldflags=(f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",),
    ),
    Component(
        name="minio",
        version=MINIO_VERSION,
        binaries=("minio",),
        module="github.com/minio/minio",
        packages=("github.com/minio/minio",),
    ),
)


KSTATUS = Component(
    name="kstatus",
    version=CLI_UTILS_VERSION,
    binaries=("kstatus",),
    module="recon.dev/tools/kstatus",
    packages=(".",),
    source=TOOLS_DIR / "kstatus",
)

# The sandbox ("pause") process of the real node's pods: no registry can serve the usual
# image, so it is built from tools/pause (standard library only) and packed as an image.
PAUSE = Component(
    name="pause",
    version="v1",
    binaries=("pause",),
    module="recon.dev/tools/pause",
    packages=(".",),
    source=TOOLS_DIR / "pause",
)


KUEUE = Component(
    name="kueue",
    version=KUEUE_VERSION,
    binaries=("kueue-manager",),
    module="sigs.k8s.io/kueue",
    packages=("sigs.k8s.io/kueue/cmd/kueue",),
    ldflags=(f"-X sigs.k8s.io/kueue/pkg/version.GitVersion={KUEUE_VERSION}",),
    go_directive="1.25.0",
)


def _external_dirs() -> list[Path]:
    """Directories a user already keeps binaries in, most specific first."""
    dirs = []
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        dirs.append(Path(assets))
    return dirs


def _find_existing(name: str, component: Component) -> Path | None:
    cached = component.cache_dir / name
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    for d in _external_dirs():
        p = d / name
        if p.is_file() and os.access(p, os.X_OK):
            return p
    found = shutil.which(name)
    return Path(found) if found else None


def component_of(name: str) -> Component:
    for c in COMPONENTS:
        if name in c.binaries:
            return c
    raise KeyError(name)


def resolve_binaries(
    build: bool = True, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)
) -> dict[str, Path]:
    """Return a path for every stack binary, building the missing ones when allowed."""
    found: dict[str, Path] = {}
    missing: list[Component] = []
    for c in COMPONENTS:
        paths = {b: _find_existing(b, c) for b in c.binaries}
        if all(p is not None for p in paths.values()):
            found.update({b: p for b, p in paths.items() if p is not None})
        else:
            missing.append(c)
    if missing and not build:
        names = ", ".join(b for c in missing for b in c.binaries)
        raise BinaryError(f"missing binaries: {names}; run `recon dev build` to build them")
    if missing and shutil.which("go") is None:
        names = ", ".join(b for c in missing for b in c.binaries)
        raise BinaryError(
            f"cannot find {names} and cannot build them: `go` is not on PATH. "
            "Install Go 1.24 or newer (https://go.dev/doc/install), or point "
            "KUBEBUILDER_ASSETS at a directory holding etcd, kube-apiserver, "
            "kube-controller-manager, kube-scheduler and kubectl, and put helm and minio "
            "on PATH."
        )
    for c in missing:
        for b, p in build_component(c, log).items():
            found[b] = p
    return found


def resolve_kstatus(
    build: bool = True, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)
) -> Path:
    """The kstatus tool (tools/kstatus) for this checkout's source, built when missing."""
    return resolve_tool(KSTATUS, build, log)


def resolve_pause(
    build: bool = True, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)
) -> Path:
    """The real node's sandbox process (tools/pause), built when missing."""
    return resolve_tool(PAUSE, build, log)


def resolve_tool(
    tool: Component,
    build: bool = True,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    how_to_build: str = "",
) -> Path:
    """A built program that the stack does not always need (a tool of this repository,
    tools/NAME, or an add-on like Kueue from its module), built when missing."""
    source = tool.source
    name = tool.binaries[0]
    if source is not None and not (source / "go.mod").is_file():
        raise BinaryError(f"the {name} tool's source is missing: expected {source}/go.mod")
    cached = tool.cache_dir / name
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    if not build:
        raise BinaryError(f"{name} is not built; expected {cached}{how_to_build}")
    if shutil.which("go") is None:
        raise BinaryError(
            f"cannot build {name}: `go` is not on PATH. Install Go 1.25 or newer "
            "(https://go.dev/doc/install)."
        )
    return build_component(tool, log)[name]


def resolve_kueue(
    build: bool = True, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)
) -> Path:
    """Kueue's controller manager, built from its pinned module when missing. Only the
    Kueue tests need it, so a plain stack never pays for this build."""
    how = " (`python -m recon_stack.binaries --kueue` builds it)"
    return resolve_tool(KUEUE, build, log, how)


def kueue_module_dir() -> Path:
    """Where the Go module cache holds Kueue's source (its config/ manifests included)."""
    env = dict(os.environ, GOFLAGS="-mod=mod", GOWORK="off")
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{KUEUE.module}@{KUEUE.version}"],
        cwd=cache_root(),
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise BinaryError(
            f"cannot fetch {KUEUE.module}@{KUEUE.version} for its manifests: "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return Path(json.loads(proc.stdout)["Dir"])


def build_component(c: Component, log: Callable[[str], None]) -> dict[str, Path]:
    """Build one component into its cache directory, one build at a time.

    Test sessions, `make demo` and `recon dev up` may all find the cache empty at once (a
    fresh machine): an exclusive lock per component makes the later ones wait for the first
    build and use its result, rather than race it in the same `.partial` folder.
    """
    lock_path = cache_root() / "locks" / f"{c.name}-{c.version}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = {b: c.cache_dir / b for b in c.binaries}
        if all(p.is_file() and os.access(p, os.X_OK) for p in built.values()):
            log(f"{c.name} {c.version} was built meanwhile by another process")
            return built
        return _build_now(c, log)


def _build_now(c: Component, log: Callable[[str], None]) -> dict[str, Path]:
    """Build one component into its cache directory, atomically (a temp dir renamed)."""
    build_root = cache_root() / "build" / f"{c.name}-{c.version}"
    build_root.mkdir(parents=True, exist_ok=True)
    # A tool of this repository is built in place from its committed module.
    workdir = c.source or build_root
    log_path = cache_root() / "logs" / f"build-{c.name}-{c.version}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out_tmp = c.cache_dir.with_name(c.cache_dir.name + ".partial")
    shutil.rmtree(out_tmp, ignore_errors=True)
    out_tmp.mkdir(parents=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod", GOWORK="off")
    log(f"building {c.name} {c.version} ({', '.join(c.binaries)}); log: {log_path}")
    started = time.monotonic()
    with log_path.open("w") as out:

        def run(*args: str) -> None:
            out.write(f"$ {' '.join(args)}\n")
            out.flush()
            proc = subprocess.run(args, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
            if proc.returncode != 0:
                tail = log_path.read_text().splitlines()[-15:]
                shutil.rmtree(out_tmp, ignore_errors=True)
                raise BinaryError(
                    f"building {c.name} {c.version} failed (`{' '.join(args[:3])} ...` "
                    f"exited {proc.returncode}). Last lines:\n  "
                    + "\n  ".join(tail)
                    + f"\nFull log: {log_path}"
                )

        ldflags = " ".join(("-s", "-w", *c.ldflags))
        # `go build -o DIR/` writes one binary per package; a single package needs a file.
        target = str(out_tmp / c.binaries[0]) if len(c.packages) == 1 else f"{out_tmp}/"
        if c.source is not None:
            # -mod=readonly holds the build to the committed go.sum.
            run(
                "go",
                "build",
                "-mod=readonly",
                "-trimpath",
                f"-ldflags={ldflags}",
                "-o",
                target,
                *c.packages,
            )
        else:
            gomod = build_root / "go.mod"
            gomod.write_text(f"module recon.dev/stackbuild/{c.name}\n\ngo {c.go_directive}\n")
            run("go", "mod", "edit", f"-require={c.module}@{c.version}")
            run("go", "mod", "download", "-json", f"{c.module}@{c.version}")
            dep_mod = _module_gomod(c, env)
            with gomod.open("a") as f:
                f.write("\n" + c.extra_gomod(dep_mod))
            run("go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", target, *c.packages)
    if c.cache_dir.exists():
        shutil.rmtree(c.cache_dir)
    out_tmp.rename(c.cache_dir)
    log(f"built {c.name} in {time.monotonic() - started:.0f}s")
    return {b: c.cache_dir / b for b in c.binaries}


def _module_gomod(c: Component, env: dict[str, str]) -> Path:
    modcache = subprocess.run(
        ["go", "env", "GOMODCACHE"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    escaped = re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), c.module)
    return Path(modcache) / "cache" / "download" / escaped / "@v" / f"{c.version}.mod"


def main() -> int:
    """`python -m recon_stack.binaries [--kueue]`: build (or find) everything, print the
    paths; with --kueue, Kueue's manager too."""
    try:
        paths = resolve_binaries(build=True)
        if "--kueue" in sys.argv[1:]:
            paths["kueue-manager"] = resolve_kueue(build=True)
    except BinaryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
