"""FakeBedrock's default answers through a real boto3 client: every model operation, every provider family,
realistic headers, deterministic text derived from the prompt, and Bedrock's answers to bad input."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from safe_bedrock.testing import FakeBedrock
from safe_bedrock.testing._core import FakeBedrockCore, request_from_http
from safe_bedrock.testing._session import isolated_session

if TYPE_CHECKING:
    from collections.abc import Iterator

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
NO_RETRIES = Config(retries={"total_max_attempts": 1})
MESSAGES: Any = [{"role": "user", "content": [{"text": "What is the capital of France?"}]}]


def anthropic_body(text: str = "What is the capital of France?", **extra: object) -> str:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": text}],
    }
    body.update(extra)
    return json.dumps(body)


@pytest.fixture
def client(fake_bedrock: FakeBedrock) -> Any:
    # A model the catalog does not list as served (retired, or not in its snapshot) still has a family
    # worth testing: the test adds it, as an app's suite would.
    fake_bedrock.add_model("amazon.titan-text-express-v1")
    return fake_bedrock.client(config=NO_RETRIES)


def chunks(response: Any) -> list[dict[str, Any]]:
    return [json.loads(event["chunk"]["bytes"]) for event in response["body"]]


def test_invoke_model_answers_in_the_anthropic_messages_shape_with_bedrock_headers(client: Any) -> None:
    response = client.invoke_model(modelId=HAIKU, body=anthropic_body())
    body = json.loads(response["body"].read())
    assert body["type"] == "message"
    assert body["role"] == "assistant"
    assert body["content"] == [{"type": "text", "text": "You said: What is the capital of France?"}]
    assert body["stop_reason"] == "end_turn"
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert response["contentType"] == "application/json"
    assert headers["x-amzn-bedrock-output-token-count"] == str(body["usage"]["output_tokens"])
    assert headers["x-amzn-bedrock-input-token-count"] == str(body["usage"]["input_tokens"])
    assert int(headers["x-amzn-bedrock-invocation-latency"]) > 0
    assert response["ResponseMetadata"]["RequestId"] == headers["x-amzn-requestid"]


def test_the_same_request_gets_the_same_answer(client: Any) -> None:
    first = client.invoke_model(modelId=HAIKU, body=anthropic_body())["body"].read()
    second = client.invoke_model(modelId=HAIKU, body=anthropic_body())["body"].read()
    assert first == second


def test_request_ids_differ_per_call_and_are_reproducible_across_fakes() -> None:
    ids = []
    for _ in range(2):
        with FakeBedrock() as fake:
            client = fake.client()
            ids.append(
                [
                    client.converse(modelId=HAIKU, messages=MESSAGES)["ResponseMetadata"]["RequestId"]
                    for _ in range(2)
                ]
            )
    assert ids[0] == ids[1]
    assert ids[0][0] != ids[0][1]


def test_invoke_model_with_response_stream_sends_the_anthropic_event_sequence(client: Any) -> None:
    response = client.invoke_model_with_response_stream(modelId=HAIKU, body=anthropic_body("Hello there"))
    events = chunks(response)
    types = [event["type"] for event in events]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == "You said: Hello there"
    metrics = events[-1]["amazon-bedrock-invocationMetrics"]
    assert set(metrics) == {"inputTokenCount", "outputTokenCount", "invocationLatency", "firstByteLatency"}
    assert metrics["outputTokenCount"] == events[-2]["usage"]["output_tokens"]
    assert response["contentType"] == "application/json"
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"


def test_max_tokens_cuts_the_answer_and_says_so(client: Any) -> None:
    body = json.loads(
        client.invoke_model(modelId=HAIKU, body=anthropic_body("one two three four", max_tokens=2))[
            "body"
        ].read()
    )
    assert body["content"][0]["text"] == "You said:"
    assert body["stop_reason"] == "max_tokens"


@pytest.mark.parametrize(
    ("model_id", "request_body", "read_text"),
    [
        (
            "amazon.titan-text-express-v1",
            {"inputText": "Hi titan", "textGenerationConfig": {"maxTokenCount": 50}},
            lambda b: b["results"][0]["outputText"],
        ),
        (
            "amazon.nova-lite-v1:0",
            {
                "schemaVersion": "messages-v1",
                "messages": [{"role": "user", "content": [{"text": "Hi nova"}]}],
            },
            lambda b: b["output"]["message"]["content"][0]["text"],
        ),
        (
            "meta.llama3-8b-instruct-v1:0",
            {
                "prompt": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>Hi llama<|eot_id|>",
                "max_gen_len": 64,
            },
            lambda b: b["generation"],
        ),
        (
            "mistral.mistral-7b-instruct-v0:2",
            {"prompt": "<s>[INST] Hi mistral [/INST]"},
            lambda b: b["outputs"][0]["text"],
        ),
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 9,
                "messages": [{"role": "user", "content": "Hi profile"}],
            },
            lambda b: b["content"][0]["text"],
        ),
    ],
)
def test_each_provider_family_answers_in_its_own_shape(
    client: Any, model_id: str, request_body: Any, read_text: Any
) -> None:
    body = json.loads(client.invoke_model(modelId=model_id, body=json.dumps(request_body))["body"].read())
    assert read_text(body).startswith("You said: Hi")


def test_llama_answers_carry_token_counts_and_stop_reason(client: Any) -> None:
    body = json.loads(
        client.invoke_model(modelId="meta.llama3-8b-instruct-v1:0", body=json.dumps({"prompt": "Hi"}))[
            "body"
        ].read()
    )
    assert set(body) == {"generation", "prompt_token_count", "generation_token_count", "stop_reason"}
    assert body["stop_reason"] == "stop"


@pytest.mark.parametrize(
    ("model_id", "request_body", "text_of"),
    [
        ("amazon.titan-text-express-v1", {"inputText": "Hi titan"}, lambda c: c["outputText"]),
        ("meta.llama3-8b-instruct-v1:0", {"prompt": "Hi llama"}, lambda c: c["generation"]),
        (
            "amazon.nova-pro-v1:0",
            {"messages": [{"role": "user", "content": [{"text": "Hi nova"}]}]},
            lambda c: c.get("contentBlockDelta", {}).get("delta", {}).get("text", ""),
        ),
    ],
)
def test_each_family_streams_its_own_chunks_ending_with_invocation_metrics(
    client: Any, model_id: str, request_body: Any, text_of: Any
) -> None:
    events = chunks(client.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(request_body)))
    assert "".join(text_of(c) for c in events).startswith("You said: Hi")
    assert "amazon-bedrock-invocationMetrics" in events[-1]


def test_titan_embeddings_are_deterministic_vectors(client: Any) -> None:
    def embed(text: str) -> list[float]:
        out = client.invoke_model(
            modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": text, "dimensions": 256})
        )
        return json.loads(out["body"].read())["embedding"]  # type: ignore[no-any-return]

    assert len(embed("a")) == 256
    assert embed("a") == embed("a")
    assert embed("a") != embed("b")


def test_converse_answers_any_model_in_the_converse_shape(client: Any) -> None:
    response = client.converse(
        modelId="cohere.command-r-v1:0", messages=MESSAGES, system=[{"text": "Be brief."}]
    )
    assert response["output"]["message"] == {
        "role": "assistant",
        "content": [{"text": "You said: What is the capital of France?"}],
    }
    assert response["stopReason"] == "end_turn"
    usage = response["usage"]
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert response["metrics"]["latencyMs"] > 0


def test_converse_stream_sends_the_converse_events_in_order(client: Any) -> None:
    events = list(client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"])
    names = [next(iter(event)) for event in events]
    assert names[0] == "messageStart"
    assert set(names[1:-3]) == {"contentBlockDelta"}
    assert names[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == "You said: What is the capital of France?"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == len(names) - 4
    assert "latencyMs" in events[-1]["metadata"]["metrics"]


def test_count_tokens_counts_what_invoke_model_would_bill(client: Any) -> None:
    body = anthropic_body("count these words please")
    billed = json.loads(client.invoke_model(modelId=HAIKU, body=body)["body"].read())["usage"]["input_tokens"]
    counted = client.count_tokens(modelId=HAIKU, input={"invokeModel": {"body": body.encode()}})[
        "inputTokens"
    ]
    assert counted == billed
    assert client.count_tokens(modelId=HAIKU, input={"converse": {"messages": MESSAGES}})["inputTokens"] > 0


def test_apply_guardrail_lets_everything_through(client: Any) -> None:
    out = client.apply_guardrail(
        guardrailIdentifier="gr-1", guardrailVersion="1", source="INPUT", content=[{"text": {"text": "hi"}}]
    )
    assert out["action"] == "NONE"
    assert out["outputs"] == []


def test_start_async_invoke_returns_an_invocation_arn(client: Any) -> None:
    out = client.start_async_invoke(
        modelId="amazon.nova-reel-v1:0",
        modelInput={"taskType": "TEXT_VIDEO"},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://bucket/out/"}},
    )
    assert out["invocationArn"].startswith("arn:aws:bedrock:us-east-1:123456789012:async-invoke/")


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "Malformed input request: A JSONObject text must begin with '{'"),
        ("[1, 2]", "Malformed input request: #: expected type: JSONObject, found: JSONArray"),
        (
            json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5}),
            "required key [messages] not found",
        ),
        (json.dumps({"max_tokens": 5, "messages": []}), "required key [anthropic_version] not found"),
        (
            json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": "hi"}),
            "#/messages: expected type: JSONArray, found: String",
        ),
    ],
)
def test_malformed_invoke_bodies_get_bedrocks_validation_message(
    client: Any, body: str, message: str
) -> None:
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.invoke_model(modelId=HAIKU, body=body)
    assert message in caught.value.response["Error"]["Message"]
    assert caught.value.response["Error"]["Message"].endswith("please reformat your input and try again.")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_malformed_stream_bodies_fail_before_the_stream_opens(client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException, match="required key \\[inputText\\]"):
        client.invoke_model_with_response_stream(modelId="amazon.titan-text-express-v1", body="{}")


def test_a_conversation_starting_with_the_assistant_is_refused_except_by_claude(client: Any) -> None:
    opening = [
        {"role": "assistant", "content": [{"text": "hi"}]},
        {"role": "user", "content": [{"text": "go"}]},
    ]
    with pytest.raises(
        client.exceptions.ValidationException, match="A conversation must start with a user message"
    ):
        client.converse(modelId="amazon.nova-micro-v1:0", messages=opening)
    # Recorded Bedrock traffic: Claude answers a conversation that opens with its own turn.
    assert client.converse(modelId=HAIKU, messages=opening)["output"]["message"]["role"] == "assistant"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/model/x/unknown", b"{}", 404, "UnknownOperationException"),
        ("GET", "/model/x/invoke", b"", 404, "UnknownOperationException"),
        ("POST", "/model/x/converse", b"\xff\xfe", 400, "ValidationException"),
        ("POST", "/model/x/converse", b"{}", 400, "ValidationException"),
        ("POST", "/model/x/count-tokens", b'{"input": 1}', 400, "ValidationException"),
        ("POST", "/guardrail/g/version/1/apply", b"{}", 400, "ValidationException"),
    ],
)
def test_raw_requests_the_sdk_would_never_send_get_aws_shaped_errors(
    method: str, path: str, body: bytes, status: int, code: str
) -> None:
    reply = FakeBedrockCore().handle(request_from_http(method=method, raw_path=path, headers={}, body=body))
    assert reply.status == status
    assert reply.headers["x-amzn-ErrorType"].split(":")[0] == code
    assert isinstance(json.loads(reply.body or b"")["message"], str)


def test_model_ids_are_url_decoded_from_the_path_and_recorded(fake_bedrock: FakeBedrock, client: Any) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"
    client.converse(modelId=arn, messages=MESSAGES)
    [request] = fake_bedrock.requests
    assert request.model_id == arn
    assert request.operation == "Converse"
    assert request.access_key == "AKIAFAKEBEDROCK00000"
    assert request.region == "us-east-1"
    assert request.json == {"messages": MESSAGES}


def test_invoke_model_records_the_models_own_payload_and_headers(
    fake_bedrock: FakeBedrock, client: Any
) -> None:
    client.invoke_model(modelId=HAIKU, body=anthropic_body(), trace="ENABLED")
    [request] = fake_bedrock.requests
    assert request.operation == "InvokeModel"
    assert request.json == json.loads(anthropic_body())
    assert request.headers["x-amzn-bedrock-trace"] == "ENABLED"
    assert "authorization" in request.headers


def test_the_region_comes_from_the_signature(fake_bedrock: FakeBedrock) -> None:
    client = fake_bedrock.client(region_name="eu-west-3")
    client.converse(modelId=HAIKU, messages=MESSAGES)
    assert fake_bedrock.requests[0].region == "eu-west-3"


def test_a_bearer_token_is_recorded_as_the_callers_key() -> None:
    core = FakeBedrockCore()
    request = request_from_http(
        method="POST", raw_path="/model/m/converse", headers={"Authorization": "Bearer ABSK-test"}, body=b"{}"
    )
    assert request.access_key == "ABSK-test"
    assert core.handle(request).status == 400  # no messages


@pytest.fixture
def attached() -> Iterator[tuple[FakeBedrock, Any]]:
    client = isolated_session(
        aws_access_key_id="AKIDEXISTING", aws_secret_access_key="s", region_name="us-west-2"
    ).client("bedrock-runtime", endpoint_url="https://bedrock-runtime.us-west-2.fake-bedrock.invalid")
    fake = FakeBedrock()
    fake.attach(client)
    yield fake, client
    fake.close()


def test_attach_answers_an_existing_clients_calls_until_close(attached: tuple[FakeBedrock, Any]) -> None:
    from botocore.exceptions import EndpointConnectionError

    fake, client = attached
    client.converse(modelId=HAIKU, messages=MESSAGES)
    assert fake.requests[0].access_key == "AKIDEXISTING"
    assert fake.requests[0].region == "us-west-2"
    fake.close()
    # A detached client goes to its own endpoint, which for a fake's client cannot even resolve.
    with pytest.raises(EndpointConnectionError):
        client.converse(modelId=HAIKU, messages=MESSAGES)


def test_attach_refuses_other_clients() -> None:
    s3 = isolated_session(region_name="us-east-1").client("s3")
    with pytest.raises(TypeError, match="bedrock-runtime client"):
        FakeBedrock().attach(s3)


def test_reset_forgets_the_policys_account_in_messages() -> None:
    fake = FakeBedrock()
    principal = "arn:aws:sts::111122223333:assumed-role/app/session"
    fake.set_policy({"Version": "2012-10-17", "Statement": []}, principal=principal)
    fake.reset()
    fake.add_client_error("AccessDeniedException")
    with pytest.raises(ClientError) as caught:
        fake.client().converse(modelId=f"us.{HAIKU}", messages=[{"role": "user", "content": [{"text": "x"}]}])
    assert "111122223333" not in caught.value.response["Error"]["Message"]
    assert "123456789012" in caught.value.response["Error"]["Message"]
