"""Servers on 127.0.0.1 that storage tests point ReconJobs at: a relay in front of MinIO
that can be down or up, a listener that only records who connects, and a hostile S3
stand-in that answers every request with a planted token in every field it controls."""

from __future__ import annotations

import contextlib
import http.server
import secrets
import socket
import threading
from collections.abc import Callable
from xml.sax.saxutils import escape


def _listen() -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    return server


class Relay:
    """A TCP relay in front of MinIO that can be down (nothing listening) or up; it counts
    the connections it accepted."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server: socket.socket | None = None
        self.accepted = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def up(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self.server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def down(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None


class ConnectionRecorder:
    """A listening socket that accepts, records and closes every connection: a storage
    endpoint that must never be contacted."""

    def __init__(self) -> None:
        self.server = _listen()
        self.port = int(self.server.getsockname()[1])
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            client.close()

    def close(self) -> None:
        self.server.close()


# How the hostile server answers, chosen by the request's bucket (its first path part).
XML_UNKNOWN_CODE = "xml-unknown-code"  # an S3 error document whose Code is the token
XML_KNOWN_CODE = "xml-known-code"  # Code InvalidArgument, every other field the token
XML_DENIED = "xml-denied"  # Code AccessDenied, Message the token
HTML = "html-body"  # 400 with a text/html body holding the token
NOT_HTTP = "not-http"  # a status line that is the token
MODES = (XML_UNKNOWN_CODE, XML_KNOWN_CODE, XML_DENIED, HTML, NOT_HTTP)


class HostileS3:
    """Answers every request with a planted token wherever the answer has room for it:
    the error document's fields, the headers, an HTML body, the status line itself."""

    def __init__(self) -> None:
        self.token = f"Planted{secrets.token_hex(8)}"
        self.requests: list[str] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        hostile = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass  # the test's output is no place for the planted token either

            def answer(self) -> None:
                hostile.requests.append(self.path)
                mode = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
                answers: dict[str, Callable[[], None]] = {
                    XML_UNKNOWN_CODE: lambda: self.xml(400, hostile.token),
                    XML_KNOWN_CODE: lambda: self.xml(400, "InvalidArgument"),
                    XML_DENIED: lambda: self.xml(403, "AccessDenied"),
                    HTML: self.html,
                    NOT_HTTP: self.not_http,
                }
                answers.get(mode, self.html)()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = answer

            def send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status, hostile.token)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-amz-request-id", hostile.token)
                self.send_header("x-amz-id-2", hostile.token)
                self.send_header("Server", hostile.token)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def xml(self, status: int, code: str) -> None:
                t = escape(hostile.token)
                doc = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    f"<Error><Code>{escape(code)}</Code><Message>{t} {t}</Message>"
                    f"<Resource>/{t}</Resource><RequestId>{t}</RequestId>"
                    f"<HostId>{t}</HostId><BucketName>{t}</BucketName>"
                    f"<Key>{t}</Key></Error>"
                )
                self.send(status, "application/xml", doc.encode())

            def html(self) -> None:
                body = f"<html><body><h1>{hostile.token}</h1></body></html>".encode()
                self.send(400, "text/html", body)

            def not_http(self) -> None:
                self.wfile.write(f"{hostile.token} {hostile.token}\r\n\r\n".encode())
                self.close_connection = True

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
