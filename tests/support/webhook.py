"""A JSON webhook receiver on 127.0.0.1 for notification tests (asyncio, on a bridge loop thread).

Every POST body is parsed as JSON and put on :attr:`WebhookReceiver.received` (a thread-safe
queue the test reads with a timeout); the answer is ``status`` (200 unless told otherwise).
"""

from __future__ import annotations

import asyncio
import json
import queue
from typing import Any

from ml4t_live.bridge import LoopThread


class WebhookReceiver:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        self.port = 0
        self._loop = LoopThread("test", "webhook")
        self._server: asyncio.Server | None = None

    def start(self) -> WebhookReceiver:
        async def setup() -> None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        self._loop.start(setup)
        return self

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length)
            self.received.put(json.loads(body))
            writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()

    def next(self, timeout: float = 5.0) -> dict[str, Any]:
        return self.received.get(timeout=timeout)

    def close(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()

        self._loop.close(shutdown)


def fields(message: dict[str, Any]) -> dict[str, str]:
    """The ``key: value`` lines of a notification's body (after its summary line)."""
    lines = message["message"].split("\n")[1:]
    return dict(line.split(": ", 1) for line in lines)
