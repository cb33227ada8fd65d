"""Decided twice, async: no refused model leaves an aiobotocore client, whatever handlers do to the request.

Counted on the fake's request log: the in-process fake answers in place of the aiobotocore HTTP session,
after every event handler; one test runs over real sockets against FakeBedrockServer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiobotocore.config import AioConfig

from safe_bedrock import AsyncSafeBedrockClient, ModelNotAllowedError, guard
from safe_bedrock.testing import FakeBedrock, FakeBedrockServer
from tests.aio.aiohelpers import isolated_session
from tests.clienthelpers import HAIKU, messages
from tests.test_wire import REFUSED, REWRITES

pytestmark = pytest.mark.anyio

NO_BOTOCORE_RETRIES = AioConfig(retries={"total_max_attempts": 1})


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


@pytest.mark.parametrize(("event", "handler"), REWRITES, ids=lambda v: getattr(v, "__name__", v))
async def test_a_handler_that_rewrites_the_request_after_the_check_sends_nothing(
    fake: FakeBedrock, event: str, handler: Callable[..., None]
) -> None:
    session = fake.aio_session()
    async with AsyncSafeBedrockClient(
        allow=[HAIKU], session=session, region_name="us-east-1", config=NO_BOTOCORE_RETRIES
    ) as client:
        client.meta.events.register(f"{event}.bedrock-runtime.Converse", handler)
        with pytest.raises(ModelNotAllowedError):
            await client.converse(modelId=HAIKU, messages=messages())

    assert fake.requests == []


async def test_guard_on_an_aio_session_guards_every_client_created_from_it(fake: FakeBedrock) -> None:
    session = guard(fake.aio_session(), allow=[HAIKU])
    async with session.create_client("bedrock-runtime", config=NO_BOTOCORE_RETRIES) as client:
        with pytest.raises(ModelNotAllowedError):
            await client.converse(modelId=REFUSED, messages=messages())
        await client.converse(modelId=HAIKU, messages=messages())

    assert [request.model_id for request in fake.requests] == [HAIKU]


async def test_guard_on_an_aio_client_refuses_presigning_and_rewrites(fake: FakeBedrock) -> None:
    async with fake.aio_session().create_client("bedrock-runtime", config=NO_BOTOCORE_RETRIES) as raw:
        client = guard(raw, allow=[HAIKU])
        with pytest.raises(ModelNotAllowedError):
            await client.generate_presigned_url("invoke_model", Params={"modelId": REFUSED, "body": b"{}"})
        url = await client.generate_presigned_url("invoke_model", Params={"modelId": HAIKU, "body": b"{}"})
        client.meta.events.register("before-send.bedrock-runtime", REWRITES[5][1])
        with pytest.raises(ModelNotAllowedError):
            await client.converse(modelId=HAIKU, messages=messages())

    assert "X-Amz-Signature=" in url
    assert fake.requests == []


async def test_over_real_sockets_a_rewritten_async_request_never_reaches_the_server() -> None:
    with FakeBedrockServer() as server:
        async with AsyncSafeBedrockClient(
            allow=[HAIKU],
            session=isolated_session(),
            region_name="us-east-1",
            endpoint_url=server.endpoint_url,
            config=NO_BOTOCORE_RETRIES,
        ) as client:
            rewrite: Any = REWRITES[5][1]
            client.meta.events.register("before-send.bedrock-runtime", rewrite)
            with pytest.raises(ModelNotAllowedError):
                await client.converse(modelId=HAIKU, messages=messages())
            client.meta.events.unregister("before-send.bedrock-runtime", rewrite)
            await client.converse(modelId=HAIKU, messages=messages())

        assert [request.model_id for request in server.requests] == [HAIKU]
