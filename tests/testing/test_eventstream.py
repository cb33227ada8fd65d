"""The event-stream encoder round-trips through botocore's own decoder (the one every boto3 user runs)."""

from __future__ import annotations

import json

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from safe_bedrock._eventstream import encode_frame, event_frame, exception_frame

header_names = st.text(min_size=1, max_size=40).filter(lambda s: 0 < len(s.encode()) < 256)
header_values = st.text(max_size=200)


def decode(data: bytes) -> list[tuple[dict[str, object], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(dict(message.headers), message.payload) for message in buffer]


@settings(max_examples=150, deadline=None)
@given(headers=st.dictionaries(header_names, header_values, max_size=6), payload=st.binary(max_size=4096))
def test_any_frame_decodes_to_the_same_headers_and_payload(headers: dict[str, str], payload: bytes) -> None:
    assert decode(encode_frame(headers=headers, payload=payload)) == [(headers, payload)]


@settings(max_examples=50, deadline=None)
@given(
    frames=st.lists(
        st.tuples(st.sampled_from(["chunk", "messageStart", "metadata"]), st.binary(max_size=300))
    ),
    cut=st.integers(min_value=1, max_value=64),
)
def test_a_stream_split_anywhere_decodes_frame_by_frame(frames: list[tuple[str, bytes]], cut: int) -> None:
    data = b"".join(event_frame(name, payload) for name, payload in frames)
    buffer = EventStreamBuffer()
    decoded = []
    for start in range(0, len(data), cut):
        buffer.add_data(data[start : start + cut])
        decoded.extend((m.headers[":event-type"], m.payload) for m in buffer)
    assert decoded == frames


def test_event_frame_carries_the_bedrock_event_headers() -> None:
    [(headers, payload)] = decode(event_frame("chunk", b'{"bytes":"e30="}'))
    assert headers == {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    assert payload == b'{"bytes":"e30="}'


def test_exception_frame_carries_the_lower_camel_type_and_a_json_message() -> None:
    [(headers, payload)] = decode(exception_frame("throttlingException", 'Too many "requests"'))
    assert headers[":message-type"] == "exception"
    assert headers[":exception-type"] == "throttlingException"
    assert json.loads(payload) == {"message": 'Too many "requests"'}


def test_a_corrupted_frame_is_refused_by_the_decoder() -> None:
    frame = bytearray(event_frame("chunk", b"payload"))
    frame[-6] ^= 0xFF
    with pytest.raises(ChecksumMismatch):
        decode(bytes(frame))


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"": "x"}, "name must be 1-255 bytes"),
        ({"x" * 256: "v"}, "name must be 1-255 bytes"),
        ({"n": "v" * 40000}, "longer than"),
    ],
)
def test_headers_outside_the_format_limits_are_refused(headers: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        encode_frame(headers=headers, payload=b"")
