"""The async client shows retries as the sync client does: attempts and time in the error, which
RetryConfig setting to change, and raw boto3's ResponseMetadata; and no credentials is the typed error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiobotocore.session import AioSession
from botocore.exceptions import NoCredentialsError

from safe_bedrock import AsyncSafeBedrockClient, RetryConfig, ThrottlingError
from safe_bedrock._retry import set_testing
from safe_bedrock.errors import CredentialsNotFoundError
from safe_bedrock.testing import FakeBedrockServer
from tests.aio.aiohelpers import async_client
from tests.clienthelpers import HAIKU, messages, without_aws_environment

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_waiting() -> Iterator[None]:
    with set_testing(True):
        yield


@pytest.fixture
def server() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as server:
        yield server


def retry_metadata(response: Any) -> dict[str, Any]:
    metadata = response["ResponseMetadata"]
    return {key: metadata[key] for key in ("RetryAttempts", "MaxAttemptsReached") if key in metadata}


async def test_a_first_attempt_success_has_raw_boto3s_metadata(server: FakeBedrockServer) -> None:
    async with async_client(server, allow=[HAIKU]) as client:
        response = await client.converse(modelId=HAIKU, messages=messages())
    assert retry_metadata(response) == {"RetryAttempts": 0}


async def test_a_success_after_two_throttles_counts_two_retries(server: FakeBedrockServer) -> None:
    server.add_client_error("ThrottlingException", times=2)
    async with async_client(server, allow=[HAIKU]) as client:
        response = await client.converse(modelId=HAIKU, messages=messages())
        server.add_client_error("ThrottlingException")
        stream = await client.converse_stream(modelId=HAIKU, messages=messages())
        async with stream["stream"] as events:
            assert [event async for event in events]
    assert retry_metadata(response) == {"RetryAttempts": 2, "MaxAttemptsReached": True}
    assert retry_metadata(stream) == {"RetryAttempts": 1}


async def test_throttling_after_every_attempt_says_how_often_and_what_to_change(
    server: FakeBedrockServer,
) -> None:
    server.add_client_error("ThrottlingException", times=4)
    async with async_client(server, allow=[HAIKU], retry=RetryConfig(attempts=4)) as client:
        with pytest.raises(ThrottlingError) as caught:
            await client.converse(modelId=HAIKU, messages=messages())
    error = caught.value
    assert len(server.requests) == 4
    assert re.search(r" after 4 attempts over \d+\.\d s: ", str(error))
    assert "RetryConfig.attempts=4" in error.fix
    assert (error.fields()["attempts"], type(error.fields()["elapsed_s"])) == (4, float)
    assert retry_metadata(error.response) == {"RetryAttempts": 3, "MaxAttemptsReached": True}
    assert "(reached max retries: 3)" in repr(error)


async def test_no_credentials_against_the_local_fake_is_the_typed_error(
    server: FakeBedrockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_aws_environment(monkeypatch)
    async with AsyncSafeBedrockClient(
        allow=[HAIKU], session=AioSession(), region_name="us-east-1", endpoint_url=server.endpoint_url
    ) as client:
        with pytest.raises(CredentialsNotFoundError) as caught:
            await client.converse(modelId=HAIKU, messages=messages())
    error = caught.value
    assert isinstance(error, NoCredentialsError)
    assert error.local_endpoint is True
    assert "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test" in str(error)
    assert server.requests == []
