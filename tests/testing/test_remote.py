"""Scripting a fake server from outside it: `connect(url)` and the JSON control API it speaks."""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from safe_bedrock.testing import ANY, FakeBedrock, FakeBedrockServer, connect
from safe_bedrock.testing._remote import RemoteFakeBedrock

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN = "amazon.titan-text-express-v1"
MESSAGES: Any = [{"role": "user", "content": [{"text": "Hello"}]}]
ANTHROPIC_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 9,
        "messages": [{"role": "user", "content": "Hi"}],
    }
)


@pytest.fixture
def server() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as srv:
        yield srv


@pytest.fixture
def remote(server: FakeBedrockServer) -> RemoteFakeBedrock:
    return connect(server.endpoint_url)


@pytest.fixture
def client(server: FakeBedrockServer) -> Iterator[Any]:
    boto_client = server.client(config=Config(retries={"total_max_attempts": 1}))
    yield boto_client
    boto_client.close()


def text_of(response: Any) -> str:
    return str(response["output"]["message"]["content"][0]["text"])


def test_queued_answers_reach_boto3_in_order_then_the_default(remote: RemoteFakeBedrock, client: Any) -> None:
    remote.add_response(text="Paris")
    remote.add_client_error("ThrottlingException", times=2)
    assert text_of(client.converse(modelId=HAIKU, messages=MESSAGES)) == "Paris"
    for _ in range(2):
        with pytest.raises(client.exceptions.ThrottlingException):
            client.converse(modelId=HAIKU, messages=MESSAGES)
    assert text_of(client.converse(modelId=HAIKU, messages=MESSAGES)) == "You said: Hello"
    remote.assert_no_pending_responses()


def test_streams_and_mid_stream_errors_are_scripted(remote: RemoteFakeBedrock, client: Any) -> None:
    remote.add_stream(chunks=["Hel", "lo"], operation="converse_stream")
    remote.add_stream_error("throttlingException", after=1, operation="converse_stream")
    events = list(client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"])
    assert (
        "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
        == "Hello"
    )
    stream = client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"]
    with pytest.raises(EventStreamError, match="throttlingException"):
        list(stream)
    stream.close()


def test_bytes_bodies_and_any_cross_the_process(remote: RemoteFakeBedrock, client: Any) -> None:
    remote.add_response(
        b"\x00raw bytes", operation="invoke_model", expected={**json.loads(ANTHROPIC_BODY), "max_tokens": ANY}
    )
    assert client.invoke_model(modelId=HAIKU, body=ANTHROPIC_BODY)["body"].read() == b"\x00raw bytes"
    remote.assert_no_pending_responses()


def test_an_unmet_expectation_fails_the_call_and_the_assertion(
    remote: RemoteFakeBedrock, client: Any
) -> None:
    remote.add_response(text="x", expected={"messages": []})
    with pytest.raises(ClientError, match="did not match what add_response"):
        client.converse(modelId=HAIKU, messages=MESSAGES)
    with pytest.raises(AssertionError, match="expected body"):
        remote.assert_no_pending_responses()


def test_routes_answer_per_model_until_reset(remote: RemoteFakeBedrock, client: Any) -> None:
    remote.route("amazon.*", error="AccessDeniedException")
    remote.route("anthropic.*", text="from the route")
    for _ in range(2):
        assert text_of(client.converse(modelId=HAIKU, messages=MESSAGES)) == "from the route"
        with pytest.raises(client.exceptions.AccessDeniedException):
            client.converse(modelId=TITAN, messages=MESSAGES)
    remote.reset()
    assert remote.requests == []
    assert text_of(client.converse(modelId=HAIKU, messages=MESSAGES)) == "You said: Hello"


def test_a_policy_set_remotely_is_enforced(remote: RemoteFakeBedrock, client: Any) -> None:
    resource = f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"
    statement = {"Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": resource}
    remote.set_policy({"Version": "2012-10-17", "Statement": [statement]})
    assert client.converse(modelId=HAIKU, messages=MESSAGES)["output"]
    with pytest.raises(client.exceptions.AccessDeniedException, match="no identity-based policy allows"):
        client.converse(modelId=TITAN, messages=MESSAGES)


def test_requests_are_the_servers_and_scripting_is_never_one(
    server: FakeBedrockServer, remote: RemoteFakeBedrock, client: Any
) -> None:
    remote.add_response(text="one")
    client.converse(modelId=HAIKU, messages=MESSAGES)
    client.invoke_model(modelId=HAIKU, body=ANTHROPIC_BODY)
    assert remote.requests == server.requests
    assert [(r.operation, r.body) for r in remote.requests] == [
        ("Converse", json.dumps({"messages": MESSAGES}).encode()),
        ("InvokeModel", ANTHROPIC_BODY.encode()),
    ]


def test_unused_answers_name_the_callers_line(remote: RemoteFakeBedrock) -> None:
    remote.add_response(text="never asked for", model="meta.*")
    (pending,) = remote.pending_responses()
    assert pending.startswith(f"add_response() at {__file__}:")
    with pytest.raises(AssertionError, match=r"1 scripted answer\(s\) were never used"):
        remote.assert_no_pending_responses()


SCRIPTING_MISTAKES: list[Callable[[Any], None]] = [
    lambda f: f.add_client_error("Throttling"),
    lambda f: f.add_response(body={}, text="x"),
    lambda f: f.add_stream(text="x", operation="converse"),
    lambda f: f.add_response(text="x", times=0),
    lambda f: f.set_policy({"Statement": "nonsense"}),
]


@pytest.mark.parametrize("mistake", SCRIPTING_MISTAKES)
def test_a_scripting_mistake_fails_in_the_callers_process_as_in_process(
    mistake: Callable[[Any], None],
) -> None:
    with pytest.raises((TypeError, ValueError)) as in_process:
        mistake(FakeBedrock())
    with FakeBedrockServer() as gone:  # no server to ask: the check happens here, before any request
        unreachable = RemoteFakeBedrock(gone.endpoint_url)
    with pytest.raises(type(in_process.value), match="^" + re.escape(str(in_process.value)) + "$"):
        mistake(unreachable)


def test_a_route_handler_cannot_cross_and_says_what_can(remote: RemoteFakeBedrock) -> None:
    with pytest.raises(TypeError, match=r"route\(handler=...\) cannot script .* text=, body= or error="):
        remote.route("anthropic.*", handler=lambda request: "hi")


def test_connecting_to_nothing_says_how_to_start_a_server() -> None:
    with FakeBedrockServer() as gone:
        url = gone.endpoint_url
    with pytest.raises(ConnectionError, match="safe-bedrock fake-server"):
        connect(url)


# --- the control API as another language sees it ----------------------------------------------------------


def call(server: FakeBedrockServer, path: str, body: object = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{server.endpoint_url}/__safe_bedrock/{path}", data=data)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - the local fake server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_the_control_api_over_plain_http(server: FakeBedrockServer, client: Any) -> None:
    assert call(server, "add_response", {"text": "Bonjour", "model": "anthropic.*"}) == (
        200,
        {"result": None},
    )
    assert call(server, "pending_responses") == (
        200,
        {"result": ["add_response() at a control-API client (for model 'anthropic.*')"]},
    )
    assert text_of(client.converse(modelId=HAIKU, messages=MESSAGES)) == "Bonjour"
    status, answer = call(server, "requests")
    assert status == 200
    (request,) = answer["result"]
    assert (request["operation"], request["model_id"], request["json"]) == (
        "Converse",
        HAIKU,
        {"messages": MESSAGES},
    )
    assert json.loads(base64.b64decode(request["body"]["$bytes"])) == {"messages": MESSAGES}

    status, problem = call(server, "add_client_error", {"code": "Throttling"})
    assert (status, problem["error"]) == (400, "ValueError")
    assert "did you mean 'ThrottlingException'" in problem["message"]
    assert call(server, "add_response", {"text": "left over"})[0] == 200
    status, problem = call(server, "assert_no_pending_responses", {})
    assert (status, problem["error"]) == (409, "AssertionError")
    assert call(server, "reset", {}) == (200, {"result": None})
    assert call(server, "requests") == (200, {"result": []})
    assert call(server, "no_such_method", {})[0] == 404
    assert call(server, "reset")[0] == 405  # a GET
    assert server.requests == []  # none of the control calls is recorded as a Bedrock request
