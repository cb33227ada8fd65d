"""Request-dependent fields of Converse replies, as Bedrock sends them: performanceConfig and serviceTier
echoed, a guardrail trace when asked, requested model fields, and the `p` padding on stream events."""

from __future__ import annotations

import http.client
import json
from typing import TYPE_CHECKING, Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from safe_bedrock.testing import FakeBedrock
from safe_bedrock.testing._server import FakeBedrockServer

if TYPE_CHECKING:
    from collections.abc import Iterator

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
NOVA = "us.amazon.nova-micro-v1:0"
NO_RETRIES = Config(retries={"total_max_attempts": 1})
MESSAGES: Any = [{"role": "user", "content": [{"text": "What is the capital of France?"}]}]
GUARDRAIL = {"guardrailIdentifier": "gr1abc2def3", "guardrailVersion": "1", "trace": "enabled"}
JSON = {"Content-Type": "application/json"}
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@pytest.fixture
def client(fake_bedrock: FakeBedrock) -> Any:
    return fake_bedrock.client(config=NO_RETRIES)


def stream_events(client: Any, **kwargs: Any) -> dict[str, Any]:
    """The ConverseStream events by type (each type's last event)."""
    return {
        name: body for event in client.converse_stream(**kwargs)["stream"] for name, body in event.items()
    }


def test_performance_config_and_service_tier_are_echoed(client: Any) -> None:
    if "serviceTier" not in client.meta.service_model.operation_model("Converse").input_shape.members:
        pytest.skip("this botocore predates serviceTier")
    asked = {"performanceConfig": {"latency": "optimized"}, "serviceTier": {"type": "priority"}}
    reply = client.converse(modelId=HAIKU, messages=MESSAGES, **asked)
    assert reply["performanceConfig"] == {"latency": "optimized"}
    assert reply["serviceTier"] == {"type": "priority"}
    metadata = stream_events(client, modelId=HAIKU, messages=MESSAGES, **asked)["metadata"]
    assert metadata["performanceConfig"] == {"latency": "optimized"}
    assert metadata["serviceTier"] == {"type": "priority"}


def test_a_plain_request_gets_no_echo_fields(client: Any) -> None:
    reply = client.converse(modelId=HAIKU, messages=MESSAGES)
    assert set(reply) - {"ResponseMetadata"} == {"output", "stopReason", "usage", "metrics"}
    metadata = stream_events(client, modelId=HAIKU, messages=MESSAGES)["metadata"]
    assert set(metadata) == {"usage", "metrics"}


@pytest.mark.parametrize("trace", ["enabled", "enabled_full"])
def test_a_guardrail_trace_is_sent_when_the_request_enables_it(client: Any, trace: str) -> None:
    guardrail = {**GUARDRAIL, "trace": trace}
    reply = client.converse(modelId=HAIKU, messages=MESSAGES, guardrailConfig=guardrail)
    assessed = reply["trace"]["guardrail"]
    metrics = assessed["inputAssessment"]["gr1abc2def3"]["invocationMetrics"]
    assert metrics["guardrailCoverage"]["textCharacters"]["total"] == len("What is the capital of France?")
    assert metrics["usage"]["topicPolicyUnits"] == 1
    assert (
        assessed["outputAssessments"]["gr1abc2def3"][0]["invocationMetrics"]["guardrailProcessingLatency"] > 0
    )
    metadata = stream_events(client, modelId=HAIKU, messages=MESSAGES, guardrailConfig=guardrail)["metadata"]
    assert metadata["trace"] == reply["trace"]


def test_no_guardrail_trace_when_tracing_is_disabled(client: Any) -> None:
    reply = client.converse(
        modelId=HAIKU, messages=MESSAGES, guardrailConfig={**GUARDRAIL, "trace": "disabled"}
    )
    assert "trace" not in reply


def test_requested_model_fields_come_back_and_unknown_ones_are_ignored(client: Any) -> None:
    paths = ["/stop_sequence", "/usage/output_tokens", "/no_such_field"]
    reply = client.converse(modelId=HAIKU, messages=MESSAGES, additionalModelResponseFieldPaths=paths)
    assert reply["additionalModelResponseFields"] == {
        "stop_sequence": None,
        "usage": {"output_tokens": reply["usage"]["outputTokens"]},
    }
    events = stream_events(client, modelId=HAIKU, messages=MESSAGES, additionalModelResponseFieldPaths=paths)
    assert events["messageStop"]["additionalModelResponseFields"] == reply["additionalModelResponseFields"]


def test_fields_asked_for_that_the_model_does_not_send_leave_the_key_empty(client: Any) -> None:
    # Recorded Bedrock traffic: asked for, `additionalModelResponseFields` is in the reply even when empty.
    reply = client.converse(modelId=HAIKU, messages=MESSAGES, additionalModelResponseFieldPaths=["/nothing"])
    assert reply["additionalModelResponseFields"] == {}


def test_a_path_that_is_no_json_pointer_is_ignored_as_bedrock_does(client: Any) -> None:
    paths = ["stop_sequence", "/stop_sequence"]
    reply = client.converse(modelId=HAIKU, messages=MESSAGES, additionalModelResponseFieldPaths=paths)
    assert reply["additionalModelResponseFields"] == {"stop_sequence": None}


# --- the p padding, read from the raw bytes of the HTTP server ---------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as srv:
        yield srv


def raw_events(server: FakeBedrockServer, body: dict[str, Any]) -> list[tuple[str, bytes]]:
    path = f"/model/{NOVA}/converse-stream"
    request = AWSRequest("POST", server.endpoint_url + path, data=json.dumps(body), headers=JSON)
    SigV4Auth(Credentials("AKIDEXAMPLE", "secret"), "bedrock", server.region).add_auth(request)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request("POST", path, body=request.body, headers=dict(request.headers.items()))
        response = conn.getresponse()
        assert response.status == 200
        buffer: Any = EventStreamBuffer()
        buffer.add_data(response.read())
    finally:
        conn.close()
    return [(message.headers[":event-type"], message.payload) for message in buffer]


def test_every_stream_event_carries_padding_like_bedrocks(server: FakeBedrockServer) -> None:
    events = raw_events(server, {"messages": MESSAGES})
    assert [name for name, _ in events][:1] + [name for name, _ in events][-3:] == [
        "messageStart",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    lengths = []
    for _, payload in events:
        parsed = json.loads(payload)
        assert list(parsed) == sorted(parsed)  # Bedrock sends keys in sorted order, "p" among them
        assert ALPHABET.startswith(parsed["p"])
        lengths.append(len(parsed["p"]))
    assert len(set(lengths)) > 1
    assert min(lengths) >= 2


def test_the_padding_is_the_same_for_the_same_request(server: FakeBedrockServer) -> None:
    first = raw_events(server, {"messages": MESSAGES})
    again = raw_events(server, {"messages": MESSAGES})
    other = raw_events(server, {"messages": [{"role": "user", "content": [{"text": "Something else"}]}]})
    assert first == again
    assert [json.loads(p)["p"] for _, p in first] != [json.loads(p)["p"] for _, p in other]


def test_boto3_parses_padded_events_into_the_modeled_shapes(server: FakeBedrockServer) -> None:
    boto_client = server.client(config=NO_RETRIES)
    try:
        events: list[Any] = list(boto_client.converse_stream(modelId=NOVA, messages=MESSAGES)["stream"])
    finally:
        boto_client.close()
    assert events[0] == {"messageStart": {"role": "assistant"}}
    assert "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e) == (
        "You said: What is the capital of France?"
    )
    assert all("p" not in body for event in events for body in event.values())
