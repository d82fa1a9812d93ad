"""recon: the ReconJob operator, the reconstruction runner and a local test stack.

Each sub-command imports its side lazily: the operator image has no torch and the runner
image has no kopf, and `recon --help` must work in both.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# sub-command -> module providing `add_arguments(parser)` and `run(args) -> int`
COMMANDS: dict[str, tuple[str, str]] = {
    "dev": ("recon_stack.cli", "run a local Kubernetes + MinIO stack for tests and demos"),
    "operator": ("recon_operator.cli", "run the ReconJob operator with the current kubeconfig"),
    "run": ("recon_runner.local.run", "reconstruct a capture folder into a textured mesh"),
    "demo": ("recon_runner.local.demo", "reconstruct a synthetic capture of a known object"),
    "import": ("recon_runner.importers.cli", "convert a Polycam, Record3D, ScanNet, ... capture"),
    "runner": ("recon_runner.pod.cli", "run one ReconJob inside its pod (used by the Job)"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; sub-command modules are imported only for `only` (or all when None),
    since importing the runner side pulls in numpy and kubernetes for every call."""
    parser = argparse.ArgumentParser(prog="recon", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if only is not None and name != only:
            continue
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            p.set_defaults(_import_error=f"`recon {name}` is not available here: {e}")
            continue
        mod.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), "")
    args = build_parser(only=chosen).parse_args(argv)
    error = getattr(args, "_import_error", None)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    mod = importlib.import_module(args._module)
    result: int = mod.run(args)
    return result
