"""safe-bedrock in one minute: an allowed call, an allowed stream, a refused model.

Runs offline against the built-in fake Bedrock by default (`make demo`). With SAFE_BEDROCK_LIVE=1 and AWS
credentials it runs the same calls against real Amazon Bedrock (AWS_REGION, default us-east-1; the model
must be enabled for your account there).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import TYPE_CHECKING

from safe_bedrock import ModelNotAllowedError, SafeBedrockClient
from safe_bedrock.testing import FakeBedrock

if TYPE_CHECKING:
    from collections.abc import Iterator

MODEL = os.environ.get("SAFE_BEDROCK_MODEL", "anthropic.claude-3-haiku-20240307-v1:0")
REFUSED = "meta.llama3-70b-instruct-v1:0"


@contextlib.contextmanager
def bedrock_client() -> Iterator[SafeBedrockClient]:
    region = os.environ.get("AWS_REGION", "us-east-1")
    if os.environ.get("SAFE_BEDROCK_LIVE") == "1":
        print(f"# live: real Amazon Bedrock in {region}")
        with SafeBedrockClient(allow=[MODEL], region_name=region) as client:
            yield client
        return
    print("# offline: the built-in fake Bedrock (set SAFE_BEDROCK_LIVE=1 for the real one)")
    with (
        FakeBedrock() as fake,
        SafeBedrockClient(allow=[MODEL], session=fake.session(), region_name=region) as client,
    ):
        yield client


def anthropic_body(prompt: str) -> str:
    return json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 200,
            "messages": [{"role": "user", "content": prompt}],
        }
    )


def main() -> int:
    with bedrock_client() as client:
        print(f"\n1. invoke_model on {MODEL}")
        response = client.invoke_model(modelId=MODEL, body=anthropic_body("Say hello in five words."))
        answer = json.loads(response["body"].read())
        print("   ->", answer["content"][0]["text"])

        print(f"\n2. invoke_model_with_response_stream on {MODEL}, tokens as they come")
        streamed = client.invoke_model_with_response_stream(
            modelId=MODEL, body=anthropic_body("Count from one to five.")
        )
        print("   -> ", end="")
        with streamed["body"] as events:
            for event in events:
                chunk = json.loads(event["chunk"]["bytes"])
                if chunk.get("type") == "content_block_delta":
                    print(chunk["delta"].get("text", ""), end="", flush=True)
        print()

        print(f"\n3. a model that is not on the allowlist: {REFUSED}")
        try:
            client.invoke_model(modelId=REFUSED, body=anthropic_body("This is never sent."))
        except ModelNotAllowedError as refused:
            print("   -> refused locally, nothing sent:")
            print("     ", refused)
    return 0


if __name__ == "__main__":
    sys.exit(main())
