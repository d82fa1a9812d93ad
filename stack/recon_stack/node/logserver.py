"""`kubectl logs` for pods on the process node: the kubelet's containerLogs endpoint.

The API server serves ``pods/log`` by calling the node's kubelet port (from the Node's
``daemonEndpoints``) at ``/containerLogs/<namespace>/<pod>/<container>``. This answers
that call from the log files the node writes, with ``tailLines``, ``limitBytes`` and
``follow``. It listens on loopback only, over TLS with a certificate of its own: the API
server does not verify kubelet certificates unless told a CA, and nothing else on the
machine needs it.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from recon_stack import pki

log = logging.getLogger(__name__)

FOLLOW_POLL_SECONDS = 0.5

# (namespace, pod, container) -> True while the container may still write to its log.
IsRunning = Callable[[str, str, str], bool]


def parse_log_path(path: str) -> tuple[str, str, str] | None:
    parts = [unquote(p) for p in urlsplit(path).path.strip("/").split("/")]
    if len(parts) != 4 or parts[0] != "containerLogs" or not all(parts[1:]):
        return None
    return parts[1], parts[2], parts[3]


def tail_lines(data: bytes, lines: int) -> bytes:
    """The last ``lines`` lines of ``data`` (a final line without newline counts)."""
    if lines <= 0:
        return b""
    chunks = data.splitlines(keepends=True)
    return b"".join(chunks[-lines:])


def int_param(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


def find_log(pods_root: Path, namespace: str, pod: str, container: str) -> Path | None:
    """The container's log of the newest pod of that name (a name may be reused)."""
    candidates = [
        d / f"{container}.log"
        for d in pods_root.glob(f"{namespace}_{pod}_*")
        if d.name.count("_") >= 2 and (d / f"{container}.log").is_file()
    ]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def serving_context(cert_dir: Path, node_name: str) -> ssl.SSLContext:
    """A TLS context with a certificate made for this node, kept across restarts."""
    cert, key = cert_dir / "serving.crt", cert_dir / "serving.key"
    if not (cert.exists() and key.exists()):
        ca = pki.make_ca(f"{node_name}-serving-ca")
        pair = pki.issue(
            ca, node_name, dns_names=(node_name, "localhost"), ip_addresses=("127.0.0.1",),
            server=True,
        )  # fmt: skip
        cert_dir.mkdir(parents=True, exist_ok=True)
        cert.write_bytes(pair.cert_pem + ca.cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(pair.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def _never_running(namespace: str, pod: str, container: str) -> bool:
    return False


class LogServer:
    """Serves log files; ``is_running`` tells a follower when a log is complete."""

    def __init__(self, pods_root: Path, cert_dir: Path, node_name: str) -> None:
        self.pods_root = pods_root
        self.is_running: IsRunning = _never_running
        handler = _handler_for(self)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        context = serving_context(cert_dir, node_name)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.stopped = threading.Event()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        threading.Thread(target=self.httpd.serve_forever, name="log-server", daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()
        self.httpd.shutdown()


def _handler_for(server: LogServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            log.debug("log server: " + format, *args)

        def do_GET(self) -> None:
            target = parse_log_path(self.path)
            if target is None:
                self.send_error(404, "only /containerLogs/<namespace>/<pod>/<container>")
                return
            path = find_log(server.pods_root, *target)
            if path is None:
                self.send_error(404, f"no log for container {target[2]!r} of pod {target[1]!r}")
                return
            query = parse_qs(urlsplit(self.path).query)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self._stream(path, target, query)

        def _stream(
            self, path: Path, target: tuple[str, str, str], query: dict[str, list[str]]
        ) -> None:
            limit = int_param(query, "limitBytes")
            lines = int_param(query, "tailLines")
            follow = query.get("follow", ["false"])[0] == "true"
            with path.open("rb") as f:
                data = f.read()
                if lines is not None:
                    data = tail_lines(data, lines)
                sent = self._send(data, limit, 0)
                while follow and not server.stopped.is_set():
                    if limit is not None and sent >= limit:
                        return
                    chunk = f.read()
                    if chunk:
                        sent = self._send(chunk, limit, sent)
                        continue
                    if not server.is_running(*target):
                        sent = self._send(f.read(), limit, sent)
                        return
                    time.sleep(FOLLOW_POLL_SECONDS)

        def _send(self, data: bytes, limit: int | None, sent: int) -> int:
            if limit is not None:
                data = data[: max(limit - sent, 0)]
            if data:
                self.wfile.write(data)
                self.wfile.flush()
            return sent + len(data)

    return Handler
