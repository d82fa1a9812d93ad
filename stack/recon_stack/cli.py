"""`recon dev up|down|status|env|build|images`: the local stack from a shell.

`up` and `env` print shell `export` lines on stdout and everything else on stderr, so
`eval "$(recon dev up)"` both starts the stack and points the shell at it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recon_stack.binaries import ALL_BINARIES, BinaryError, resolve_binaries
from recon_stack.image_build import IMAGES, ImageBuildError, ensure_images
from recon_stack.paths import default_state_dir
from recon_stack.stack import DEFAULT_TIMEOUT, Stack, StackError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dev_command", required=True, metavar="ACTION")
    helps = {
        "up": "start the stack (or find it running) and print its shell exports",
        "down": "stop every process the stack started",
        "status": "show which components run, their PIDs, ports and logs",
        "env": 'print the shell exports of a running stack: eval "$(recon dev env)"',
        "build": "find or build the stack's binaries (etcd, Kubernetes, helm, MinIO)",
        "images": "build the operator and runner images from this working tree with buildah "
        "(cached by the content of their inputs) as OCI archives",
    }
    for name, help_text in helps.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == "images":
            p.add_argument(
                "--image",
                action="append",
                choices=[spec.name for spec in IMAGES],
                help="build only this image (repeatable; default: both)",
            )
            continue
        p.add_argument(
            "--state-dir",
            type=Path,
            default=default_state_dir(),
            help="directory holding this stack's data, certificates, logs and PID files "
            "(default: %(default)s); one directory per stack",
        )
        if name in ("up", "status", "env"):
            p.add_argument(
                "--node",
                choices=("process", "real"),
                default="process",
                help="process: pods run as host processes (default); real: kubelet, "
                "containerd and runc in the stack's own network namespace, running the "
                "images of `recon dev images`",
            )
        if name == "up":
            p.add_argument(
                "--with-runner-image",
                action="store_true",
                help="with --node real, also import the runner image (3 GB) at start",
            )
            p.add_argument(
                "--timeout",
                type=float,
                default=DEFAULT_TIMEOUT,
                help="seconds to wait for every component to be healthy (default: %(default)s)",
            )
        if name == "down":
            p.add_argument(
                "--purge",
                action="store_true",
                help="also delete the state directory (cluster data, buckets, certificates)",
            )


def run(args: argparse.Namespace) -> int:
    try:
        return _ACTIONS[args.dev_command](args)
    except (StackError, BinaryError, ImageBuildError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _up(args: argparse.Namespace) -> int:
    images = ("operator", "runner") if args.with_runner_image else ("operator",)
    stack = Stack(args.state_dir, timeout=args.timeout, node=args.node, images=images)
    stack.up()
    print("\n".join(stack.env_lines()))
    return 0


def _down(args: argparse.Namespace) -> int:
    stack = Stack(args.state_dir)
    stopped = stack.down()
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running", file=sys.stderr)
    if args.purge:
        stack.purge()
        print(f"removed {stack.layout.root}", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace) -> int:
    stack = Stack(args.state_dir, node=args.node)
    rows = stack.status()
    print(f"{'COMPONENT':<24} {'STATE':<8} {'PID':>8} {'PORT':>6}  LOG")
    for s in rows:
        state = "running" if s.alive else "stopped"
        pid = str(s.pid) if s.pid and s.alive else "-"
        port = str(s.port) if s.port else "-"
        print(f"{s.name:<24} {state:<8} {pid:>8} {port:>6}  {s.log}")
    return 0 if stack.is_running() else 3


def _env(args: argparse.Namespace) -> int:
    stack = Stack(args.state_dir, node=args.node)
    if not stack.is_running():
        raise StackError(
            f"no stack is running in {stack.layout.root}; start one with `recon dev up`"
        )
    print("\n".join(stack.env_lines()))
    return 0


def _build(args: argparse.Namespace) -> int:
    paths = resolve_binaries(build=True)
    for name in ALL_BINARIES:
        print(f"{name}\t{paths[name]}")
    return 0


def _images(args: argparse.Namespace) -> int:
    wanted = args.image or [spec.name for spec in IMAGES]
    built = ensure_images([spec for spec in IMAGES if spec.name in wanted])
    for image in built:
        state = f"built in {image.seconds:.0f}s" if image.built_now else "up to date"
        size = f"{image.size_bytes / 2**20:.0f} MiB"
        print(f"{image.name}\t{image.ref}\t{size}\t{state}\t{image.archive}")
    return 0


_ACTIONS = {
    "up": _up,
    "down": _down,
    "status": _status,
    "env": _env,
    "build": _build,
    "images": _images,
}
