"""`kubectl get ... -w -o json` as a stream of objects: every version the API server
sends, none missed between two polls however fast the job moves."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import Any

_END = object()


class ObjectStream:
    """The objects a `kubectl ... -w -o json` process prints, in order."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self._proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=dict(env),
        )
        self._items: queue.Queue[object] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        decoder = json.JSONDecoder()
        buffer = ""
        for line in self._proc.stdout:
            buffer += line
            while True:
                text = buffer.lstrip()
                try:
                    obj, end = decoder.raw_decode(text)
                except json.JSONDecodeError:
                    break  # an object still arriving
                self._items.put(obj)
                buffer = text[end:]
        self._items.put(_END)

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next object; None when the stream ended. Raises queue.Empty on timeout."""
        item = self._items.get(timeout=max(timeout, 0.0))
        if item is _END:
            return None
        assert isinstance(item, dict)
        return item

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
        self._proc.wait(timeout=10)
        self._reader.join(timeout=10)
