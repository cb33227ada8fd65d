"""A MissingPermissionError's suggested policy is the fix: enforce it in the fake and the same call works."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from safe_bedrock import MissingPermissionError, SafeBedrockClient
from safe_bedrock.testing import FakeBedrock
from tests.clienthelpers import HAIKU, US_HAIKU, anthropic_body, messages, safe_client, stream_text

# Allows an unrelated model only: every call below is an implicit deny to begin with.
UNRELATED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "bedrock:InvokeModel",
            "Resource": "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1",
        }
    ],
}


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        fake.set_policy(UNRELATED)
        yield fake


@pytest.fixture
def client(fake: FakeBedrock) -> SafeBedrockClient:
    return safe_client(fake, allow=[HAIKU, US_HAIKU])


def _call(client: SafeBedrockClient, operation: str, model: str) -> str:
    if operation == "converse":
        answer = client.converse(modelId=model, messages=messages("fixed"))
        return str(answer["output"]["message"]["content"][0]["text"])
    if operation == "converse_stream":
        return stream_text(client.converse_stream(modelId=model, messages=messages("fixed"))["stream"])
    if operation == "invoke_model_with_response_stream":
        response = client.invoke_model_with_response_stream(modelId=model, body=anthropic_body("fixed"))
        return stream_text(response["body"])
    raise AssertionError(operation)


@pytest.mark.parametrize(
    ("operation", "model", "action"),
    [
        ("converse", HAIKU, "bedrock:InvokeModel"),
        ("converse_stream", HAIKU, "bedrock:InvokeModelWithResponseStream"),
        ("invoke_model_with_response_stream", HAIKU, "bedrock:InvokeModelWithResponseStream"),
        ("converse", US_HAIKU, "bedrock:InvokeModel"),
        ("converse_stream", US_HAIKU, "bedrock:InvokeModelWithResponseStream"),
    ],
)
def test_the_suggested_policy_makes_the_denied_call_succeed(
    fake: FakeBedrock, client: SafeBedrockClient, operation: str, model: str, action: str
) -> None:
    with pytest.raises(MissingPermissionError) as caught:
        _call(client, operation, model)
    error = caught.value
    assert error.action == action
    assert error.suggested_policy is not None
    assert '"Resource": "*"' not in str(error.suggested_policy).replace("'", '"')
    fake.set_policy(error.suggested_policy)
    assert _call(client, operation, model) == "You said: fixed"


def test_the_suggested_policy_grants_only_that_action(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    with pytest.raises(MissingPermissionError) as caught:
        client.converse(modelId=HAIKU, messages=messages())
    fake.set_policy(caught.value.suggested_policy)
    with pytest.raises(MissingPermissionError) as streaming:
        client.converse_stream(modelId=HAIKU, messages=messages())
    assert streaming.value.action == "bedrock:InvokeModelWithResponseStream"
