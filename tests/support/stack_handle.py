"""A handle on a running local stack for tests: kubectl/helm runners, MinIO access,
throwaway namespaces and ServiceAccount kubeconfigs, and a polling helper. The session
fixture in tests/conftest.py yields one."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from recon_stack.components import NODE_NAME
from recon_stack.kubeconfig import token_kubeconfig, write
from recon_stack.stack import Stack


class CommandError(subprocess.CalledProcessError):
    """A failed kubectl/helm call; its message carries the command's stderr."""

    def __str__(self) -> str:
        return f"{' '.join(map(str, self.cmd))} exited {self.returncode}:\n{self.stderr}"


@dataclass(frozen=True)
class StackHandle:
    """What a test needs to talk to the running stack."""

    state_dir: Path
    kubeconfig: Path
    server: str
    ca_cert: Path
    kubectl_path: Path
    helm_path: Path
    minio_endpoint: str
    minio_access_key: str
    minio_secret_key: str
    node_name: str

    def env(self) -> dict[str, str]:
        """The environment `eval "$(recon dev env)"` gives a shell, over this process's."""
        env = dict(os.environ)
        env.update(
            KUBECONFIG=str(self.kubeconfig),
            PATH=f"{self.kubectl_path.parent}:{env.get('PATH', '')}",
            MINIO_ENDPOINT=self.minio_endpoint,
            MINIO_ACCESS_KEY=self.minio_access_key,
            MINIO_SECRET_KEY=self.minio_secret_key,
        )
        return env

    def _run(
        self, tool: Path, args: tuple[str, ...], input: str | None, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(tool), *args]
        result = subprocess.run(
            cmd, input=input, capture_output=True, text=True, env=self.env(), timeout=timeout
        )
        if check and result.returncode != 0:
            raise CommandError(result.returncode, cmd, result.stdout, result.stderr)
        return result

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl as the stack's admin; raises `CommandError` on failure when ``check``."""
        return self._run(self.kubectl_path, args, input, check, timeout)

    def helm(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return self._run(self.helm_path, args, input, check, timeout)

    @contextlib.contextmanager
    def throwaway_namespace(self, base: str = "t") -> Iterator[str]:
        """A fresh namespace (``base`` and a random suffix); afterwards it is deleted
        without waiting for it to go."""
        name = f"{base}-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", name)
        try:
            yield name
        finally:
            self.kubectl("delete", "namespace", name, "--wait=false")

    def service_account_kubeconfig(
        self,
        account: str,
        namespace: str,
        path: Path,
        *,
        duration: str | None = None,
        default_namespace: bool = False,
    ) -> Path:
        """A kubeconfig at ``path`` holding only a token of ServiceAccount ``account`` (a
        TokenRequest, for ``duration`` when given), with ``namespace`` as its default one
        when ``default_namespace``: what a pod of that ServiceAccount gets."""
        args = ["create", "token", account, "-n", namespace]
        if duration is not None:
            args.append(f"--duration={duration}")
        token = self.kubectl(*args).stdout.strip()
        config = token_kubeconfig(
            self.server, self.ca_cert, token, namespace if default_namespace else None
        )
        return write(path, config)

    def minio_client(self) -> Any:
        from minio import Minio

        return Minio(
            self.minio_endpoint,
            access_key=self.minio_access_key,
            secret_key=self.minio_secret_key,
            secure=False,
        )


def wait_for(
    condition: Callable[[], Any], timeout: float = 60, interval: float = 0.25, what: str = ""
) -> Any:
    """Poll until ``condition()`` is truthy and return its value; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what or condition}")
        time.sleep(interval)


def handle_for(stack: Stack) -> StackHandle:
    creds = stack.minio_credentials
    return StackHandle(
        state_dir=stack.layout.root,
        kubeconfig=stack.kubeconfig,
        server=stack.server,
        ca_cert=stack.layout.pki / "ca.crt",
        kubectl_path=stack.layout.bin / "kubectl",
        helm_path=stack.layout.bin / "helm",
        minio_endpoint=stack.minio_endpoint,
        minio_access_key=creds.access_key,
        minio_secret_key=creds.secret_key,
        node_name=NODE_NAME,
    )
