"""Attacks on the wire check, async: each test asserts the promise (a successful attack fails it)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

import pytest
from aiobotocore.config import AioConfig

from safe_bedrock import AsyncSafeBedrockClient, SafeBedrockError, guard
from safe_bedrock.testing import FakeBedrock
from tests.clienthelpers import HAIKU, messages
from tests.test_wire_attacks import REFUSED, _sent_refused

pytestmark = pytest.mark.anyio

NO_BOTOCORE_RETRIES = AioConfig(retries={"total_max_attempts": 1})


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


async def test_the_wrapped_aio_client_stays_guarded_after_its_shell_is_dropped(fake: FakeBedrock) -> None:
    async with fake.aio_session().create_client("bedrock-runtime", config=NO_BOTOCORE_RETRIES) as raw:
        inner = AsyncSafeBedrockClient(allow=[HAIKU], client=raw).client
        gc.collect()
        with contextlib.suppress(SafeBedrockError):
            await inner.converse(modelId=REFUSED, messages=messages())

    assert _sent_refused(fake.requests) == []


async def test_presigning_through_the_class_on_a_guarded_aio_client_is_decided(fake: FakeBedrock) -> None:
    async with fake.aio_session().create_client("bedrock-runtime", config=NO_BOTOCORE_RETRIES) as raw:
        client: Any = guard(raw, allow=[HAIKU])
        with pytest.raises(SafeBedrockError):
            await type(client).generate_presigned_url(
                client, "invoke_model", Params={"modelId": REFUSED, "body": b"{}"}
            )
