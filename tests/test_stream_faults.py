"""Faults mid-stream are typed, say how far the stream got, and never pass for a whole answer.

Every fault is injected on the wire (the in-process fake and `FakeBedrockServer` over a socket) and met
through the real stack: botocore's event-stream parser, urllib3, the retry policy and the stream wrapper.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.eventstream import ChecksumMismatch
from structlog.testing import capture_logs
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from safe_bedrock import ModelStreamError, SafeBedrockClient
from safe_bedrock._eventstream import event_frame
from safe_bedrock._measure import FrameTracker, StreamMeter
from safe_bedrock._retry import set_testing
from safe_bedrock.errors import (
    StreamChecksumError,
    StreamConnectionError,
    StreamIncompleteError,
    StreamReadTimeoutError,
    StreamTruncatedError,
)
from safe_bedrock.testing import FakeBedrock, FakeBedrockServer
from tests.clienthelpers import HAIKU, LLAMA, NO_BOTOCORE_RETRIES, anthropic_body, messages

TITAN = "amazon.titan-text-express-v1"
NOVA = "amazon.nova-micro-v1:0"
MISTRAL = "mistral.mistral-7b-instruct-v0:2"
MODELS = [HAIKU, LLAMA, TITAN, NOVA, MISTRAL]

START = event_frame("messageStart", b'{"role":"assistant"}')
DELTA = event_frame("contentBlockDelta", b'{"delta":{"text":"hi"},"contentBlockIndex":0}')
STOP = event_frame("messageStop", b'{"stopReason":"end_turn"}')
METADATA = event_frame(
    "metadata", b'{"usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2},"metrics":{}}'
)


def _flip_last_byte(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x01])


def _body(model: str) -> str:
    if model == HAIKU:
        return anthropic_body("one two three four")
    if model == TITAN:
        return json.dumps({"inputText": "one two three four"})
    if model == NOVA:
        return json.dumps({"messages": [{"role": "user", "content": [{"text": "one two three four"}]}]})
    return json.dumps({"prompt": "one two three four"})


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with set_testing(True), FakeBedrock(models=[TITAN]) as fake:  # Titan Text is retired: added back
        yield fake


@pytest.fixture
def client(fake: FakeBedrock) -> Iterator[SafeBedrockClient]:
    raw = fake.client(config=NO_BOTOCORE_RETRIES)
    with SafeBedrockClient(allow=MODELS, client=raw) as client:
        yield client


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBedrockServer]:
    with set_testing(True), FakeBedrockServer(models=[TITAN]) as server:
        yield server


def _converse(client: SafeBedrockClient, seen: list[Any]) -> None:
    seen.extend(client.converse_stream(modelId=HAIKU, messages=messages("one two three four"))["stream"])


def _invoke(client: SafeBedrockClient, model: str, seen: list[Any]) -> None:
    response = client.invoke_model_with_response_stream(modelId=model, body=_body(model))
    seen.extend(response["body"])


# --- what "closing" means, per family ----------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_a_whole_invoke_stream_of_every_family_ends_quietly_and_complete(
    client: SafeBedrockClient, model: str
) -> None:
    seen: list[Any] = []
    stream = client.invoke_model_with_response_stream(modelId=model, body=_body(model))["body"]
    seen.extend(stream)
    assert len(seen) >= 2
    assert stream.complete


@pytest.mark.parametrize("model", MODELS)
def test_an_invoke_stream_cut_before_its_closing_chunk_raises_at_its_end(
    fake: FakeBedrock, client: SafeBedrockClient, model: str
) -> None:
    fake.add_truncated_stream(after=2, operation="InvokeModelWithResponseStream")
    seen: list[Any] = []
    with pytest.raises(StreamIncompleteError) as raised:
        _invoke(client, model, seen)
    assert not isinstance(raised.value, StreamTruncatedError)
    assert (raised.value.mid_stream, raised.value.events_received, len(seen)) == (True, 2, 2)
    assert raised.value.request_id
    assert "call again" in raised.value.fix


def test_a_converse_stream_without_its_metadata_event_raises(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    # messageStop came, metadata (the last event the service sends) did not.
    fake.add_stream(events=[START, DELTA, STOP], operation="ConverseStream")
    seen: list[Any] = []
    with pytest.raises(StreamIncompleteError) as raised:
        _converse(client, seen)
    assert raised.value.events_received == len(seen) == 3


def test_a_converse_stream_ending_in_metadata_is_whole(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    fake.add_stream(events=[START, DELTA, STOP, METADATA], operation="ConverseStream")
    seen: list[Any] = []
    _converse(client, seen)
    assert len(seen) == 4


@pytest.mark.parametrize(
    ("chunk", "closed"),
    [
        ({"type": "message_stop"}, True),
        ({"type": "content_block_delta", "delta": {"text": "x"}}, False),
        ({"generation": "x", "stop_reason": "stop"}, True),
        ({"generation": "x", "stop_reason": None}, False),
        ({"outputText": "x", "completionReason": "FINISH"}, True),
        ({"outputText": "x", "completionReason": None}, False),
        ({"outputs": [{"text": "x", "stop_reason": "stop"}]}, True),
        ({"outputs": [{"text": "x", "stop_reason": None}]}, False),
        ({"choices": [{"delta": {}, "finish_reason": "stop"}]}, True),
        ({"metadata": {"usage": {}}}, True),
        ({"contentBlockDelta": {"delta": {"text": "x"}}}, False),
        ({"something": "of a family we do not know"}, None),
        ({"generation": "x", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 1}}, True),
    ],
)
def test_the_closing_chunk_of_each_family_is_recognised(chunk: dict[str, Any], closed: bool | None) -> None:
    meter = StreamMeter()
    meter.observe({"chunk": {"bytes": json.dumps(chunk).encode()}})
    assert meter.closed() is closed


def test_the_frame_tracker_knows_a_cut_inside_a_frame() -> None:
    frames = START + DELTA
    for cut in range(len(frames) + 1):
        tracker = FrameTracker()
        for at in range(0, cut, 3):
            tracker.feed(frames[at : min(at + 3, cut)])
        assert tracker.inside_frame is (cut not in (0, len(START), len(frames)))


# --- transport faults, in-process ---------------------------------------------------------------------------


def test_a_stream_cut_inside_a_frame_raises_truncated(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    fake.add_truncated_stream(after=2, mid_frame=True, operation="ConverseStream")
    seen: list[Any] = []
    with pytest.raises(StreamTruncatedError) as raised:
        _converse(client, seen)
    assert raised.value.events_received == 2
    assert raised.value.__cause__ is None


def test_a_checksum_mismatch_after_events_is_typed_and_still_botocores(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    fake.add_stream(events=[START, DELTA, _flip_last_byte(DELTA), STOP, METADATA], operation="ConverseStream")
    seen: list[Any] = []
    with pytest.raises(ChecksumMismatch) as raised:
        _converse(client, seen)
    error = raised.value
    assert isinstance(error, StreamChecksumError)
    assert isinstance(error, ModelStreamError)
    assert (error.mid_stream, error.events_received) == (True, 2)
    assert isinstance(error.__cause__, ChecksumMismatch)
    assert not isinstance(error.__cause__, StreamChecksumError)
    assert error.request_id
    assert len(fake.requests) == 1  # events reached the caller: never resent


def test_a_dropped_connection_is_typed_and_still_urllib3s(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    fake.add_connection_drop(after=3, operation="ConverseStream")
    seen: list[Any] = []
    with pytest.raises(ProtocolError) as raised:
        _converse(client, seen)
    assert isinstance(raised.value, StreamConnectionError)
    assert raised.value.events_received == len(seen) == 3
    assert type(raised.value.__cause__) is ProtocolError


def test_a_read_timeout_mid_stream_is_typed_and_still_urllib3s(fake: FakeBedrock) -> None:
    raw = fake.client(config=Config(retries={"total_max_attempts": 1}, read_timeout=0.2))
    client = SafeBedrockClient(allow=[HAIKU], client=raw)
    fake.add_stream(text="one two three", delay=1.0, operation="ConverseStream")
    seen: list[Any] = []
    with pytest.raises(Urllib3ReadTimeoutError) as raised:
        _converse(client, seen)
    assert isinstance(raised.value, StreamReadTimeoutError)
    assert raised.value.events_received == len(seen) == 1
    assert "read_timeout" in raised.value.fix
    client.close()


def test_the_log_event_of_a_cut_stream_names_the_typed_error(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    fake.add_truncated_stream(after=2, operation="ConverseStream")
    with capture_logs() as logs, pytest.raises(StreamIncompleteError):
        _converse(client, [])
    (event,) = logs
    assert (event["complete"], event["outcome"], event["error_class"]) == (
        False,
        "error",
        "StreamIncompleteError",
    )


# --- leaving early never raises ---------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["truncate", "drop", "mid_frame"])
def test_a_stream_left_early_never_raises(fake: FakeBedrock, client: SafeBedrockClient, fault: str) -> None:
    if fault == "drop":
        fake.add_connection_drop(after=3, operation="ConverseStream")
    else:
        fake.add_truncated_stream(after=3, mid_frame=fault == "mid_frame", operation="ConverseStream")
    stream = client.converse_stream(modelId=HAIKU, messages=messages("one two three four"))["stream"]
    for _ in stream:
        break
    stream.close()
    assert not stream.complete
    with stream as again:  # and leaving through the context manager
        assert list(again) == []


def test_an_empty_stream_is_resent_because_nothing_reached_the_caller(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    fake.add_truncated_stream(after=0, operation="ConverseStream")
    seen: list[Any] = []
    _converse(client, seen)
    assert len(fake.requests) == 2
    assert "metadata" in seen[-1]


# --- over a real socket -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "raised", "also"),
    [
        (lambda s: s.add_truncated_stream(after=2, operation="ConverseStream"), StreamIncompleteError, None),
        (
            lambda s: s.add_truncated_stream(after=2, mid_frame=True, operation="ConverseStream"),
            StreamTruncatedError,
            None,
        ),
        (
            lambda s: s.add_connection_drop(after=2, operation="ConverseStream"),
            StreamConnectionError,
            ProtocolError,
        ),
        (
            lambda s: s.add_stream(events=[START, DELTA, _flip_last_byte(STOP)], operation="ConverseStream"),
            StreamChecksumError,
            ChecksumMismatch,
        ),
    ],
    ids=["incomplete", "truncated", "dropped", "checksum"],
)
def test_over_a_socket_every_fault_is_typed(
    server: FakeBedrockServer, script: Any, raised: type[Exception], also: type[Exception] | None
) -> None:
    server.reset()
    script(server)
    client = SafeBedrockClient(allow=[HAIKU], client=server.client(config=NO_BOTOCORE_RETRIES))
    seen: list[Any] = []
    with capture_logs(), pytest.raises(raised) as error:
        _converse(client, seen)
    assert error.value.events_received == len(seen) == 2
    assert error.value.request_id == server.requests[0].headers.get(
        "x-amzn-requestid", error.value.request_id
    )
    if also is not None:
        assert isinstance(error.value, also)
        assert isinstance(error.value.__cause__, also)
    client.close()


def test_over_a_socket_a_whole_invoke_stream_never_raises(server: FakeBedrockServer) -> None:
    server.reset()
    client = SafeBedrockClient(allow=MODELS, client=server.client(config=NO_BOTOCORE_RETRIES))
    with capture_logs():
        for model in MODELS:
            seen: list[Any] = []
            _invoke(client, model, seen)
            assert seen
    client.close()
