"""Fuzzing our event-stream code and the error-message parser against what the network hands us.

- Our encoder (`_eventstream`) round-trips any headers and payload through botocore's decoder (the one
  every boto3 user runs), or refuses, naming the limit, what that decoder would refuse; a corrupted frame
  (a flipped bit, a cut, a splice) never decodes into different content.
- Our stream wrapper, over the real stack: damaged frames never reach the caller altered (what arrives is
  a prefix of what was sent), and arbitrary bytes end the stream in a botocore error, a typed error or a
  clean end, never a hang, never another exception; either way the call leaves exactly one log event.
- Arbitrary error codes and messages served by the fake become typed errors, in bounded time.

Every input runs under a watchdog: a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer, ParserError
from botocore.exceptions import EventStreamError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from safe_bedrock import BedrockServiceError, SafeBedrockClient, SafeBedrockError
from safe_bedrock._classify import classify
from safe_bedrock._eventstream import encode_frame, event_frame, exception_frame
from safe_bedrock._retry import set_testing
from safe_bedrock.testing import FakeBedrock
from tests.clienthelpers import HAIKU, messages, safe_client
from tests.reliability.relhelpers import Recorder, scaled

WATCHDOG = 5.0  # seconds any single input may take: generous for a slow CI box, finite for a hang


def within(seconds: float, fn: Callable[[], Any]) -> Any:
    """Run `fn` in a daemon thread; fail if it is still running after `seconds`."""
    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed back to the test thread
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True, name="fuzz-watchdog")
    started = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"input still running after {seconds}s (hang)"
    if failure:
        raise failure[0]
    assert time.monotonic() - started < seconds
    return result[0]


def decode(data: bytes) -> list[tuple[dict[str, object], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(dict(message.headers), message.payload) for message in buffer]


# --- the codec ------------------------------------------------------------------------------------------

header_names = st.text(min_size=1, max_size=30).filter(lambda s: 0 < len(s.encode()) < 256)
frames_strategy = st.lists(
    st.tuples(st.dictionaries(header_names, st.text(max_size=60), max_size=4), st.binary(max_size=512)),
    min_size=1,
    max_size=4,
)


@settings(max_examples=scaled(300), deadline=None)
@given(frames=frames_strategy, data=st.data())
def test_a_corrupted_stream_never_decodes_into_different_content(
    frames: list[tuple[dict[str, str], bytes]], data: st.DataObject
) -> None:
    encoded = [encode_frame(headers=headers, payload=payload) for headers, payload in frames]
    stream = bytearray(b"".join(encoded))
    how = data.draw(st.sampled_from(["flip", "cut", "splice", "insert"]))
    at = data.draw(st.integers(min_value=0, max_value=len(stream) - 1))
    if how == "flip":
        stream[at] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
    elif how == "cut":
        del stream[at:]
    elif how == "splice":
        del stream[at : at + data.draw(st.integers(min_value=1, max_value=16))]
    else:
        stream[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    assume(bytes(stream) != b"".join(encoded))
    try:
        decoded = within(WATCHDOG, lambda: decode(bytes(stream)))
    except ParserError:
        return
    # Whatever decodes is frames that were sent, whole and in order: the CRCs let nothing altered
    # through (a splice or a cut may still drop whole frames, which no frame check can see).
    sent = iter(frames)
    assert all(any(frame == original for original in sent) for frame in decoded), (decoded, frames)


any_name = st.one_of(st.text(max_size=40), st.text(alphabet="ab", min_size=250, max_size=260))
any_value = st.one_of(st.text(max_size=60), st.just("x" * 0x7FFF), st.just("x" * 0x8000))


@settings(max_examples=scaled(300), deadline=None)
@given(headers=st.dictionaries(any_name, any_value, max_size=5), payload=st.binary(max_size=2_048))
def test_our_encoder_round_trips_any_frame_or_refuses_what_botocore_could_not_read(
    headers: dict[str, str], payload: bytes
) -> None:
    sizes = [(len(name.encode()), len(value.encode())) for name, value in headers.items()]
    readable = all(0 < name < 256 and value <= 0x7FFF for name, value in sizes) and (
        sum(4 + name + value for name, value in sizes) <= 128 * 1024
    )
    if not readable:
        with pytest.raises(ValueError, match="header"):  # named: what is over which limit
            encode_frame(headers=headers, payload=payload)
        return
    assert decode(encode_frame(headers=headers, payload=payload)) == [(headers, payload)]


@settings(max_examples=scaled(150), deadline=None)
@given(
    kind=st.sampled_from(["messageStart", "contentBlockDelta", "metadata", "chunk"]),
    payload=st.binary(max_size=4_096),
    exception=st.sampled_from(
        ["throttlingException", "modelStreamErrorException", "internalServerException"]
    ),
    message=st.text(max_size=300),
)
def test_event_and_exception_frames_round_trip_through_botocore(
    kind: str, payload: bytes, exception: str, message: str
) -> None:
    (event,) = decode(event_frame(kind, payload))
    assert event == (
        {":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
        payload,
    )
    ((headers, body),) = decode(exception_frame(exception, message))
    assert headers[":exception-type"] == exception
    assert headers[":message-type"] == "exception"
    assert body.decode("utf-8")  # JSON text carrying the message


# --- bytes we serve, read by the real client ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with set_testing(True), FakeBedrock() as fake:
        yield fake


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def client(fake: FakeBedrock, recorder: Recorder) -> SafeBedrockClient:
    return safe_client(fake, allow=[HAIKU], hooks=[recorder])


GOOD = event_frame("messageStart", b'{"role":"assistant"}')
served = st.one_of(
    st.binary(max_size=1_024),
    st.binary(max_size=256).map(lambda junk: GOOD + junk),
    st.tuples(st.binary(max_size=64), st.integers(min_value=0, max_value=len(GOOD))).map(
        lambda pair: GOOD[: pair[1]] + pair[0] + GOOD[pair[1] :]
    ),
)


@settings(
    max_examples=scaled(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(junk=served)
def test_any_bytes_we_serve_end_the_stream_in_a_botocore_error_or_cleanly(
    fake: FakeBedrock, client: SafeBedrockClient, recorder: Recorder, junk: bytes
) -> None:
    fake.reset()
    recorder.clear()
    fake.add_stream(events=[junk], operation="ConverseStream")

    def read() -> int:
        response = client.converse_stream(modelId=HAIKU, messages=messages())
        return sum(1 for _ in response["stream"])

    # botocore's decoder refuses it, or it decodes to an exception frame (typed), or to events.
    with contextlib.suppress(ParserError, EventStreamError, BedrockServiceError):
        within(WATCHDOG, read)
    # A stream corrupt from its first frame is resent once (nothing reached the caller; the retry gets the
    # fake's default answer); one that got further is never resent. Either way: one call, one record.
    assert len(fake.requests) in (1, 2)
    assert len(recorder.snapshot()) == 1


CONVERSE_EVENTS = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"delta": {"text": "Hello"}, "contentBlockIndex": 0}),
    ("contentBlockDelta", {"delta": {"text": ", world"}, "contentBlockIndex": 0}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("messageStop", {"stopReason": "end_turn"}),
]
SENT = [{name: body} for name, body in CONVERSE_EVENTS]
FRAMES = b"".join(event_frame(name, json.dumps(body).encode()) for name, body in CONVERSE_EVENTS)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """The frames of a whole answer (and, sometimes, a mid-stream exception), damaged once."""
    stream = bytearray(FRAMES)
    if draw(st.booleans()):
        stream += exception_frame("throttlingException", "Too many requests, please wait.")
    at = draw(st.integers(min_value=0, max_value=len(stream) - 1))
    how = draw(st.sampled_from(["flip", "cut", "splice", "insert"]))
    if how == "flip":
        stream[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
    elif how == "cut":
        del stream[at:]
    elif how == "splice":
        del stream[at : at + draw(st.integers(min_value=1, max_value=16))]
    else:
        stream[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(stream)


@settings(
    max_examples=scaled(200),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=damaged())
def test_damaged_frames_never_reach_the_caller_altered(
    fake: FakeBedrock, client: SafeBedrockClient, recorder: Recorder, stream: bytes
) -> None:
    fake.reset()
    recorder.clear()
    # Every attempt (a failed first read is retried) gets the same damaged bytes.
    fake.add_stream(events=[stream], operation="ConverseStream", times=10)
    received: list[object] = []

    def read() -> None:
        response = client.converse_stream(modelId=HAIKU, messages=messages())
        received.extend(response["stream"])

    # botocore's decoder refuses the bytes, or the exception frame arrives (typed), or the stream ends.
    with contextlib.suppress(ParserError, EventStreamError, SafeBedrockError):
        within(WATCHDOG, read)
    # What the caller saw is what was sent, up to where the damage is: nothing altered, nothing twice.
    assert received == SENT[: len(received)]
    assert len(recorder.snapshot()) == 1


# --- error messages ---------------------------------------------------------------------------------------

FRAGMENTS = [
    "User: arn:aws:sts::123456789012:assumed-role/r/s",
    " is not authorized to perform: ",
    "bedrock:InvokeModel",
    " on resource: ",
    "arn:aws:bedrock:us-east-1::foundation-model/x",
    " because no identity-based policy allows the ",
    " with an explicit deny in a service control policy: ",
    " action",
    "Invocation of model ID ",
    " with on-demand throughput isn't supported",
    "You don't have access to the model with the specified model ID.",
    "Too many tokens, please wait before trying again.",
    "((((",
    "::::",
    "    ",
    "\u00a0",
    "\n",
]
CODES = [
    "AccessDeniedException",
    "ValidationException",
    "ResourceNotFoundException",
    "ThrottlingException",
    "ServiceQuotaExceededException",
    "ModelErrorException",
    "InternalServerException",
    "ServiceUnavailableException",
    "ModelNotReadyException",
    "ModelTimeoutException",
    "UnrecognizedClientException",
    "ExpiredTokenException",
]
hostile_messages = st.one_of(
    st.text(max_size=500),
    st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join),
    st.tuples(st.sampled_from(FRAGMENTS), st.integers(min_value=1_000, max_value=20_000)).map(
        lambda pair: pair[0] * pair[1]
    ),
)


@settings(max_examples=scaled(300), deadline=None)
@given(code=st.one_of(st.sampled_from(CODES), st.text(max_size=40)), message=hostile_messages)
def test_the_message_parser_classifies_anything_in_bounded_time(code: str, message: str) -> None:
    diagnosis = within(WATCHDOG, lambda: classify(code, message))
    assert issubclass(diagnosis.error_class, BedrockServiceError)


@settings(
    max_examples=scaled(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(code=st.sampled_from(CODES), message=hostile_messages)
def test_any_error_message_the_service_sends_becomes_a_typed_error(
    fake: FakeBedrock, client: SafeBedrockClient, code: str, message: str
) -> None:
    fake.reset()
    fake.add_client_error(code, message=message, times=3)

    def call() -> None:
        client.converse(modelId=HAIKU, messages=messages())

    with pytest.raises(BedrockServiceError) as caught:
        within(WATCHDOG, call)
    assert caught.value.response["Error"]["Code"] == code
    assert "\n" not in str(caught.value)
