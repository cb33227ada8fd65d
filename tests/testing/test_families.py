"""Default InvokeModel answers of every body family through real boto3: the family's own request shape is
validated with Bedrock's message, the answer comes in the family's envelope, plain and streamed."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from safe_bedrock.testing import FakeBedrock
from safe_bedrock.testing._server import FakeBedrockServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

NO_RETRIES = Config(retries={"total_max_attempts": 1})
ASK = "What is the capital of France?"
SAID = f"You said: {ASK}"
R1_BEGIN = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"  # DeepSeek-R1's template markers use fullwidth bars
CHAT = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": ASK}]}


def chat_text(body: dict[str, Any]) -> str:
    return str(body["choices"][0]["message"]["content"])


def chat_piece(chunk: dict[str, Any]) -> str:
    return str(chunk["choices"][0]["delta"].get("content", ""))


# family: (model id, request body, text of the answer, text of a stream chunk, key path of the stop reason)
FAMILIES: dict[str, tuple[str, dict[str, Any], Callable[..., str], Callable[..., str], tuple[Any, ...]]] = {
    "openai": ("openai.gpt-oss-120b-1:0", CHAT, chat_text, chat_piece, ("choices", 0, "finish_reason")),
    "qwen": ("qwen.qwen3-32b-v1:0", CHAT, chat_text, chat_piece, ("choices", 0, "finish_reason")),
    "writer": (
        "us.writer.palmyra-x5-v1:0",
        {"messages": [{"role": "user", "content": {"text": ASK}}]},
        chat_text,
        chat_piece,
        ("choices", 0, "finish_reason"),
    ),
    "jamba": ("ai21.jamba-1-5-mini-v1:0", CHAT, chat_text, chat_piece, ("choices", 0, "finish_reason")),
    "deepseek": (
        "us.deepseek.r1-v1:0",
        {"prompt": f"{R1_BEGIN}<\uff5cUser\uff5c>{ASK}<\uff5cAssistant\uff5c>"},
        lambda body: body["choices"][0]["text"],
        lambda chunk: chunk["choices"][0]["text"],
        ("choices", 0, "stop_reason"),
    ),
    "cohere_command": (
        "cohere.command-r-plus-v1:0",
        {"message": ASK, "chat_history": [{"role": "USER", "message": "Hello"}]},
        lambda body: body["text"],
        lambda chunk: chunk.get("text", "") if chunk["event_type"] == "text-generation" else "",
        ("finish_reason",),
    ),
}
FINISHED = {"cohere_command": "COMPLETE"}
CUT = {"cohere_command": "MAX_TOKENS"}


@pytest.fixture
def client(fake_bedrock: FakeBedrock) -> Any:
    # A model the catalog does not list as served (retired, or not in its snapshot) still has a family
    # worth testing: the test adds it, as an app's suite would.
    fake_bedrock.add_model("stability.sd3-5-large-v1:0")
    return fake_bedrock.client(config=NO_RETRIES)


def invoke(client: Any, model_id: str, body: object) -> dict[str, Any]:
    return json.loads(client.invoke_model(modelId=model_id, body=json.dumps(body))["body"].read())  # type: ignore[no-any-return]


def stream(client: Any, model_id: str, body: object) -> list[dict[str, Any]]:
    response = client.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body))
    return [json.loads(event["chunk"]["bytes"]) for event in response["body"]]


def dig(node: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


def validation_message(call: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    return str(caught.value.response["Error"]["Message"])


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_answers_the_prompt_in_its_own_envelope(client: Any, family: str) -> None:
    model_id, body, text_of, _, stop_path = FAMILIES[family]
    answer = invoke(client, model_id, body)
    assert text_of(answer) == SAID
    assert dig(answer, stop_path) == FINISHED.get(family, "stop")


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_streams_the_same_text_and_ends_with_invocation_metrics(client: Any, family: str) -> None:
    model_id, body, _, piece_of, stop_path = FAMILIES[family]
    chunks = stream(client, model_id, body)
    assert "".join(piece_of(chunk) for chunk in chunks) == SAID
    assert [i for i, c in enumerate(chunks) if "amazon-bedrock-invocationMetrics" in c] == [len(chunks) - 1]
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["outputTokenCount"] == len(SAID.split())  # one token per streamed word
    assert dig(chunks[-1], stop_path) == FINISHED.get(family, "stop")


@pytest.mark.parametrize(
    ("family", "limit_key"),
    [
        ("openai", "max_completion_tokens"),
        ("jamba", "max_tokens"),
        ("deepseek", "max_tokens"),
        ("cohere_command", "max_tokens"),
    ],
)
def test_the_token_limit_cuts_the_answer_with_the_family_stop_reason(
    client: Any, family: str, limit_key: str
) -> None:
    model_id, body, text_of, _, stop_path = FAMILIES[family]
    answer = invoke(client, model_id, {**body, limit_key: 2})
    assert text_of(answer) == "You said:"
    assert dig(answer, stop_path) == CUT.get(family, "length")


def test_openai_answers_carry_chat_completion_fields_and_usage(client: Any) -> None:
    answer = invoke(client, "openai.gpt-oss-20b-1:0", CHAT)
    assert answer["object"] == "chat.completion"
    assert answer["id"].startswith("chatcmpl-")
    assert answer["choices"][0]["message"]["role"] == "assistant"
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    chunks = stream(client, "openai.gpt-oss-20b-1:0", CHAT)
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"


def test_jamba_answers_have_meta_and_no_openai_object(client: Any) -> None:
    answer = invoke(client, "ai21.jamba-1-5-large-v1:0", CHAT)
    assert "object" not in answer
    assert answer["meta"]["requestDurationMillis"] > 0


def test_cohere_command_returns_the_conversation_and_a_stream_end_event(client: Any) -> None:
    model_id, body, *_ = FAMILIES["cohere_command"]
    answer = invoke(client, model_id, body)
    assert answer["chat_history"] == [
        {"role": "USER", "message": "Hello"},
        {"role": "USER", "message": ASK},
        {"role": "CHATBOT", "message": SAID},
    ]
    chunks = stream(client, model_id, body)
    assert [c["event_type"] for c in (chunks[0], chunks[-1])] == ["stream-start", "stream-end"]
    assert chunks[-1]["is_finished"] is True
    assert chunks[-1]["response"]["text"] == SAID


def test_cohere_embed_answers_one_stable_vector_per_text(client: Any) -> None:
    body = {"texts": ["alpha", "beta", "alpha"], "input_type": "search_document"}
    answer = invoke(client, "cohere.embed-english-v3", body)
    assert answer["response_type"] == "embeddings_floats"
    assert answer["texts"] == ["alpha", "beta", "alpha"]
    first, second, third = answer["embeddings"]
    assert len(first) == 1024
    assert first == third
    assert first != second


def test_stability_answers_a_png_and_echoes_the_seed(client: Any) -> None:
    answer = invoke(client, "stability.sd3-5-large-v1:0", {"prompt": "a lighthouse", "seed": 42})
    assert answer["seeds"] == [42]
    assert answer["finish_reasons"] == [None]
    assert base64.b64decode(answer["images"][0]).startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    ("model_id", "body", "missing"),
    [
        ("openai.gpt-oss-20b-1:0", {"prompt": ASK}, "messages"),
        ("qwen.qwen3-32b-v1:0", {"inputText": ASK}, "messages"),
        ("cohere.command-r-v1:0", {"messages": [{"role": "user", "content": ASK}]}, "message"),
        ("cohere.embed-english-v3", {"texts": ["a"]}, "input_type"),
        ("us.deepseek.r1-v1:0", {"messages": [{"role": "user", "content": ASK}]}, "prompt"),
        ("stability.sd3-5-large-v1:0", {"text_prompts": [{"text": ASK}]}, "prompt"),
    ],
)
def test_a_body_of_another_shape_gets_the_family_validation_message(
    client: Any, model_id: str, body: dict[str, Any], missing: str
) -> None:
    message = validation_message(lambda: client.invoke_model(modelId=model_id, body=json.dumps(body)))
    assert message == (
        f"Malformed input request: #: required key [{missing}] not found, please reformat your input and try"
        " again."
    )


def test_an_unknown_chat_role_is_refused(client: Any) -> None:
    body = {"messages": [{"role": "wizard", "content": ASK}]}
    message = validation_message(
        lambda: client.invoke_model(modelId="openai.gpt-oss-20b-1:0", body=json.dumps(body))
    )
    assert "#/messages/0/role: 'wizard' is not a valid enum value" in message


@pytest.mark.parametrize(
    ("model_id", "body"),
    [
        ("cohere.embed-english-v3", {"texts": ["a"], "input_type": "search_query"}),
        ("amazon.titan-embed-text-v2:0", {"inputText": "a"}),
        ("stability.sd3-5-large-v1:0", {"prompt": "a"}),
    ],
)
def test_embedding_and_image_models_refuse_to_stream(
    client: Any, model_id: str, body: dict[str, Any]
) -> None:
    message = validation_message(lambda: stream(client, model_id, body))
    assert message == "The model is unsupported for streaming."


def test_an_id_that_hides_the_family_is_answered_by_the_body_shape(client: Any) -> None:
    profile = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
    answer = invoke(client, profile, {"message": ASK})
    assert answer["text"] == SAID
    assert answer["finish_reason"] == "COMPLETE"


@pytest.fixture
def server_client() -> Iterator[Any]:
    with FakeBedrockServer() as server:
        boto_client = server.client(config=NO_RETRIES)
        yield boto_client
        boto_client.close()


def test_gpt_oss_streams_chat_completion_chunks_over_http(server_client: Any) -> None:
    chunks = stream(server_client, "openai.gpt-oss-120b-1:0", CHAT)
    assert "".join(chat_piece(chunk) for chunk in chunks) == SAID
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["inputTokenCount"] > 0
