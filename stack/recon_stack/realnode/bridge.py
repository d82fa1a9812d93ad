"""The bridge between the machine's loopback and the stack's network namespace.

The control plane and MinIO listen on the machine's 127.0.0.1; the node, its pods and the
Services live in a network namespace of the stack. Nothing may be routed or addressed in
the machine's own namespace, so this one process relays instead:

* into the namespace: listeners on the node's address inside the namespace, each relaying
  to a port on the machine's 127.0.0.1 (the API server, MinIO), so that the kubelet,
  kube-proxy and pods (through the `kubernetes` and `minio` Services) reach them;
* out of the namespace: an HTTP CONNECT proxy on a UNIX socket (a file, which crosses
  namespaces), through which the API server's egress selector dials the kubelet and pods
  inside the namespace (`kubectl logs`, exec, probes of the API server's proxy).

A socket belongs to the network namespace its creating thread was in, so the process
enters the namespace (``setns``) only to create the sockets that live there, and leaves
it at once; everything else runs in the machine's namespace. Standard library only.

    python -m recon_stack.realnode.bridge --netns /run/netns/NAME \\
        --forward 10.200.0.1:6443=6443 --connect-proxy /path/egress.sock
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNET = 0x40000000
BUFFER = 256 * 1024

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def inside(netns: Path) -> Iterator[None]:
    """Create sockets inside ``netns`` for the duration of the block (this thread only)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


async def _splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    try:
        await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))
    finally:
        for writer in (a[1], b[1]):
            writer.close()


def _host_forwarder(target_port: int):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        await _splice((reader, writer), upstream)

    return handle


def _connect_proxy(netns: Path):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        method, _, rest = request.decode("latin-1").partition(" ")
        target = rest.split(" ", 1)[0]
        host, _, port = target.rpartition(":")
        if method != "CONNECT" or not port.isdigit():
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            writer.close()
            return
        try:
            with inside(netns):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (host.strip("[]"), int(port)))
            upstream = await asyncio.open_connection(sock=sock)
        except OSError as e:
            writer.write(f"HTTP/1.1 502 Bad Gateway\r\n\r\n{e}".encode())
            writer.close()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _splice((reader, writer), upstream)

    return handle


def parse_forward(text: str) -> tuple[str, int, int]:
    """``IP:PORT=TARGET_PORT`` -> (IP, PORT, TARGET_PORT)."""
    listen, _, target = text.partition("=")
    ip, _, port = listen.rpartition(":")
    if not (ip and port.isdigit() and target.isdigit()):
        raise argparse.ArgumentTypeError(f"expected IP:PORT=TARGET_PORT, got {text!r}")
    return ip, int(port), int(target)


async def serve(netns: Path, forwards: list[tuple[str, int, int]], proxy: Path | None) -> None:
    servers = []
    for ip, port, target in forwards:
        with inside(netns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        servers.append(await asyncio.start_server(_host_forwarder(target), sock=sock))
    if proxy is not None:
        proxy.unlink(missing_ok=True)
        servers.append(await asyncio.start_unix_server(_connect_proxy(netns), path=str(proxy)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("bridge ready", flush=True)
    await stop.wait()
    for server in servers:
        server.close()
    if proxy is not None:
        proxy.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recon_stack.realnode.bridge")
    parser.add_argument("--netns", type=Path, required=True)
    parser.add_argument("--forward", type=parse_forward, action="append", default=[])
    parser.add_argument("--connect-proxy", type=Path)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.netns, args.forward, args.connect_proxy))
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
