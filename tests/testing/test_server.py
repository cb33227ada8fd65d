"""FakeBedrockServer through real boto3: the four model operations, injected errors, policies, faults."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, EventStreamError
from urllib3.exceptions import ProtocolError

from safe_bedrock._eventstream import event_frame
from safe_bedrock.testing._server import FakeBedrockServer
from safe_bedrock.testing._wire import Reply

if TYPE_CHECKING:
    from collections.abc import Iterator

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
HAIKU_ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"
NOVA = "amazon.nova-micro-v1:0"
PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/app/session"
ANTHROPIC_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hi"}],
    }
)
MESSAGES: Any = [{"role": "user", "content": [{"text": "Hello there"}]}]
NO_RETRIES = Config(retries={"total_max_attempts": 1})


@pytest.fixture
def server() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as srv:
        yield srv


@pytest.fixture
def client(server: FakeBedrockServer) -> Iterator[Any]:
    boto_client = server.client(config=NO_RETRIES)
    yield boto_client
    boto_client.close()


def raw(
    server: FakeBedrockServer, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


# --- the four model operations, default answers -----------------------------------------------------------


def test_invoke_model_answers_in_the_anthropic_shape(client: Any) -> None:
    response = client.invoke_model(modelId=HAIKU, body=ANTHROPIC_BODY)
    payload = json.loads(response["body"].read())
    assert payload["type"] == "message"
    assert payload["content"][0]["type"] == "text"
    assert response["contentType"] == "application/json"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_invoke_model_with_response_stream_decodes_every_event(client: Any) -> None:
    response = client.invoke_model_with_response_stream(modelId=HAIKU, body=ANTHROPIC_BODY)
    events = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]
    types = [event["type"] for event in events]
    assert types[0] == "message_start"
    assert "content_block_delta" in types
    assert types[-1] == "message_stop"
    assert "amazon-bedrock-invocationMetrics" in events[-1]


def test_converse_answers_with_text_and_usage(client: Any) -> None:
    response = client.converse(modelId=HAIKU, messages=MESSAGES)
    assert response["output"]["message"]["content"][0]["text"]
    assert response["usage"]["inputTokens"] > 0
    assert response["stopReason"] == "end_turn"


def test_converse_stream_sends_the_converse_event_sequence(client: Any) -> None:
    response = client.converse_stream(modelId=HAIKU, messages=MESSAGES)
    names = [next(iter(event)) for event in response["stream"]]
    assert names[0] == "messageStart"
    assert "contentBlockDelta" in names
    assert names[-2:] == ["messageStop", "metadata"]


def test_scripted_text_streams_in_the_given_chunks(server: FakeBedrockServer, client: Any) -> None:
    server.add_stream(chunks=["Hel", "lo", "!"], operation="converse_stream")
    response = client.converse_stream(modelId=HAIKU, messages=MESSAGES)
    text = "".join(
        event["contentBlockDelta"]["delta"]["text"]
        for event in response["stream"]
        if "contentBlockDelta" in event
    )
    assert text == "Hello!"
    server.assert_no_pending_responses()


def test_scripted_body_is_returned_byte_for_byte(server: FakeBedrockServer, client: Any) -> None:
    server.add_response({"answer": 42}, operation="invoke_model")
    response = client.invoke_model(modelId=HAIKU, body=ANTHROPIC_BODY)
    assert json.loads(response["body"].read()) == {"answer": 42}


def test_requests_record_operation_model_body_and_access_key(server: FakeBedrockServer) -> None:
    boto_client = server.client(region_name="eu-west-1", aws_access_key_id="AKIAEXAMPLE123")
    try:
        boto_client.invoke_model(modelId=HAIKU, body=ANTHROPIC_BODY)
    finally:
        boto_client.close()
    (request,) = server.requests
    assert request.operation == "InvokeModel"
    assert request.model_id == HAIKU
    assert request.json == json.loads(ANTHROPIC_BODY)
    assert request.access_key == "AKIAEXAMPLE123"
    assert request.region == "eu-west-1"
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE123/")


def test_model_arn_in_the_path_is_url_decoded(server: FakeBedrockServer, client: Any) -> None:
    arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{HAIKU}"
    client.converse(modelId=arn, messages=MESSAGES)
    assert server.requests[0].model_id == arn


def test_bearer_token_is_accepted(server: FakeBedrockServer) -> None:
    # botocore sends bearer tokens (Bedrock API keys) over HTTPS only, so this speaks HTTP directly.
    status, _, body = raw(
        server,
        "POST",
        f"/model/{HAIKU}/converse",
        json.dumps({"messages": MESSAGES}).encode(),
        Authorization="Bearer bedrock-api-key-abc",
        **{"Content-Type": "application/json"},
    )
    assert status == 200
    assert json.loads(body)["output"]["message"]["role"] == "assistant"
    assert server.requests[0].access_key == "bedrock-api-key-abc"


# --- injected errors surface as botocore raises them --------------------------------------------------------

MODELED_ERRORS = [
    ("AccessDeniedException", 403),
    ("ValidationException", 400),
    ("ResourceNotFoundException", 404),
    ("ThrottlingException", 429),
    ("ModelNotReadyException", 429),
    ("ModelTimeoutException", 408),
    ("ModelErrorException", 424),
    ("ServiceQuotaExceededException", 400),
    ("ServiceUnavailableException", 503),
    ("InternalServerException", 500),
]


@pytest.mark.parametrize(("code", "status"), MODELED_ERRORS)
def test_injected_error_raises_the_modeled_exception(
    server: FakeBedrockServer, client: Any, code: str, status: int
) -> None:
    server.add_client_error(code, "scripted failure")
    with pytest.raises(getattr(client.exceptions, code)) as info:
        client.converse(modelId=HAIKU, messages=MESSAGES)
    error = info.value.response
    assert error["Error"]["Code"] == code
    assert error["Error"]["Message"] == "scripted failure"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error["ResponseMetadata"]["RequestId"]


def test_throttling_then_success_is_retried_by_botocore(server: FakeBedrockServer) -> None:
    server.add_client_error("ThrottlingException", times=2)
    boto_client = server.client(config=Config(retries={"mode": "standard", "max_attempts": 3}))
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(time, "sleep", lambda _seconds: None)  # botocore's backoff: no real waiting
            response = boto_client.converse(modelId=HAIKU, messages=MESSAGES)
    finally:
        boto_client.close()
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("code", "member"),
    [
        ("ThrottlingException", "throttlingException"),
        ("ModelStreamErrorException", "modelStreamErrorException"),
        ("InternalServerException", "internalServerException"),
        ("ServiceUnavailableException", "serviceUnavailableException"),
    ],
)
@pytest.mark.parametrize("operation", ["invoke_model_with_response_stream", "converse_stream"])
def test_mid_stream_error_raises_event_stream_error_with_lower_camel_code(
    server: FakeBedrockServer, client: Any, code: str, member: str, operation: str
) -> None:
    server.add_stream_error(code, "stream broke", after=2, operation=operation)
    if operation == "converse_stream":
        stream = client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"]
    else:
        stream = client.invoke_model_with_response_stream(modelId=HAIKU, body=ANTHROPIC_BODY)["body"]
    received = []
    with pytest.raises(EventStreamError) as info:
        received.extend(stream)
    stream.close()  # a stream abandoned after an error keeps its socket until closed (botocore's rule too)
    assert len(received) == 2
    assert info.value.response["Error"]["Code"] == member
    assert info.value.response["Error"]["Message"] == "stream broke"


def test_connection_drop_mid_stream_raises_instead_of_hanging(server: FakeBedrockServer, client: Any) -> None:
    server.add_connection_drop(after=2, operation="converse_stream")
    stream = client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"]
    received = []
    started = time.monotonic()
    with pytest.raises(ProtocolError):
        received.extend(stream)
    stream.close()
    assert len(received) == 2
    assert time.monotonic() - started < 5


def test_connection_drop_before_the_response_is_a_connection_error(
    server: FakeBedrockServer, client: Any
) -> None:
    server.add_connection_drop()
    with pytest.raises(ConnectionClosedError):
        client.invoke_model(modelId=HAIKU, body=ANTHROPIC_BODY)
    # The server keeps serving after a cut connection.
    assert client.converse(modelId=HAIKU, messages=MESSAGES)["output"]


# --- IAM policy enforcement ------------------------------------------------------------------------------


def _allow(action: object, resource: object) -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
    }


def test_policy_allows_listed_model_and_denies_others_with_aws_message(
    server: FakeBedrockServer, client: Any
) -> None:
    server.set_policy(_allow("bedrock:InvokeModel", HAIKU_ARN))
    assert client.invoke_model(modelId=HAIKU, body=ANTHROPIC_BODY)["body"].read()
    with pytest.raises(client.exceptions.AccessDeniedException) as info:
        client.invoke_model(modelId=NOVA, body=b'{"inputText": "hi"}')
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert info.value.response["Error"]["Message"] == (
        f"User: {PRINCIPAL} is not authorized to perform: bedrock:InvokeModel on resource: "
        f"arn:aws:bedrock:us-east-1::foundation-model/{NOVA} because no identity-based policy allows the "
        "bedrock:InvokeModel action"
    )


def test_converse_needs_invoke_model_and_converse_stream_needs_the_stream_action(
    server: FakeBedrockServer, client: Any
) -> None:
    server.set_policy(_allow("bedrock:InvokeModel", "*"))
    assert client.converse(modelId=HAIKU, messages=MESSAGES)["output"]
    with pytest.raises(client.exceptions.AccessDeniedException) as info:
        client.converse_stream(modelId=HAIKU, messages=MESSAGES)
    assert "perform: bedrock:InvokeModelWithResponseStream on resource: " + HAIKU_ARN in str(info.value)
    server.set_policy(_allow("bedrock:InvokeModelWithResponseStream", "*"))
    assert list(client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"])
    with pytest.raises(client.exceptions.AccessDeniedException):
        client.converse(modelId=HAIKU, messages=MESSAGES)


def test_explicit_deny_wins_and_says_so(server: FakeBedrockServer, client: Any) -> None:
    server.set_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"},
                {
                    "Effect": "Deny",
                    "Action": "bedrock:Invoke*",
                    "Resource": "arn:aws:bedrock:*::foundation-model/amazon.*",
                },
            ],
        },
        principal="arn:aws:iam::123456789012:user/alice",
    )
    assert client.converse(modelId=HAIKU, messages=MESSAGES)["output"]
    with pytest.raises(client.exceptions.AccessDeniedException) as info:
        client.converse(modelId=NOVA, messages=MESSAGES)
    assert info.value.response["Error"]["Message"] == (
        "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: bedrock:InvokeModel on "
        f"resource: arn:aws:bedrock:us-east-1::foundation-model/{NOVA} with an explicit deny in an "
        "identity-based policy"
    )


def test_no_policy_means_no_enforcement(server: FakeBedrockServer, client: Any) -> None:
    server.set_policy(_allow("bedrock:InvokeModel", HAIKU_ARN))
    server.set_policy(None)
    assert client.converse(modelId=NOVA, messages=MESSAGES)["output"]


# --- HTTP edge cases: never a traceback, never a hang ------------------------------------------------------


def test_unknown_route_is_unknown_operation_exception(server: FakeBedrockServer) -> None:
    status, headers, body = raw(server, "POST", "/no/such/thing", b"{}")
    assert status == 404
    assert headers["x-amzn-ErrorType"].startswith("UnknownOperationException")
    assert "message" in json.loads(body)


def test_malformed_request_line_is_400_json(server: FakeBedrockServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        data = sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"Traceback" not in data
    assert "message" in json.loads(body)


def test_bad_content_length_is_400_and_closes(server: FakeBedrockServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(
            f"POST /model/{HAIKU}/converse HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n".encode()
        )
        data = sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 400")
    assert b"Content-Length" in data
    assert b"Connection: close" in data


def test_chunked_request_body_is_read(server: FakeBedrockServer) -> None:
    payload = json.dumps({"messages": MESSAGES}).encode()
    request = (
        f"POST /model/{HAIKU}/converse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nAuthorization: Bearer test-key\r\nConnection: close\r\n\r\n"
    ).encode()
    request += b"%x\r\n%b\r\n0\r\n\r\n" % (len(payload), payload)
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert server.requests[0].json == {"messages": MESSAGES}


def test_invalid_json_body_is_a_validation_error_not_a_crash(client: Any, server: FakeBedrockServer) -> None:
    with pytest.raises(client.exceptions.ValidationException):
        client.invoke_model(modelId=HAIKU, body=b"{not json")


def test_keep_alive_reuses_one_connection(server: FakeBedrockServer, client: Any) -> None:
    for _ in range(10):
        client.converse(modelId=HAIKU, messages=MESSAGES)
    httpd = server._httpd  # counting open sockets is the point of this test
    assert httpd is not None
    assert len(httpd.connections) == 1


# --- lifecycle ----------------------------------------------------------------------------------------------


def _fake_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fake-bedrock-")]


def test_stop_is_fast_with_a_stream_in_flight_and_leaves_no_threads() -> None:
    server = FakeBedrockServer().start()
    server.add_stream(chunks=["a", "b", "c", "d"], delay=0.3, operation="converse_stream")
    client = server.client(config=Config(retries={"total_max_attempts": 1}, read_timeout=10))
    outcome: list[object] = []

    def consume() -> None:
        try:
            stream = client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"]
            try:
                outcome.extend(stream)
            finally:
                stream.close()
        except Exception as exc:  # noqa: BLE001 - the test inspects what the client saw
            outcome.append(exc)

    reader = threading.Thread(target=consume)
    reader.start()
    while not server.requests:
        time.sleep(0.01)
    time.sleep(0.05)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    reader.join(5)
    client.close()
    assert not reader.is_alive()
    assert isinstance(outcome[-1], Exception)  # the client sees the cut, not a complete stream
    deadline = time.monotonic() + 2
    while _fake_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _fake_threads() == []


def test_stop_closes_idle_keep_alive_connections() -> None:
    server = FakeBedrockServer().start()
    client = server.client(config=NO_RETRIES)
    client.converse(modelId=HAIKU, messages=MESSAGES)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    client.close()
    assert _fake_threads() == []


def test_endpoint_is_loopback_with_the_bound_port() -> None:
    with FakeBedrockServer() as server:
        assert server.host == "127.0.0.1"
        assert server.port > 0
        assert server.endpoint_url == f"http://127.0.0.1:{server.port}"
        assert repr(server) == f"<FakeBedrockServer http://127.0.0.1:{server.port}>"
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.endpoint_url


def test_start_and_stop_are_idempotent() -> None:
    server = FakeBedrockServer()
    server.stop()
    assert server.start() is server.start()
    server.stop()
    server.stop()
    assert not server.running


def test_port_in_use_raises_os_error() -> None:
    with FakeBedrockServer() as first, pytest.raises(OSError, match="in use"):
        FakeBedrockServer(port=first.port).start()


# --- a bug inside the fake never reaches the client as a traceback -----------------------------------------


def _crash(request: object) -> Reply:
    raise RuntimeError("a bug in the fake")


def _crash_mid_stream(request: object) -> Reply:
    def chunks() -> Iterator[bytes]:
        yield event_frame("messageStart", b'{"role":"assistant"}')
        raise RuntimeError("a bug in the fake while streaming")

    return Reply(status=200, headers={"Content-Type": "application/vnd.amazon.eventstream"}, chunks=chunks())


def test_internal_failure_is_a_500_internal_server_exception(
    server: FakeBedrockServer, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: the core itself fails, as a bug would make it.
    monkeypatch.setattr(server._core, "handle", _crash)
    with pytest.raises(client.exceptions.InternalServerException) as info:
        client.converse(modelId=HAIKU, messages=MESSAGES)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "Traceback" not in info.value.response["Error"]["Message"]


def test_internal_failure_mid_stream_is_an_exception_frame(
    server: FakeBedrockServer, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server._core, "handle", _crash_mid_stream)
    stream = client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"]
    received = []
    with pytest.raises(EventStreamError) as info:
        received.extend(stream)
    # botocore stops reading at the exception event: until closed, the stream holds its connection, and
    # `info`'s traceback keeps the stream alive until a garbage collection, which then warns about the socket.
    stream.close()
    assert received == [{"messageStart": {"role": "assistant"}}]
    assert info.value.response["Error"]["Code"] == "internalServerException"
    # The connection stays usable: the stream ended with a proper terminator.
    monkeypatch.undo()
    assert client.converse(modelId=HAIKU, messages=MESSAGES)["output"]


def test_errors_do_not_leak_connections(server: FakeBedrockServer, client: Any) -> None:
    server.add_client_error("ThrottlingException", operation="converse", times=5)
    server.add_stream_error("ThrottlingException", after=1, operation="converse_stream", times=5)
    for _ in range(5):
        with pytest.raises(client.exceptions.ThrottlingException):
            client.converse(modelId=HAIKU, messages=MESSAGES)
        stream = client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"]
        with pytest.raises(EventStreamError):
            list(stream)
        stream.close()
    httpd = server._httpd
    assert httpd is not None
    assert len(httpd.connections) <= 2


def test_control_plane_calls_are_answered_beside_bedrock_runtime(server: FakeBedrockServer) -> None:
    session = server.session(region_name="us-east-1")
    sts = session.client("sts", endpoint_url=server.endpoint_url, config=NO_RETRIES)
    try:
        identity = sts.get_caller_identity()
    finally:
        sts.close()
    assert identity["Arn"] == PRINCIPAL
    assert server.control_plane.calls[0].operation == "GetCallerIdentity"
    assert server.requests == []  # control-plane calls are not bedrock-runtime requests
