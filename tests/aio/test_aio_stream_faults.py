"""The async stream face: mid-stream faults are typed as in the sync client; a whole stream never raises."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from botocore.eventstream import ChecksumMismatch
from structlog.testing import capture_logs

from safe_bedrock import AsyncSafeBedrockClient
from safe_bedrock._eventstream import event_frame
from safe_bedrock._retry import set_testing
from safe_bedrock.errors import (
    StreamChecksumError,
    StreamConnectionError,
    StreamIncompleteError,
    StreamTruncatedError,
)
from safe_bedrock.testing import FakeBedrock, FakeBedrockServer
from tests.aio.aiohelpers import async_client
from tests.clienthelpers import HAIKU, LLAMA, NO_BOTOCORE_RETRIES, anthropic_body, messages

pytestmark = pytest.mark.anyio

START = event_frame("messageStart", b'{"role":"assistant"}')
DELTA = event_frame("contentBlockDelta", b'{"delta":{"text":"hi"},"contentBlockIndex":0}')
STOP = event_frame("messageStop", b'{"stopReason":"end_turn"}')


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with set_testing(True), FakeBedrock() as fake:
        yield fake


@pytest.fixture
async def client(fake: FakeBedrock) -> AsyncIterator[AsyncSafeBedrockClient]:
    async with AsyncSafeBedrockClient(
        allow=[HAIKU, LLAMA], session=fake.aio_session(), region_name="us-east-1", config=NO_BOTOCORE_RETRIES
    ) as client:
        yield client


async def _converse(client: AsyncSafeBedrockClient, seen: list[Any]) -> None:
    response = await client.converse_stream(modelId=HAIKU, messages=messages("one two three four"))
    async for event in response["stream"]:
        seen.append(event)  # noqa: PERF401 - what arrived before a fault must be kept


async def test_a_whole_stream_of_each_face_never_raises(client: AsyncSafeBedrockClient) -> None:
    seen: list[Any] = []
    await _converse(client, seen)
    for model, body in ((HAIKU, anthropic_body("one two")), (LLAMA, json.dumps({"prompt": "one two"}))):
        response = await client.invoke_model_with_response_stream(modelId=model, body=body)
        seen.extend([event async for event in response["body"]])
        assert response["body"].complete
    assert seen


async def test_a_stream_without_its_closing_events_raises_at_its_end(
    fake: FakeBedrock, client: AsyncSafeBedrockClient
) -> None:
    fake.add_truncated_stream(after=2, operation="ConverseStream")
    seen: list[Any] = []
    with pytest.raises(StreamIncompleteError) as raised:
        await _converse(client, seen)
    assert (raised.value.mid_stream, raised.value.events_received, len(seen)) == (True, 2, 2)


async def test_a_stream_cut_inside_a_frame_raises_truncated(
    fake: FakeBedrock, client: AsyncSafeBedrockClient
) -> None:
    fake.add_truncated_stream(after=2, mid_frame=True, operation="ConverseStream")
    with pytest.raises(StreamTruncatedError) as raised:
        await _converse(client, [])
    assert raised.value.events_received == 2


async def test_a_dropped_connection_is_typed_and_still_aiohttps(
    fake: FakeBedrock, client: AsyncSafeBedrockClient
) -> None:
    fake.add_connection_drop(after=2, operation="ConverseStream")
    with pytest.raises(aiohttp.ClientPayloadError) as raised:
        await _converse(client, [])
    assert isinstance(raised.value, StreamConnectionError)
    assert raised.value.events_received == 2
    assert isinstance(raised.value.__cause__, aiohttp.ClientPayloadError)


async def test_a_checksum_mismatch_is_typed_and_still_botocores(
    fake: FakeBedrock, client: AsyncSafeBedrockClient
) -> None:
    fake.add_stream(events=[START, DELTA, _flip(DELTA), STOP], operation="ConverseStream")
    with pytest.raises(ChecksumMismatch) as raised:
        await _converse(client, [])
    assert isinstance(raised.value, StreamChecksumError)
    assert raised.value.events_received == 2


def _flip(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x01])


async def test_a_stream_left_early_never_raises(fake: FakeBedrock, client: AsyncSafeBedrockClient) -> None:
    fake.add_truncated_stream(after=3, mid_frame=True, operation="ConverseStream")
    response = await client.converse_stream(modelId=HAIKU, messages=messages("one two three four"))
    async with response["stream"] as events:
        async for _ in events:
            break
    assert not events.complete


@pytest.mark.parametrize("fault", ["truncate", "drop"])
async def test_over_a_socket_faults_are_typed(fault: str) -> None:
    with set_testing(True), FakeBedrockServer() as server:
        if fault == "drop":
            server.add_connection_drop(after=2, operation="ConverseStream")
        else:
            server.add_truncated_stream(after=2, operation="ConverseStream")
        expected = StreamConnectionError if fault == "drop" else StreamIncompleteError
        async with async_client(server, allow=[HAIKU], config=NO_BOTOCORE_RETRIES) as client:
            seen: list[Any] = []
            with capture_logs(), pytest.raises(expected) as raised:
                await _converse(client, seen)
            assert raised.value.events_received == len(seen) == 2
            assert raised.value.request_id
