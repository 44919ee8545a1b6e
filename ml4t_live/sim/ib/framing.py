"""TWS API socket framing and the version handshake (pure; no sockets here).

Every message after the client's first four bytes is a 4-byte big-endian length followed by
that many bytes of UTF-8 text fields, each terminated by NUL. The client opens with the
literal ``API\\0`` and one length-prefixed version range (``v157..178`` plus optional
connect options, no trailing NUL). The server answers with a normal framed message of
exactly two fields: the negotiated server version and the connection time.

This simulator speaks server versions :data:`MIN_SERVER_VERSION` (157) to :data:`SERVER_VERSION`
(178: what ib_async 2.1.x negotiates with a current TWS) and, like TWS, answers with the highest
version both sides support (a gateway can be capped lower with ``max_version``, to rehearse an
older TWS). A client whose range does not reach into 157..178 is refused: a handshake reply
naming the client's highest version, then error 503 in that version's layout, then the socket
closes (ibapi 9.x decodes nothing that arrives before a handshake reply).
Per-version message layouts live in ``layouts.py``.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

SERVER_VERSION = 178
MIN_SERVER_VERSION = 157
HANDSHAKE_PREFIX = b"API\0"
MAX_FRAME_BYTES = 16 * 1024 * 1024
UNSET_INTEGER = 2**31 - 1
UNSET_DOUBLE = 1.7976931348623157e308

_RANGE = re.compile(r"^v(\d+)(?:\.\.(\d+))?(?:\s+(.*))?$")


class FramingError(ValueError):
    """The peer sent bytes that are not the TWS API protocol."""


class VersionRefused(FramingError):
    """The client's version range does not include the version this simulator speaks."""

    def __init__(self, low: int, high: int, highest: int = SERVER_VERSION) -> None:
        self.low, self.high = low, high
        super().__init__(
            f"The TWS is out of date and must be upgraded: client API version range "
            f"v{low}..{high} does not meet this simulated gateway's server versions "
            f"{MIN_SERVER_VERSION}..{highest}; use a client that speaks one of them"
        )


@dataclass(frozen=True, slots=True)
class ClientHello:
    low: int
    high: int
    options: str


def parse_client_hello(payload: bytes) -> ClientHello:
    """Parse the version range sent after ``API\\0`` (``v157..178 +PACEAPI``)."""
    text = payload.decode("ascii", errors="replace").strip("\0")
    match = _RANGE.match(text)
    if match is None:
        raise FramingError(f"expected a version range like 'v157..178', got {text!r}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    return ClientHello(low, high, match.group(3) or "")


def negotiate_version(hello: ClientHello, highest: int = SERVER_VERSION) -> int:
    """The server version to answer with (the highest both sides speak), or
    :class:`VersionRefused` when the ranges do not meet."""
    version = min(hello.high, highest)
    if version >= max(hello.low, MIN_SERVER_VERSION):
        return version
    raise VersionRefused(hello.low, hello.high, highest)


def format_field(value: object) -> str:
    """One field as ib_async writes and reads it (None -> empty, bool -> 0/1)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value == math.inf:
            return "Infinite"
        if math.isnan(value) or value >= UNSET_DOUBLE:
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value)) if value != 0 else "0"
        return repr(value)
    if isinstance(value, int):
        return "" if value == UNSET_INTEGER else str(value)
    return str(value)


def encode_fields(fields: Iterable[object]) -> bytes:
    """A complete frame: length prefix + NUL-terminated fields."""
    payload = "".join(format_field(f) + "\0" for f in fields).encode("utf-8")
    return struct.pack(">I", len(payload)) + payload


def encode_raw(payload: bytes) -> bytes:
    """A frame around raw bytes (the client's version range is sent this way)."""
    return struct.pack(">I", len(payload)) + payload


def decode_payload(payload: bytes) -> list[str]:
    """Split a frame's payload into fields, dropping the empty piece after the last NUL."""
    fields = payload.decode("utf-8", errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def frame_length(header: bytes) -> int:
    (length,) = struct.unpack(">I", header)
    if length > MAX_FRAME_BYTES:
        raise FramingError(f"frame of {length} bytes exceeds the {MAX_FRAME_BYTES} limit")
    return int(length)


def server_hello(version: int, now: datetime) -> bytes:
    """The two-field handshake reply: version and connection time."""
    stamp = now.astimezone(UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"
    return encode_fields([version, stamp])


class FrameBuffer:
    """Incremental frame splitter for bytes arriving in arbitrary chunks."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[list[str]]:
        self._buf += data
        out: list[list[str]] = []
        while len(self._buf) >= 4:
            length = frame_length(bytes(self._buf[:4]))
            if len(self._buf) < 4 + length:
                break
            payload = bytes(self._buf[4 : 4 + length])
            del self._buf[: 4 + length]
            out.append(decode_payload(payload))
        return out
