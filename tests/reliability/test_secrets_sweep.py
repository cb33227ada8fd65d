"""Secrets: everything the library logs, on every operation and error path, carries no prompt, completion,
access key, secret key, session token or Authorization header; with body logging on, bodies appear only
redacted and credentials never.

Sentinels are planted in the prompts, the client's credentials, the scripted completions and the service's
error messages; the calls go over a real socket (so the Authorization header is really built and sent);
three channels are swept: structlog events (an app that configured structlog), stdlib records from the
`safe_bedrock` logger (an app that did not), and every CallDetails a hook receives.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from botocore.config import Config
from structlog.testing import capture_logs
from urllib3.exceptions import ProtocolError

from safe_bedrock import BodyLogging, SafeBedrockClient
from safe_bedrock._retry import set_testing
from safe_bedrock.testing import FakeBedrockServer
from tests.reliability.relhelpers import Recorder

PROMPT = "SENTINEL-PROMPT-launch-codes-7731"
COMPLETION = "SENTINEL-COMPLETION-codes-are-0000"
ACCESS_KEY = "AKIASENTINEL7731KEY0"
SECRET_KEY = "SentinelSecret/7731+abcdefghijklmnopqrstu"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjSENTINEL7731TOKEN" + "Zm9vYmFy" * 16
CREDENTIALS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, "AWS4-HMAC-SHA256", "Credential=")
CONTENT = (PROMPT, COMPLETION)

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
OTHER = "anthropic.claude-3-opus-20240229-v1:0"  # not allowed
GUARDRAIL = "gr0123456789"


def _anthropic_body() -> str:
    return json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": PROMPT}],
        }
    )


def _messages() -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": PROMPT}]}]


# Every operation and every way a call can end; each takes the client and the server (to script a fault).
Drive = Callable[[SafeBedrockClient, FakeBedrockServer], None]

# The errors the drives raised: the sweep reads what they show (str, repr, fields) besides the logs.
RAISED: list[BaseException] = []


def _invoke(client: SafeBedrockClient, _server: FakeBedrockServer) -> None:
    assert COMPLETION in client.invoke_model(modelId=HAIKU, body=_anthropic_body())["body"].read().decode()


def _invoke_stream(client: SafeBedrockClient, _server: FakeBedrockServer) -> None:
    list(client.invoke_model_with_response_stream(modelId=HAIKU, body=_anthropic_body())["body"])


def _converse(client: SafeBedrockClient, _server: FakeBedrockServer) -> None:
    answer = client.converse(modelId=HAIKU, messages=_messages(), system=[{"text": PROMPT}])
    assert answer["output"]["message"]["content"][0]["text"] == COMPLETION


def _converse_stream(client: SafeBedrockClient, _server: FakeBedrockServer) -> None:
    list(client.converse_stream(modelId=HAIKU, messages=_messages())["stream"])


def _stream_left_early(client: SafeBedrockClient, _server: FakeBedrockServer) -> None:
    with client.converse_stream(modelId=HAIKU, messages=_messages())["stream"] as events:
        next(iter(events))


def _count_tokens(client: SafeBedrockClient, _server: FakeBedrockServer) -> None:
    client.count_tokens(modelId=HAIKU, input={"converse": {"messages": _messages()}})


def _apply_guardrail(client: SafeBedrockClient, _server: FakeBedrockServer) -> None:
    with contextlib.suppress(Exception):
        client.apply_guardrail(
            guardrailIdentifier=GUARDRAIL,
            guardrailVersion="1",
            source="INPUT",
            content=[{"text": {"text": PROMPT}}],
        )


def _refused(client: SafeBedrockClient, _server: FakeBedrockServer) -> None:
    with pytest.raises(Exception, match="allow") as caught:
        client.converse(modelId=OTHER, messages=_messages())
    RAISED.append(caught.value)


def _validation_quoting_the_prompt(client: SafeBedrockClient, server: FakeBedrockServer) -> None:
    server.add_client_error("ValidationException", message=f"Malformed input request: {PROMPT} is invalid")
    with pytest.raises(Exception, match="Malformed") as caught:
        client.converse(modelId=HAIKU, messages=_messages())
    RAISED.append(caught.value)


def _signature_echoing_credentials(client: SafeBedrockClient, server: FakeBedrockServer) -> None:
    echoed = (
        "The request signature we calculated does not match the signature you provided. "
        f"Authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20240101/us-east-1/bedrock/aws4_request "
        f"x-amz-security-token:{SESSION_TOKEN} secret {SECRET_KEY}"
    )
    server.add_client_error("InvalidSignatureException", message=echoed)
    with pytest.raises(Exception, match="signature") as caught:
        client.converse(modelId=HAIKU, messages=_messages())
    RAISED.append(caught.value)


def _access_denied(client: SafeBedrockClient, server: FakeBedrockServer) -> None:
    server.add_client_error("AccessDeniedException", message=f"denied while reading {PROMPT}")
    with pytest.raises(Exception, match="denied") as caught:
        client.converse(modelId=HAIKU, messages=_messages())
    RAISED.append(caught.value)


def _throttled_past_the_cap(client: SafeBedrockClient, server: FakeBedrockServer) -> None:
    server.add_client_error("ThrottlingException", message=f"Too many requests for {PROMPT}", times=3)
    with pytest.raises(Exception, match="Too many") as caught:
        client.converse(modelId=HAIKU, messages=_messages())
    RAISED.append(caught.value)


def _mid_stream_error_quoting_the_completion(client: SafeBedrockClient, server: FakeBedrockServer) -> None:
    server.add_stream_error(
        "modelStreamErrorException", message=f"model failed after {COMPLETION}", after=2, text=COMPLETION
    )
    with pytest.raises(Exception, match="failed") as caught:
        list(client.converse_stream(modelId=HAIKU, messages=_messages())["stream"])
    RAISED.append(caught.value)


def _connection_drops(client: SafeBedrockClient, server: FakeBedrockServer) -> None:
    server.add_connection_drop(operation="Converse", times=3)
    with pytest.raises(Exception, match="Connection") as caught:
        client.converse(modelId=HAIKU, messages=_messages())
    RAISED.append(caught.value)


def _mid_stream_drop(client: SafeBedrockClient, server: FakeBedrockServer) -> None:
    server.add_connection_drop(after=2, operation="ConverseStream")
    with pytest.raises(ProtocolError):  # urllib3's own error, as raw boto3 raises it
        list(client.converse_stream(modelId=HAIKU, messages=_messages())["stream"])


DRIVES: tuple[Drive, ...] = (
    _invoke,
    _invoke_stream,
    _converse,
    _converse_stream,
    _stream_left_early,
    _count_tokens,
    _apply_guardrail,
    _refused,
    _validation_quoting_the_prompt,
    _signature_echoing_credentials,
    _access_denied,
    _throttled_past_the_cap,
    _mid_stream_error_quoting_the_completion,
    _connection_drops,
    _mid_stream_drop,
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBedrockServer]:
    with set_testing(True), FakeBedrockServer() as server:
        yield server


def _client(
    server: FakeBedrockServer, recorder: Recorder, body_logging: BodyLogging | None
) -> SafeBedrockClient:
    inner = server.client(
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
        config=Config(retries={"total_max_attempts": 1}),
    )
    return SafeBedrockClient(allow=[HAIKU], client=inner, hooks=[recorder], body_logging=body_logging)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _drive_all(server: FakeBedrockServer, client: SafeBedrockClient) -> None:
    for drive in DRIVES:
        server.reset()
        server.route(HAIKU, text=COMPLETION)
        drive(client, server)


def _sweep(body_logging: BodyLogging | None, server: FakeBedrockServer) -> tuple[list[str], int]:
    """Every text the library logged while driving every path, through both logging routes and the hook."""
    texts: list[str] = []
    recorder = Recorder()
    client = _client(server, recorder, body_logging)

    # An app that configured structlog: the events go through its pipeline.
    with capture_logs() as events:
        _drive_all(server, client)
    texts.extend(repr(event) for event in events)
    structlog.reset_defaults()

    # An app that did not: the stdlib logger "safe_bedrock", at its most verbose.
    handler = _Records()
    logger = logging.getLogger("safe_bedrock")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        _drive_all(server, client)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    for record in handler.records:
        texts.append(record.getMessage())
        texts.append(repr(record.__dict__))
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))

    texts.extend(repr(details) for details in recorder.snapshot())
    client.close()
    return texts, len(events) + len(handler.records)


def test_the_sentinels_really_travel_over_the_wire(server: FakeBedrockServer) -> None:
    client = _client(server, Recorder(), None)
    server.reset()
    server.route(HAIKU, text=COMPLETION)
    with capture_logs():
        _converse(client, server)
    (request,) = server.requests
    assert request.access_key == ACCESS_KEY
    assert PROMPT in request.body.decode()
    assert SESSION_TOKEN in str(request.headers)
    assert "AWS4-HMAC-SHA256" in str(request.headers)
    client.close()


def test_nothing_secret_is_logged_on_any_path_by_default(server: FakeBedrockServer) -> None:
    texts, events = _sweep(None, server)
    assert events >= 2 * len(DRIVES)  # every path logged, through both routes
    everything = "\n".join(texts)
    for secret in (*CONTENT, *CREDENTIALS):
        assert secret not in everything, secret


def test_opted_in_bodies_are_redacted_and_never_carry_credentials(server: FakeBedrockServer) -> None:
    def redact(text: str) -> str:
        return text.replace(PROMPT, "[prompt]").replace(COMPLETION, "[completion]")

    texts, _ = _sweep(BodyLogging(max_chars=4_000, redact=redact), server)
    everything = "\n".join(texts)
    assert "[prompt]" in everything  # bodies were logged: the opt-in took effect
    for secret in (*CONTENT, *CREDENTIALS):
        assert secret not in everything, secret


def test_opted_in_bodies_without_a_redactor_still_never_carry_credentials(server: FakeBedrockServer) -> None:
    texts, _ = _sweep(BodyLogging(max_chars=4_000), server)
    everything = "\n".join(texts)
    assert PROMPT in everything  # the app asked for bodies, and gets them
    for secret in CREDENTIALS:
        assert secret not in everything, secret


def test_no_error_raised_on_any_path_shows_a_credential(server: FakeBedrockServer) -> None:
    # Bedrock's message can echo the signed request; what the error shows of it (and what the CLI prints)
    # is masked. Its `.response` stays boto3's own, so it is not part of this sweep.
    from safe_bedrock.cli._output import describe  # only this test reads the CLI

    RAISED.clear()
    client = _client(server, Recorder(), None)
    _drive_all(server, client)
    client.close()
    assert len(RAISED) >= 7
    for error in RAISED:
        fields = getattr(error, "fields", dict)()
        problem = describe(error)
        texts = [str(error), repr(error), repr(error.args), repr(fields), repr(problem.as_json())]
        for secret in CREDENTIALS:
            assert all(secret not in text for text in texts), (secret, texts)
