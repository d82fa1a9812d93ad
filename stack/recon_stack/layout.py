"""Where a stack keeps its files inside its state directory.

One state directory is one stack: its PKI, kubeconfigs, data, logs, PID files and the
recorded ports all live under it, so stacks side by side never share a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StateLayout:
    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    def component_kubeconfig(self, component: str) -> Path:
        return self.root / "kubeconfigs" / f"{component}.kubeconfig"

    @property
    def bin(self) -> Path:
        """Symlinks to kubectl and helm, the directory users put first on PATH."""
        return self.root / "bin"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def pidfile(self, component: str) -> Path:
        return self.run / f"{component}.pid"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def minio_data(self) -> Path:
        return self.root / "minio"

    @property
    def minio_credentials(self) -> Path:
        return self.root / "minio-credentials.json"

    @property
    def node_state(self) -> Path:
        return self.root / "node"

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"
