"""Corpus messages sent as Bedrock sends them (HTTP error bodies and event-stream exception frames), parsed
by a real boto3 client, then translated: the codes and shapes botocore really produces classify right."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EventStreamError

from safe_bedrock._eventstream import event_frame, exception_frame
from safe_bedrock._ids import parse_model_id
from safe_bedrock._translate import CallContext, translate
from tests.error_corpus import CORPUS, Case

if TYPE_CHECKING:
    from collections.abc import Iterator

CALL_CASES = [case for case in CORPUS if not case.mid_stream and not case.code.isdigit()]
STREAM_CASES = [case for case in CORPUS if case.mid_stream]
METHOD = {
    "InvokeModel": "invoke_model",
    "Converse": "converse",
    "ConverseStream": "converse_stream",
    "InvokeModelWithResponseStream": "invoke_model_with_response_stream",
}


class _Raw:
    """The raw body botocore reads: whole for plain responses, chunk by chunk for event streams."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any, **__: Any) -> bytes:
        return self._body

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, Any]]:
    made: dict[str, Any] = {}
    yield made
    for client in made.values():
        client.close()


def client_for(clients: dict[str, Any], region: str) -> Any:
    if region not in clients:
        clients[region] = boto3.client(
            "bedrock-runtime",
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    return clients[region]


@contextlib.contextmanager
def answering(client: Any, status: int, headers: dict[str, str], body: bytes) -> Iterator[None]:
    """botocore's own seam: a before-send handler's response is used instead of sending the request."""

    def reply(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, status, headers, _Raw(body))

    client.meta.events.register("before-send.bedrock-runtime", reply)
    try:
        yield
    finally:
        client.meta.events.unregister("before-send.bedrock-runtime", reply)


def call(client: Any, case: Case) -> Any:
    kwargs: dict[str, Any] = {"modelId": case.model_id}
    if case.operation.startswith("Converse"):
        kwargs["messages"] = [{"role": "user", "content": [{"text": "hi"}]}]
    else:
        kwargs["body"] = b"{}"
    return getattr(client, METHOD[case.operation])(**kwargs)


def context(case: Case, *, mid_stream: bool = False) -> CallContext:
    ref = parse_model_id(case.model_id, region=case.region)
    return CallContext(
        operation=case.operation,
        model_id=case.model_id,
        model_arn=ref.arn,
        region=case.region,
        ref=ref,
        mid_stream=mid_stream,
        events_received=1 if mid_stream else 0,
    )


@pytest.mark.parametrize("case", CALL_CASES, ids=[case.id for case in CALL_CASES])
def test_error_responses_parsed_by_botocore_classify_like_the_corpus(
    case: Case, clients: dict[str, Any]
) -> None:
    client = client_for(clients, case.region)
    headers = {
        "Content-Type": "application/json",
        "x-amzn-RequestId": "wire-req-1",
        # Bedrock appends a namespace to the type; botocore strips it.
        "x-amzn-ErrorType": f"{case.code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
    }
    body = json.dumps({"message": case.message}).encode()
    with answering(client, case.status or 400, headers, body), pytest.raises(ClientError) as caught:
        call(client, case)
    original = caught.value
    error = translate(original, context=context(case), exceptions=client.exceptions)
    assert isinstance(error, case.expected)
    assert isinstance(error, type(original))
    assert error.response is original.response
    assert error.code == case.code
    assert error.message == case.message
    assert error.request_id == "wire-req-1"
    for name, value in case.fields.items():
        assert getattr(error, name) == value, name


@pytest.mark.parametrize("case", STREAM_CASES, ids=[case.id for case in STREAM_CASES])
def test_mid_stream_exception_frames_parsed_by_botocore_classify_like_the_corpus(
    case: Case, clients: dict[str, Any]
) -> None:
    client = client_for(clients, case.region)
    if case.operation == "ConverseStream":
        first = event_frame("messageStart", b'{"role": "assistant"}')
    else:
        first = event_frame("chunk", json.dumps({"bytes": "e30="}).encode())
    body = first + exception_frame(case.code, case.message)
    headers = {"Content-Type": "application/vnd.amazon.eventstream", "x-amzn-RequestId": "wire-stream-1"}
    with answering(client, 200, headers, body):
        stream = call(client, case)["stream" if case.operation == "ConverseStream" else "body"]
    with pytest.raises(EventStreamError) as caught:
        for _ in stream:
            pass
    original = caught.value
    assert original.response["Error"]["Code"] == case.code
    error = translate(original, context=context(case, mid_stream=True), exceptions=client.exceptions)
    assert isinstance(error, case.expected)
    assert isinstance(error, EventStreamError)
    modeled = client.exceptions.from_code(case.code[0].upper() + case.code[1:])
    assert isinstance(error, modeled)
    assert error.mid_stream
    assert error.events_received == 1
    for name, value in case.fields.items():
        assert getattr(error, name) == value, name
