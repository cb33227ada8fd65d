"""Checked by mypy in `make typecheck`, never run: a user's type checker sees boto3's own types."""

from __future__ import annotations

from mypy_boto3_bedrock_runtime.type_defs import (
    ConverseResponseTypeDef,
    ConverseStreamResponseTypeDef,
    InvokeModelResponseTypeDef,
)
from typing_extensions import assert_type

from safe_bedrock import SafeBedrockClient


def drop_in(client: SafeBedrockClient) -> None:
    answer = client.converse(
        modelId="anthropic.claude-3-haiku-20240307-v1:0",
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
    )
    assert_type(answer, ConverseResponseTypeDef)
    assert_type(client.converse_stream(modelId="m", messages=[]), ConverseStreamResponseTypeDef)
    assert_type(client.invoke_model(modelId="m", body=b"{}"), InvokeModelResponseTypeDef)
    client.converse(modelId="m", messages=[], temperature=0.5)  # type: ignore[call-arg]
