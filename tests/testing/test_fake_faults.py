"""Injected errors and faults surface exactly as botocore raises them from the real service: the modeled
exception class, code, HTTP status and message; EventStreamError with the lowerCamel code mid-stream;
connection errors for drops; and scripted delays really delay."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EventStreamError
from urllib3.exceptions import ProtocolError

from safe_bedrock._service import stream_exceptions
from safe_bedrock.testing import FakeBedrock
from safe_bedrock.testing._messages import ERRORS, codes, http_status

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
MESSAGES: Any = [{"role": "user", "content": [{"text": "Hello there, friend"}]}]
BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hi"}],
    }
)
NO_RETRIES = Config(retries={"total_max_attempts": 1})


@pytest.fixture
def client(fake_bedrock: FakeBedrock) -> Any:
    return fake_bedrock.client(config=NO_RETRIES)


@pytest.mark.parametrize(("code", "variant"), [(row.code, row.variant) for row in ERRORS])
def test_every_catalog_error_surfaces_as_botocore_raises_it(
    fake_bedrock: FakeBedrock, client: Any, code: str, variant: str
) -> None:
    fake_bedrock.add_client_error(code, variant=variant)
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=HAIKU, messages=MESSAGES)
    error = caught.value
    modeled = getattr(client.exceptions, code, None)
    if modeled is not None:  # front-door codes (UnrecognizedClientException, ...) are plain ClientErrors
        assert isinstance(error, modeled)
    assert error.response["Error"]["Code"] == code
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == http_status(code)
    message = error.response["Error"]["Message"]
    assert message
    assert "{" not in message  # every template field was filled


def test_statuses_come_from_the_service_model() -> None:
    assert http_status("AccessDeniedException") == 403
    assert http_status("ThrottlingException") == 429
    assert http_status("ModelTimeoutException") == 408
    assert http_status("ModelErrorException") == 424
    assert http_status("ServiceUnavailableException") == 503
    assert http_status("InternalServerException") == 500
    assert http_status("ResourceNotFoundException") == 404
    assert "ConflictException" in codes()


def test_access_denied_names_the_principal_action_and_model_arn(
    fake_bedrock: FakeBedrock, client: Any
) -> None:
    fake_bedrock.add_client_error("AccessDeniedException")
    with pytest.raises(client.exceptions.AccessDeniedException) as caught:
        client.converse_stream(modelId=HAIKU, messages=MESSAGES)
    assert caught.value.response["Error"]["Message"] == (
        "User: arn:aws:sts::123456789012:assumed-role/app/session is not authorized to perform: "
        "bedrock:InvokeModelWithResponseStream on resource: "
        f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU} because no identity-based policy allows the "
        "bedrock:InvokeModelWithResponseStream action"
    )


def test_an_inference_profile_is_named_by_its_profile_arn(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.add_client_error("AccessDeniedException", variant="explicit_deny_scp")
    with pytest.raises(client.exceptions.AccessDeniedException) as caught:
        client.converse(modelId="us." + HAIKU, messages=MESSAGES)
    message = caught.value.response["Error"]["Message"]
    assert f"on resource: arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{HAIKU} " in message
    assert message.endswith("with an explicit deny in a service control policy")


def test_the_inference_profile_message_names_the_model_sent(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.add_client_error("ValidationException", variant="inference_profile_required")
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.invoke_model(modelId="anthropic.claude-3-5-sonnet-20241022-v2:0", body=BODY)
    assert caught.value.response["Error"]["Message"] == (
        "Invocation of model ID anthropic.claude-3-5-sonnet-20241022-v2:0 with on-demand throughput "
        "isn\u2019t supported. Retry your request with the ID or ARN of an inference profile that contains "
        "this model."
    )


def test_an_exact_message_status_and_retry_after_can_be_given(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.add_client_error("ThrottlingException", "slow down {please}", http_status=400, retry_after=3)
    with pytest.raises(client.exceptions.ThrottlingException) as caught:
        client.invoke_model(modelId=HAIKU, body=BODY)
    response = caught.value.response
    assert response["Error"]["Message"] == "slow down {please}"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "3"


def test_throttling_twice_then_success_is_retried_by_botocore(fake_bedrock: FakeBedrock) -> None:
    client = fake_bedrock.client(config=Config(retries={"mode": "standard", "max_attempts": 3}))
    fake_bedrock.add_client_error("ThrottlingException", times=2)
    started = time.monotonic()
    out = client.converse(modelId=HAIKU, messages=MESSAGES)
    assert out["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(fake_bedrock.requests) == 3
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("operation", "member"),
    [
        (operation, member)
        for operation, op_name in [
            ("invoke_model_with_response_stream", "InvokeModelWithResponseStream"),
            ("converse_stream", "ConverseStream"),
        ]
        for member in stream_exceptions(op_name)
    ],
)
def test_mid_stream_errors_raise_event_stream_error_with_the_lower_camel_code(
    fake_bedrock: FakeBedrock, client: Any, member: str, operation: str
) -> None:
    fake_bedrock.add_stream_error(member, after=2)
    if operation == "converse_stream":
        stream = client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"]
    else:
        stream = client.invoke_model_with_response_stream(modelId=HAIKU, body=BODY)["body"]
    received = []
    with pytest.raises(EventStreamError) as caught:
        received.extend(stream)
    assert len(received) == 2
    assert caught.value.response["Error"]["Code"] == member
    assert caught.value.response["Error"]["Message"]


def test_stream_errors_accept_the_error_code_spelling_too(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.add_stream_error("ModelStreamErrorException", "boom", after=0)
    with pytest.raises(EventStreamError, match=r"\(modelStreamErrorException\).*boom"):
        list(client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"])
    assert stream_exceptions()["modelStreamErrorException"] == "ModelStreamErrorException"


def test_a_stream_error_the_operation_cannot_send_fails_the_test_loudly(
    fake_bedrock: FakeBedrock, client: Any
) -> None:
    fake_bedrock.add_stream_error("modelTimeoutException")
    with pytest.raises(AssertionError, match="ConverseStream cannot send modelTimeoutException"):
        client.converse_stream(modelId=HAIKU, messages=MESSAGES)
    fake_bedrock._core._failures.clear()  # the fixture would report it again at teardown
    with pytest.raises(ValueError, match="ConverseStream cannot send modelTimeoutException"):
        fake_bedrock.add_stream_error("ModelTimeoutException", operation="converse_stream")


def test_a_truncated_stream_ends_without_its_final_events(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.add_truncated_stream(after=3)
    events = list(client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"])
    assert len(events) == 3
    assert "messageStop" not in {next(iter(e)) for e in events}


def test_a_stream_truncated_mid_frame_yields_only_whole_events(
    fake_bedrock: FakeBedrock, client: Any
) -> None:
    fake_bedrock.add_truncated_stream(after=2, mid_frame=True)
    events = list(client.invoke_model_with_response_stream(modelId=HAIKU, body=BODY)["body"])
    assert len(events) == 2


def test_a_connection_drop_mid_stream_raises_urllib3s_protocol_error(
    fake_bedrock: FakeBedrock, client: Any
) -> None:
    fake_bedrock.add_connection_drop(after=2)
    received = []
    with pytest.raises(ProtocolError, match="Connection broken"):
        received.extend(client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"])
    assert len(received) == 2


def test_a_connection_drop_before_the_answer_is_a_connection_error_botocore_retries(
    fake_bedrock: FakeBedrock,
) -> None:
    client = fake_bedrock.client(config=Config(retries={"mode": "standard", "total_max_attempts": 2}))
    fake_bedrock.add_connection_drop(times=2)
    with pytest.raises(ConnectionClosedError):
        client.converse(modelId=HAIKU, messages=MESSAGES)
    assert len(fake_bedrock.requests) == 2


def test_streamed_chunks_arrive_with_the_scripted_delays(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.add_stream(chunks=["a", "b", "c"], delay=0.05, first_byte_delay=0.1)
    started = time.monotonic()
    response = client.converse_stream(modelId=HAIKU, messages=MESSAGES)
    first_byte = time.monotonic() - started
    events = list(response["stream"])
    total = time.monotonic() - started
    deltas = [e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e]
    assert deltas == ["a", "b", "c"]
    assert first_byte >= 0.1
    assert total >= 0.1 + 0.05 * (len(events) - 1)


def test_a_delayed_answer_waits_before_answering(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.add_response(text="late", delay=0.1)
    started = time.monotonic()
    client.converse(modelId=HAIKU, messages=MESSAGES)
    assert time.monotonic() - started >= 0.1


def test_scripted_raw_events_are_sent_as_given(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.add_stream([{"type": "custom", "n": 1}, b'{"type":"raw"}'])
    events = [
        json.loads(e["chunk"]["bytes"])
        for e in client.invoke_model_with_response_stream(modelId=HAIKU, body=BODY)["body"]
    ]
    assert events == [{"type": "custom", "n": 1}, {"type": "raw"}]
    fake_bedrock.add_stream(
        [{"messageStart": {"role": "assistant"}}, {"messageStop": {"stopReason": "end_turn"}}]
    )
    events = list(client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"])
    assert events == [{"messageStart": {"role": "assistant"}}, {"messageStop": {"stopReason": "end_turn"}}]
