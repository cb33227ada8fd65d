"""Under load, async: 500 concurrent tasks share one AsyncSafeBedrockClient against the fake server.

The mix of the sync soak (tests/reliability/test_load.py): allowed calls and streams, refused models,
invalid ids, validation errors, throttling past the attempt cap, streams failing mid-way and streams left
early. Every task checks its own outcome; afterwards the hook accounts for every call exactly once,
nothing refused appears in the fake's request log, and the client never holds more connections than
its pool allows. `SAFE_BEDROCK_SOAK=10` multiplies the calls per task.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Awaitable, Callable, Iterator

import pytest
from aiobotocore.config import AioConfig

from safe_bedrock import (
    AsyncSafeBedrockClient,
    InvalidModelIdError,
    InvalidRequestError,
    ModelNotAllowedError,
    ThrottlingError,
)
from safe_bedrock._retry import set_testing
from safe_bedrock.testing import FakeBedrockServer
from tests.aio.aiohelpers import astream_text, async_client
from tests.clienthelpers import HAIKU, LLAMA, SONNET, anthropic_body, messages
from tests.reliability.relhelpers import Recorder, can_count_connections, established_to, scaled

pytest.importorskip("aiobotocore")

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not can_count_connections(), reason="reads the kernel's TCP table"),
]

TASKS = 500
CALLS_PER_TASK = scaled(2, full=20)
POOL = 50  # aiohttp's connection limit for the client (botocore's max_pool_connections)
TITAN = "amazon.titan-text-express-v1"
MISTRAL = "mistral.mistral-large-2402-v1:0"
ALLOWED = (HAIKU, LLAMA, TITAN, MISTRAL)

Run = Callable[[AsyncSafeBedrockClient, FakeBedrockServer, str], Awaitable[None]]


async def _converse(client: AsyncSafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    answer = await client.converse(modelId=HAIKU, messages=messages(tag))
    assert answer["output"]["message"]["content"][0]["text"] == f"You said: {tag}"


async def _invoke(client: AsyncSafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    response = await client.invoke_model(modelId=HAIKU, body=anthropic_body(tag))
    answer = json.loads(await response["body"].read())
    assert answer["content"][0]["text"] == f"You said: {tag}"


async def _stream(client: AsyncSafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    response = await client.converse_stream(modelId=HAIKU, messages=messages(tag))
    async with response["stream"] as events:
        assert await astream_text(events) == f"You said: {tag}"


async def _stream_left_early(client: AsyncSafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    response = await client.invoke_model_with_response_stream(modelId=HAIKU, body=anthropic_body(tag))
    async with response["body"] as events:
        async for _ in events:
            break


async def _refused(client: AsyncSafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    with pytest.raises(ModelNotAllowedError):
        await client.converse(modelId=SONNET, messages=messages(tag))


async def _invalid(client: AsyncSafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    with pytest.raises(InvalidModelIdError):
        await client.converse(modelId=f"{HAIKU}/../{tag}", messages=messages(tag))


async def _validation(client: AsyncSafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    with pytest.raises(InvalidRequestError):
        await client.converse(modelId=LLAMA, messages=messages(tag))


async def _throttled(client: AsyncSafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    with pytest.raises(ThrottlingError):
        await client.converse(modelId=MISTRAL, messages=messages(tag))


async def _mid_stream(client: AsyncSafeBedrockClient, server: FakeBedrockServer, tag: str) -> None:
    server.add_stream_error("throttlingException", after=2, model=TITAN)
    response = await client.converse_stream(modelId=TITAN, messages=messages(tag))
    seen = 0
    with pytest.raises(ThrottlingError) as caught:  # noqa: PT012 - the failure comes while iterating
        async for _ in response["stream"]:
            seen += 1
    assert caught.value.mid_stream
    assert seen == 2


# (name, run, model it sends to or None, requests per call, outcome)
KINDS: list[tuple[str, Run, str | None, int, str]] = [
    ("converse", _converse, HAIKU, 1, "ok"),
    ("invoke", _invoke, HAIKU, 1, "ok"),
    ("stream", _stream, HAIKU, 1, "ok"),
    ("stream left early", _stream_left_early, HAIKU, 1, "ok"),
    ("refused", _refused, None, 0, "refused"),
    ("invalid", _invalid, None, 0, "refused"),
    ("validation", _validation, LLAMA, 1, "error"),
    ("throttled", _throttled, MISTRAL, 3, "error"),
    ("mid-stream", _mid_stream, TITAN, 1, "error"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBedrockServer]:
    with set_testing(True), FakeBedrockServer() as server:
        yield server


async def test_five_hundred_concurrent_tasks_share_one_async_client(server: FakeBedrockServer) -> None:
    server.reset()
    server.route(LLAMA, error="ValidationException")
    server.route(MISTRAL, error="ThrottlingException")
    recorder = Recorder()
    plans = [[KINDS[(task + i) % len(KINDS)] for i in range(CALLS_PER_TASK)] for task in range(TASKS)]
    failures: list[tuple[str, BaseException]] = []
    peak = 0

    async def sample(stop: asyncio.Event) -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, established_to(server.port))
            await asyncio.sleep(0.02)

    async def work(client: AsyncSafeBedrockClient, task: int) -> None:
        for i, (name, run, _model, _requests, _outcome) in enumerate(plans[task]):
            try:
                await run(client, server, f"task {task} call {i}")
            except BaseException as exc:  # noqa: BLE001, PERF203 - reported below
                failures.append((name, exc))

    config = AioConfig(retries={"total_max_attempts": 1}, max_pool_connections=POOL)
    async with async_client(server, allow=list(ALLOWED), hooks=[recorder], config=config) as client:
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample(stop))
        await asyncio.wait_for(asyncio.gather(*(work(client, t) for t in range(TASKS))), timeout=300)
        stop.set()
        await sampler

    assert failures == [], failures[:5]
    total = TASKS * CALLS_PER_TASK
    details = recorder.snapshot()
    assert len(details) == total
    planned = collections.Counter(kind for plan in plans for kind in plan)
    expected_outcomes: collections.Counter[str] = collections.Counter()
    for (_name, _run, _model, _requests, outcome), count in planned.items():
        expected_outcomes[outcome] += count
    assert collections.Counter(d.outcome for d in details) == expected_outcomes
    expected_sent: collections.Counter[str | None] = collections.Counter()
    for (_name, _run, model, requests, _outcome), count in planned.items():
        if model is not None:
            expected_sent[model] += requests * count
    assert collections.Counter(r.model_id for r in server.requests) == expected_sent
    server.assert_no_pending_responses()
    assert peak <= POOL + 4
