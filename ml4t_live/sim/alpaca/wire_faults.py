"""The faulty answers to ``POST /v2/orders`` (see :mod:`.faults` for the kinds and parameters).

Each function turns one armed :class:`~.faults.SubmitFault` into what the client sees on the
wire: an error status, an HTML page, a body cut in the middle, a connection closed without an
answer, or a TCP reset. Runs on the venue loop, inside the aiohttp handler.

After the transport is closed the handler still returns a response object: aiohttp's attempt to
write it fails with ``ConnectionError``, which aiohttp treats as a client that went away (no log
noise, the server keeps serving).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

from aiohttp import web
from loguru import logger

from .faults import SubmitFault

_log = logger.bind(component="sim.alpaca.rest")
_HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def reset(request: web.Request) -> web.StreamResponse:
    """Answer with a TCP reset (SO_LINGER 0, then abort): the client sees ``ECONNRESET``."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=204)


def drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without writing a byte: the client sees a dropped connection."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=204)


async def truncated(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """A 200 whose ``Content-Length`` promises the whole body; half of it is sent, then FIN."""
    full = json.dumps(body).encode()
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(full)
    await response.prepare(request)
    await response.write(full[: len(full) // 2])
    if request.transport is not None:
        request.transport.close()
    return response


async def answer(request: web.Request, fault: SubmitFault, body: dict[str, Any] | None) -> web.StreamResponse:
    """The faulty answer to a submit; ``body`` is the order's JSON when it was created."""
    _log.info("fault: answering POST /v2/orders with {} (order created: {})", fault.kind, body is not None)
    if fault.kind == "connection_reset":
        return reset(request)
    if fault.kind == "accept_then_drop":
        return drop(request)
    if fault.kind == "truncated_body":
        return await truncated(request, body or {"code": 50010000, "message": "internal server error"})
    if fault.kind == "accept_then_delay":
        await asyncio.sleep(fault.seconds)  # the client may have given up: then the write fails quietly
        return web.Response(status=200, body=json.dumps(body).encode(), content_type="application/json")
    if fault.kind == "non_json_body":
        return web.Response(status=fault.status, body=_HTML, content_type="text/html")
    message = "gateway timeout" if fault.status == 504 else "internal server error"
    payload = json.dumps({"code": fault.status * 100000, "message": message}).encode()
    return web.Response(status=fault.status, body=payload, content_type="application/json")
