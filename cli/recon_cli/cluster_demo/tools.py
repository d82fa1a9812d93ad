"""kubectl and helm as a user runs them: the real binaries with a kubeconfig."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class Tools(Protocol):
    """What the demo steps need: kubectl and helm that raise on failure when ``check``."""

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]: ...

    def helm(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]: ...


class ToolError(RuntimeError):
    """A kubectl or helm call failed; the message carries its stderr."""


@dataclass(frozen=True)
class LocalTools:
    """kubectl and helm from ``bin_dir``, pointed at ``kubeconfig``."""

    kubeconfig: Path
    bin_dir: Path

    @property
    def kubectl_path(self) -> Path:
        return self.bin_dir / "kubectl"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def _run(
        self, tool: str, args: tuple[str, ...], input: str | None, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / tool), *args]
        result = subprocess.run(
            cmd, input=input, capture_output=True, text=True, env=self.env(), timeout=timeout
        )
        if check and result.returncode != 0:
            raise ToolError(f"{tool} {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self._run("kubectl", args, input, check, timeout)

    def helm(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return self._run("helm", args, input, check, timeout)


def get_json(tools: Tools, *args: str) -> dict[str, Any]:
    """`kubectl get ARGS -o json`, parsed."""
    result: dict[str, Any] = json.loads(tools.kubectl("get", *args, "-o", "json").stdout)
    return result


def apply_json(tools: Tools, *objects: dict[str, Any], server_side: bool = False) -> str:
    """`kubectl apply -f -` of ``objects``; returns kubectl's report (one line per object)."""
    doc = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    extra = ("--server-side",) if server_side else ()
    return tools.kubectl("apply", *extra, "-f", "-", input=json.dumps(doc)).stdout
