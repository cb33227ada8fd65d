"""Cancelling the task that consumes a stream closes the stream and gives its connection back.

The proof is a client whose pool holds ONE connection, against a slow stream on the fake server: after the
consumer is cancelled, the next call goes through at once. Were the stream's connection still held, that
call would wait for the slow stream to end, seconds later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiobotocore.config import AioConfig
from structlog.testing import capture_logs

from safe_bedrock._retry import set_testing
from safe_bedrock.testing import FakeBedrockServer
from tests.aio.aiohelpers import async_client
from tests.clienthelpers import HAIKU, messages

pytestmark = pytest.mark.anyio

ONE_CONNECTION = AioConfig(max_pool_connections=1)
SLOW_TEXT = " ".join(f"word{i}" for i in range(40))  # 40+ events, 0.1 s apart: 4 s to the end
EVENT_DELAY = 0.1
PROMPT_LIMIT = 1.5  # the next call must start well before the slow stream would have ended


@pytest.fixture(autouse=True)
def _no_waiting() -> Iterator[None]:
    with set_testing(True):
        yield


@pytest.fixture
def server() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as server:
        yield server


async def _the_next_call_is_served_at_once(client: object) -> None:
    answer = await asyncio.wait_for(
        client.converse(modelId=HAIKU, messages=messages("next")),  # type: ignore[attr-defined]
        PROMPT_LIMIT,
    )
    assert answer["output"]["message"]["content"][0]["text"] == "You said: next"


@pytest.mark.parametrize("with_block", [True, False], ids=["async-with", "bare-async-for"])
async def test_cancelling_the_consumer_mid_stream_closes_it_and_frees_the_connection(
    server: FakeBedrockServer, with_block: bool
) -> None:
    server.add_stream(text=SLOW_TEXT, delay=EVENT_DELAY)
    received: list[object] = []
    first = asyncio.Event()

    async with async_client(server, allow=[HAIKU], config=ONE_CONNECTION) as client:

        async def consume() -> None:
            response = await client.converse_stream(modelId=HAIKU, messages=messages("slow"))
            if with_block:
                async with response["stream"] as events:
                    async for event in events:
                        received.append(event)
                        first.set()
            else:
                async for event in response["stream"]:
                    received.append(event)
                    first.set()

        with capture_logs() as logs:
            task = asyncio.create_task(consume())
            await asyncio.wait_for(first.wait(), 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        (event,) = logs
        assert event["closed_early"] is True
        assert event["outcome"] == "ok"
        assert 1 <= event["events"] < 10
        await _the_next_call_is_served_at_once(client)
    assert len(received) < 10


async def test_a_timeout_around_a_slow_stream_is_a_cancellation_too(server: FakeBedrockServer) -> None:
    server.add_stream(text=SLOW_TEXT, delay=EVENT_DELAY)
    async with async_client(server, allow=[HAIKU], config=ONE_CONNECTION) as client:

        async def consume() -> int:
            response = await client.converse_stream(modelId=HAIKU, messages=messages("slow"))
            return len([event async for event in response["stream"]])

        with capture_logs() as logs, pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(consume(), 0.35)
        assert [log["closed_early"] for log in logs] == [True]
        await _the_next_call_is_served_at_once(client)


async def test_cancelling_a_call_before_its_answer_starts_frees_the_connection_and_is_logged(
    server: FakeBedrockServer,
) -> None:
    server.add_stream(text="late answer", first_byte_delay=3.0)
    async with async_client(server, allow=[HAIKU], config=ONE_CONNECTION) as client:
        task = asyncio.create_task(client.converse_stream(modelId=HAIKU, messages=messages("wait")))
        with capture_logs() as logs:
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        (event,) = logs
        assert (event["outcome"], event["error_class"]) == ("error", "CancelledError")
        await _the_next_call_is_served_at_once(client)


async def test_many_cancelled_streams_leave_no_connection_behind(server: FakeBedrockServer) -> None:
    server.route("anthropic.*", text=SLOW_TEXT)
    async with async_client(server, allow=[HAIKU], config=AioConfig(max_pool_connections=4)) as client:

        async def consume_one() -> None:
            response = await client.converse_stream(modelId=HAIKU, messages=messages("x"))
            async for _ in response["stream"]:
                await asyncio.sleep(10)  # a consumer that never finishes on its own

        for _ in range(5):
            tasks = [asyncio.create_task(consume_one()) for _ in range(4)]
            await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results)
        server.reset()
        await _the_next_call_is_served_at_once(client)
