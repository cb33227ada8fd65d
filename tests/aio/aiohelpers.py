"""Shared pieces for the async client's tests: an AsyncSafeBedrockClient on the fake server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from aiobotocore.session import AioSession

from safe_bedrock import AsyncSafeBedrockClient
from safe_bedrock.testing import FakeBedrockServer

FAKE_KEY = "AKIAFAKEBEDROCK00000"
FAKE_SECRET = "fake-secret-access-key-for-safe-bedrock"


def isolated_session() -> AioSession:
    """An aiobotocore session with fake static credentials that ignores the environment's AWS profile."""
    session = AioSession(session_vars={"profile": (None, None, None, None)})
    session.set_config_variable("config_file", os.devnull)
    session.set_config_variable("credentials_file", os.devnull)
    session.set_credentials(FAKE_KEY, FAKE_SECRET)
    return session


@contextlib.asynccontextmanager
async def async_client(
    server: FakeBedrockServer, *, allow: Any, **kwargs: Any
) -> AsyncIterator[AsyncSafeBedrockClient]:
    async with AsyncSafeBedrockClient(
        allow=allow,
        session=isolated_session(),
        region_name=kwargs.pop("region_name", "us-east-1"),
        endpoint_url=server.endpoint_url,
        **kwargs,
    ) as client:
        yield client


async def astream_text(events: Any) -> str:
    """The answer text of an async invoke_model_with_response_stream or converse_stream."""
    from tests.clienthelpers import stream_text  # sync helper reused on collected events

    return stream_text([event async for event in events])
