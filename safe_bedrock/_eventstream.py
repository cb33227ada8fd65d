"""Encoding AWS event-stream frames (application/vnd.amazon.eventstream), sans I/O.

A frame is: total length (u32) + headers length (u32) + CRC32 of those 8 bytes, then the headers, the payload
and a CRC32 of everything before it. Each header is name length (u8), name, value type (u8; 7 = string), value
length (u16) and value. All integers are big-endian.

Why our own: botocore only decodes these frames; awscrt encodes them but is a large C extension we would add
to every install for about forty lines; the other pure-Python encoders on PyPI live inside service-specific
SDKs (for example amazon-transcribe's) and are not maintained as general codecs. Decoding stays botocore's,
and the tests round-trip every frame through `botocore.eventstream.EventStreamBuffer`.

Encoding runs once per streamed event, so the common headers are encoded once and cached.
"""

from __future__ import annotations

import json
import struct
from functools import lru_cache
from typing import TYPE_CHECKING
from zlib import crc32

if TYPE_CHECKING:
    from collections.abc import Mapping


_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")
# The sizes botocore's decoder accepts; a frame outside them would be refused by every AWS client.
_MAX_HEADERS_LENGTH = 128 * 1024
_MAX_PAYLOAD_LENGTH = 16 * 1024 * 1024


@lru_cache(maxsize=512)
def _header(name: str, value: str) -> bytes:
    raw_name = name.encode("utf-8")
    raw_value = value.encode("utf-8")
    if not 0 < len(raw_name) < 256:
        raise ValueError(f"event-stream header name must be 1-255 bytes, got {len(raw_name)}: {name!r}")
    if len(raw_value) > 0x7FFF:
        raise ValueError(f"event-stream header {name!r} value is longer than 32767 bytes")
    return (
        bytes((len(raw_name),)) + raw_name + bytes((_STRING,)) + len(raw_value).to_bytes(2, "big") + raw_value
    )


def _frame(headers: bytes, payload: bytes) -> bytes:
    if len(headers) > _MAX_HEADERS_LENGTH:
        raise ValueError(f"event-stream headers are {len(headers)} bytes, the limit is {_MAX_HEADERS_LENGTH}")
    if len(payload) > _MAX_PAYLOAD_LENGTH:
        raise ValueError(f"event-stream payload is {len(payload)} bytes, the limit is {_MAX_PAYLOAD_LENGTH}")
    prelude = _PRELUDE.pack(len(headers) + len(payload) + 16, len(headers))
    prelude += _CRC.pack(crc32(prelude))
    # The message CRC covers prelude, its CRC, headers and payload; crc32 continues from a running value.
    crc = crc32(payload, crc32(headers, crc32(prelude)))
    return b"".join((prelude, headers, payload, _CRC.pack(crc)))


def encode_frame(*, headers: Mapping[str, str], payload: bytes) -> bytes:
    """One frame with string-valued headers (the only type Bedrock's streams use)."""
    return _frame(b"".join(_header(name, value) for name, value in headers.items()), payload)


@lru_cache(maxsize=256)
def _headers(message_type: str, type_: str, content_type: str) -> bytes:
    kind = _header(f":{message_type}-type", type_)
    return kind + _header(":content-type", content_type) + _header(":message-type", message_type)


def event_frame(event_type: str, payload: bytes, *, content_type: str = "application/json") -> bytes:
    """An event frame, e.g. event_frame("chunk", b'{"bytes": "..."}') or event_frame("messageStart", ...)."""
    return _frame(_headers("event", event_type, content_type), payload)


def exception_frame(exception_type: str, message: str) -> bytes:
    """A modeled mid-stream exception, e.g. exception_frame("throttlingException", "Too many requests...").

    `exception_type` is the event-stream member name (lowerCamel), which botocore reports as the error code.
    """
    return _frame(
        _headers("exception", exception_type, "application/json"),
        json.dumps({"message": message}).encode("utf-8"),
    )
