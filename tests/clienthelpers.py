"""Shared pieces for the client tests: a SafeBedrockClient over the in-process fake, request bodies."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from botocore.config import Config

from safe_bedrock import SafeBedrockClient
from safe_bedrock.testing import FakeBedrock

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
LLAMA = "meta.llama3-70b-instruct-v1:0"
US_HAIKU = "us.anthropic.claude-3-haiku-20240307-v1:0"
NO_BOTOCORE_RETRIES = Config(retries={"total_max_attempts": 1})


def safe_client(fake: FakeBedrock, *, allow: Any = (HAIKU,), **kwargs: Any) -> SafeBedrockClient:
    return SafeBedrockClient(allow=allow, client=fake.client(config=NO_BOTOCORE_RETRIES), **kwargs)


def anthropic_body(prompt: str = "hello") -> str:
    return json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": prompt}],
        }
    )


def messages(prompt: str = "hello") -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": prompt}]}]


def stream_text(events: Any) -> str:
    """The answer text of an invoke_model_with_response_stream or converse_stream event iterator."""
    parts: list[str] = []
    for event in events:
        if "chunk" in event:
            chunk = json.loads(event["chunk"]["bytes"])
            if chunk.get("type") == "content_block_delta":
                parts.append(chunk["delta"].get("text", ""))
        elif "contentBlockDelta" in event:
            parts.append(event["contentBlockDelta"]["delta"].get("text", ""))
    return "".join(parts)


def without_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS_* variable, no ~/.aws file and no instance metadata service (which botocore would wait for)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
