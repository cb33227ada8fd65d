"""A small app whose Bedrock code is tested in test_chat_app.py with the `fake_bedrock` fixture."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

MODEL_ID = "us.anthropic.claude-3-5-haiku-20241022-v1:0"


class ChatApp:
    def __init__(self, bedrock: Any) -> None:
        self.bedrock = bedrock  # a boto3 bedrock-runtime client (or a SafeBedrockClient)

    def ask(self, question: str) -> str:
        response = self.bedrock.converse(
            modelId=MODEL_ID,
            messages=[{"role": "user", "content": [{"text": question}]}],
            inferenceConfig={"maxTokens": 300},
        )
        return str(response["output"]["message"]["content"][0]["text"])

    def stream(self, question: str) -> Iterator[str]:
        response = self.bedrock.converse_stream(
            modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": question}]}]
        )
        for event in response["stream"]:
            if "contentBlockDelta" in event:
                yield event["contentBlockDelta"]["delta"]["text"]

    def summarise(self, text: str) -> str:
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 200,
            "messages": [{"role": "user", "content": f"Summarise: {text}"}],
        }
        response = self.bedrock.invoke_model(modelId=MODEL_ID, body=json.dumps(body))
        return str(json.loads(response["body"].read())["content"][0]["text"])

    def ask_or_apologise(self, question: str) -> str:
        try:
            return self.ask(question)
        except self.bedrock.exceptions.ThrottlingException:
            return "Too busy right now, please try again."
