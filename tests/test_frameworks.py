"""guard() under real frameworks that build or take their own boto3 client: LangChain, pydantic-ai, Strands.

Each framework runs unmodified over a guarded client or session answered by the in-process fake. What
counts is the fake's request log: the allowed model is called, the refused one never leaves, and the
refusal reaches the app as `ModelNotAllowedError` (directly, or as the cause of the framework's own error).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from safe_bedrock import ModelNotAllowedError, guard
from safe_bedrock.testing import FakeBedrock
from tests.clienthelpers import HAIKU, LLAMA, NO_BOTOCORE_RETRIES

REFUSED = LLAMA


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


def _refusal_in_chain(error: BaseException) -> ModelNotAllowedError | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ModelNotAllowedError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def test_langchain_chat_bedrock_converse_over_a_guarded_client(fake: FakeBedrock) -> None:
    from langchain_aws import ChatBedrockConverse  # a test dependency, imported where used

    client = guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU])
    fake.add_response(text="Paris")

    answer = ChatBedrockConverse(model=HAIKU, client=client, region_name="us-east-1").invoke("Capital?")
    with pytest.raises(Exception) as caught:  # noqa: PT011 - LangChain may wrap; the cause is checked below
        ChatBedrockConverse(model=REFUSED, client=client, region_name="us-east-1").invoke("Capital?")

    assert answer.content == "Paris"
    assert _refusal_in_chain(caught.value) is not None
    assert [request.model_id for request in fake.requests] == [HAIKU]


def test_langchain_streaming_over_a_guarded_client(fake: FakeBedrock) -> None:
    from langchain_aws import ChatBedrockConverse

    client = guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU])
    fake.add_stream(text="Par is")

    chunks = list(ChatBedrockConverse(model=HAIKU, client=client, region_name="us-east-1").stream("Capital?"))
    with pytest.raises(Exception) as caught:  # noqa: PT011
        list(ChatBedrockConverse(model=REFUSED, client=client, region_name="us-east-1").stream("Capital?"))

    assert "".join(chunk.text for chunk in chunks) == "Par is"
    assert _refusal_in_chain(caught.value) is not None
    assert [request.operation for request in fake.requests] == ["ConverseStream"]


def test_pydantic_ai_over_a_guarded_client(fake: FakeBedrock) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.bedrock import BedrockConverseModel
    from pydantic_ai.providers.bedrock import BedrockProvider

    provider = BedrockProvider(bedrock_client=guard(fake.client(config=NO_BOTOCORE_RETRIES), allow=[HAIKU]))
    fake.add_response(text="Paris")

    # asyncio.run rather than run_sync, which leaves its event loop open for the garbage collector.
    result = asyncio.run(Agent(BedrockConverseModel(HAIKU, provider=provider)).run("Capital?"))
    with pytest.raises(Exception) as caught:  # noqa: PT011
        asyncio.run(Agent(BedrockConverseModel(REFUSED, provider=provider)).run("Capital?"))

    assert result.output == "Paris"
    assert _refusal_in_chain(caught.value) is not None
    assert [request.model_id for request in fake.requests] == [HAIKU]


def test_strands_builds_its_client_from_a_guarded_session(fake: FakeBedrock) -> None:
    from strands import Agent
    from strands.models.bedrock import BedrockModel

    session = guard(fake.session(), allow=[HAIKU])
    fake.add_stream(text="Paris")

    allowed = Agent(model=BedrockModel(model_id=HAIKU, boto_session=session), callback_handler=None)
    refused = Agent(model=BedrockModel(model_id=REFUSED, boto_session=session), callback_handler=None)
    answer = allowed("Capital?")
    with pytest.raises(Exception) as caught:  # noqa: PT011
        refused("Capital?")

    assert "Paris" in str(answer)
    assert _refusal_in_chain(caught.value) is not None
    assert [request.model_id for request in fake.requests] == [HAIKU]
