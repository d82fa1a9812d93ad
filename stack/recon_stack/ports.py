"""Free loopback ports for the stack's listeners.

Several stacks run side by side (one per state directory, tests beside a user's own), so no
port is fixed. A stack prefers the ports it used last time, which keeps a user's kubeconfig
and MinIO endpoint stable across `down`/`up`, and takes others when something else has
taken them since.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable, Mapping

LOOPBACK = "127.0.0.1"


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True when a listener could bind ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                return False
            raise
    return True


def ephemeral_port(host: str = LOOPBACK, avoid: Iterable[int] = ()) -> int:
    """A port the kernel reports free, never one in ``avoid``.

    The kernel hands out ports from the ephemeral range; asking it beats guessing numbers
    that may belong to another stack on the same machine.
    """
    taken = set(avoid)
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port
    raise RuntimeError(f"no free port found on {host}")


def pick_ports(
    names: Iterable[str], preferred: Mapping[str, int] | None = None, host: str = LOOPBACK
) -> dict[str, int]:
    """One distinct free port per name, keeping a preferred port whenever it is still free."""
    preferred = preferred or {}
    chosen: dict[str, int] = {}
    for name in names:
        want = preferred.get(name)
        if want and want not in chosen.values() and port_is_free(want, host):
            chosen[name] = want
        else:
            chosen[name] = ephemeral_port(host, avoid=chosen.values())
    return chosen
