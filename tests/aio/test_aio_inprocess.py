"""FakeBedrock in-process for aiobotocore clients: the fake server's answers, with no socket.

Every test runs AsyncSafeBedrockClient over a real aiobotocore client whose `before-send` is answered by
FakeBedrock, so aiobotocore's serialisation, signing, parsing and event-stream decoding all run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiobotocore.config import AioConfig

from safe_bedrock import (
    AsyncSafeBedrockClient,
    InvalidRequestError,
    MissingPermissionError,
    ModelNotAllowedError,
    ThrottlingError,
)
from safe_bedrock._retry import set_testing
from safe_bedrock.testing import FakeBedrock, FakeBedrockServer
from tests.aio.aiohelpers import astream_text, async_client, isolated_session
from tests.clienthelpers import HAIKU, SONNET, anthropic_body, messages

pytestmark = pytest.mark.anyio

NO_BOTOCORE_RETRIES = AioConfig(retries={"total_max_attempts": 1})
STREAMS = {"invoke_model_with_response_stream": "body", "converse_stream": "stream"}


@pytest.fixture(autouse=True)
def _no_waiting() -> Iterator[None]:
    with set_testing(True):
        yield


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture
async def client(fake: FakeBedrock) -> AsyncIterator[AsyncSafeBedrockClient]:
    """AsyncSafeBedrockClient wrapping an aiobotocore client attached to the in-process fake."""
    session = fake.aio_session()
    async with session.create_client(
        "bedrock-runtime", region_name="us-east-1", config=NO_BOTOCORE_RETRIES
    ) as raw:
        yield AsyncSafeBedrockClient(allow=[HAIKU], client=fake.attach(raw))


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as server:
        yield server


def _stream_kwargs(method: str, prompt: str) -> dict[str, Any]:
    if method == "converse_stream":
        return {"modelId": HAIKU, "messages": messages(prompt)}
    return {"modelId": HAIKU, "body": anthropic_body(prompt)}


def _without_latency(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The metadata event's latency is measured per reply; everything else is a function of the request.
    return [e for e in events if "metadata" not in e]


# --- the same answers as through the fake server -----------------------------------------------------------


async def test_invoke_model_answers_as_the_fake_server_does(
    client: AsyncSafeBedrockClient, server: FakeBedrockServer
) -> None:
    async with async_client(server, allow=[HAIKU]) as over_http:
        ours = await client.invoke_model(modelId=HAIKU, body=anthropic_body("in process"))
        theirs = await over_http.invoke_model(modelId=HAIKU, body=anthropic_body("in process"))
        assert json.loads(await ours["body"].read()) == json.loads(await theirs["body"].read())
        assert set(ours) == set(theirs)


async def test_converse_answers_as_the_fake_server_does(
    client: AsyncSafeBedrockClient, server: FakeBedrockServer
) -> None:
    async with async_client(server, allow=[HAIKU]) as over_http:
        ours = await client.converse(modelId=HAIKU, messages=messages("in process"))
        theirs = await over_http.converse(modelId=HAIKU, messages=messages("in process"))
    assert ours["output"] == theirs["output"]
    assert ours["usage"] == theirs["usage"]
    assert ours["output"]["message"]["content"][0]["text"] == "You said: in process"


@pytest.mark.parametrize("method", sorted(STREAMS))
async def test_streams_yield_the_events_the_fake_server_sends(
    client: AsyncSafeBedrockClient, server: FakeBedrockServer, fake: FakeBedrock, method: str
) -> None:
    key = STREAMS[method]
    async with async_client(server, allow=[HAIKU]) as over_http:
        ours = [e async for e in (await getattr(client, method)(**_stream_kwargs(method, "a b c")))[key]]
        theirs = [e async for e in (await getattr(over_http, method)(**_stream_kwargs(method, "a b c")))[key]]
    assert _without_latency(ours) == _without_latency(theirs)
    assert len(ours) == len(theirs)
    assert fake.requests[0].operation == (
        "ConverseStream" if method == "converse_stream" else "InvokeModelWithResponseStream"
    )


async def test_a_scripted_stream_arrives_whole_through_the_async_client(
    client: AsyncSafeBedrockClient, fake: FakeBedrock
) -> None:
    fake.add_stream(text="Paris is the capital")
    response = await client.converse_stream(modelId=HAIKU, messages=messages("Capital of France?"))
    assert await astream_text(response["stream"]) == "Paris is the capital"
    assert fake.requests[0].json == {"messages": messages("Capital of France?")}


# --- errors ------------------------------------------------------------------------------------------------


async def test_a_scripted_client_error_surfaces_typed(
    client: AsyncSafeBedrockClient, fake: FakeBedrock
) -> None:
    fake.add_client_error("AccessDeniedException", variant="implicit_deny")
    with pytest.raises(client.exceptions.AccessDeniedException) as caught:
        await client.converse(modelId=HAIKU, messages=messages())
    assert isinstance(caught.value, MissingPermissionError)
    assert caught.value.action == "bedrock:InvokeModel"
    assert len(fake.requests) == 1


async def test_throttling_is_retried_then_answers(client: AsyncSafeBedrockClient, fake: FakeBedrock) -> None:
    fake.add_client_error("ThrottlingException", times=2)
    answer = await client.converse(modelId=HAIKU, messages=messages("again"))
    assert answer["output"]["message"]["content"][0]["text"] == "You said: again"
    assert len(fake.requests) == 3


async def test_an_error_on_invoke_model_surfaces_typed(
    client: AsyncSafeBedrockClient, fake: FakeBedrock
) -> None:
    fake.add_client_error("ValidationException", message="max_tokens must be positive")
    with pytest.raises(InvalidRequestError) as caught:
        await client.invoke_model(modelId=HAIKU, body=anthropic_body())
    assert "max_tokens must be positive" in str(caught.value)


@pytest.mark.parametrize("method", sorted(STREAMS))
async def test_a_mid_stream_error_is_typed_and_not_retried(
    client: AsyncSafeBedrockClient, fake: FakeBedrock, method: str
) -> None:
    fake.add_stream_error("throttlingException", after=2)
    response = await getattr(client, method)(**_stream_kwargs(method, "a b c d"))
    received: list[object] = []
    with pytest.raises(ThrottlingError) as caught:
        await _collect(response[STREAMS[method]], into=received)
    assert len(received) == 2
    assert caught.value.mid_stream is True
    assert caught.value.events_received == 2
    assert len(fake.requests) == 1


async def test_a_stream_failing_before_its_first_event_is_retried(
    client: AsyncSafeBedrockClient, fake: FakeBedrock
) -> None:
    fake.add_stream_error("throttlingException", after=0)
    response = await client.converse_stream(modelId=HAIKU, messages=messages("once"))
    assert await astream_text(response["stream"]) == "You said: once"
    assert len(fake.requests) == 2


async def test_a_connection_dropped_before_the_answer_is_retried(
    client: AsyncSafeBedrockClient, fake: FakeBedrock
) -> None:
    fake.add_connection_drop()
    answer = await client.converse(modelId=HAIKU, messages=messages("after a drop"))
    assert answer["output"]["message"]["content"][0]["text"] == "You said: after a drop"
    assert len(fake.requests) == 2


async def test_a_connection_cut_mid_stream_raises_what_aiohttp_raises(
    client: AsyncSafeBedrockClient, fake: FakeBedrock
) -> None:
    import aiohttp  # aiobotocore's transport, present in this environment only

    fake.add_connection_drop(after=2, operation="converse_stream")
    response = await client.converse_stream(modelId=HAIKU, messages=messages("a b c d e f"))
    with pytest.raises(aiohttp.ClientPayloadError):
        async for _ in response["stream"]:
            pass
    assert len(fake.requests) == 1


async def test_refused_models_send_nothing(client: AsyncSafeBedrockClient, fake: FakeBedrock) -> None:
    with pytest.raises(ModelNotAllowedError):
        await client.converse(modelId=SONNET, messages=messages())
    with pytest.raises(ModelNotAllowedError):
        await client.invoke_model_with_response_stream(modelId=SONNET, body=anthropic_body())
    assert fake.requests == []


async def _collect(events: AsyncIterator[object], *, into: list[object]) -> None:
    async for event in events:
        into.append(event)  # noqa: PERF401 - the events before an error must be kept


# --- the event loop keeps running --------------------------------------------------------------------------


async def _ticker(ticks: list[int]) -> None:
    while True:
        await asyncio.sleep(0.002)
        ticks[0] += 1


async def test_a_paced_stream_does_not_block_the_event_loop(
    client: AsyncSafeBedrockClient, fake: FakeBedrock
) -> None:
    fake.add_stream(text="one two three", delay=0.05)
    ticks = [0]
    ticker = asyncio.create_task(_ticker(ticks))
    try:
        response = await client.converse_stream(modelId=HAIKU, messages=messages())
        seen = [ticks[0] async for _ in response["stream"]]
    finally:
        ticker.cancel()
    # Between two events the stream waited 50 ms; the other task ran meanwhile, every time.
    assert all(later > earlier for earlier, later in itertools.pairwise(seen))


async def test_a_delayed_answer_does_not_block_the_event_loop(
    client: AsyncSafeBedrockClient, fake: FakeBedrock
) -> None:
    fake.add_response(text="late", delay=0.1)
    ticks = [0]
    ticker = asyncio.create_task(_ticker(ticks))
    try:
        answer = await client.converse(modelId=HAIKU, messages=messages())
    finally:
        ticker.cancel()
    assert answer["output"]["message"]["content"][0]["text"] == "late"
    assert ticks[0] > 1


async def test_leaving_a_paced_stream_early_closes_it(
    client: AsyncSafeBedrockClient, fake: FakeBedrock
) -> None:
    fake.add_stream(text="a b c d e f g h", delay=0.02)
    response = await client.converse_stream(modelId=HAIKU, messages=messages())
    async with response["stream"] as events:
        async for _ in events:
            break
    fake.assert_no_pending_responses()


async def test_cancelling_a_task_waiting_on_a_delayed_stream_returns_at_once(
    client: AsyncSafeBedrockClient, fake: FakeBedrock
) -> None:
    fake.add_stream(text="a b", delay=5)
    response = await client.converse_stream(modelId=HAIKU, messages=messages())

    async def consume() -> None:
        async for _ in response["stream"]:
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=1)


# --- sessions and attachment -------------------------------------------------------------------------------


async def test_the_client_built_from_aio_session_is_answered_in_process(fake: FakeBedrock) -> None:
    async with AsyncSafeBedrockClient(
        allow=[HAIKU], session=fake.aio_session(), region_name="eu-west-1"
    ) as c:
        answer = await c.converse(modelId=HAIKU, messages=messages("from a session"))
    assert answer["output"]["message"]["content"][0]["text"] == "You said: from a session"
    assert fake.requests[0].region == "eu-west-1"
    assert fake.requests[0].access_key == "AKIAFAKEBEDROCK00000"


async def test_a_session_client_after_close_raises_instead_of_reaching_aws(fake: FakeBedrock) -> None:
    session = fake.aio_session()
    fake.close()
    async with session.create_client("bedrock-runtime", config=NO_BOTOCORE_RETRIES) as raw:
        with pytest.raises(RuntimeError, match="was closed"):
            await raw.converse(modelId=HAIKU, messages=messages())


async def test_attach_answers_in_process_and_detach_hands_back_to_the_endpoint(
    fake: FakeBedrock, server: FakeBedrockServer
) -> None:
    server.reset()
    raw_client = isolated_session().create_client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        config=NO_BOTOCORE_RETRIES,
    )
    async with raw_client as raw:
        fake.attach(raw)
        await raw.converse(modelId=HAIKU, messages=messages())
        fake.detach(raw)
        await raw.converse(modelId=HAIKU, messages=messages())
    assert (len(fake.requests), len(server.requests)) == (1, 1)


def test_importing_the_testing_package_does_not_import_aiobotocore() -> None:
    code = "import sys, safe_bedrock.testing; sys.exit('aiobotocore' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
