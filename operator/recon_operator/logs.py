"""Structured (JSON) logs, with any credential the operator has handled scrubbed out.

The operator never logs a Secret on purpose; the scrubber is for the accidental case (a
client library echoing a signed URL or a request in an exception message).
"""

from __future__ import annotations

import logging
import threading

import kopf

MASK = "***"


class Redactor(logging.Filter):
    """Replaces every registered secret value in a record's rendered message."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *values: str) -> None:
        with self._lock:
            self._secrets.update(v for v in values if len(v) >= 4)

    def scrub(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self.scrub(message)
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if self.scrub(text) != text:
                record.exc_info = None
                scrubbed += f"\n{self.scrub(text)}"
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


REDACTOR = Redactor()


def configure(level: str) -> None:
    kopf.configure(log_format=kopf.LogFormat.JSON, log_prefix=False)
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        handler.addFilter(REDACTOR)
    # The HTTP client logs request bodies at DEBUG; they are never wanted in production.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLevelName(level)))
