"""Sentinel secrets planted in prompts, bodies, credentials and error messages never reach a log event."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import structlog
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from structlog.testing import capture_logs

from safe_bedrock import errors
from safe_bedrock._observe import BodyLogging, CallDetails, emit, error_fields, outcome_of

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PROMPT = "SENTINEL-PROMPT-tell-me-the-launch-codes"
COMPLETION = "SENTINEL-COMPLETION-the-codes-are-0000"
ACCESS_KEY = "AKIASENTINEL0000KEY0"  # AKIA + 16 upper-case letters and digits, like a real key id
SECRET_KEY = "SentinelSecret/Key+0123456789abcdefghijk"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjSENTINELSESSIONTOKEN" + "Zm9vYmFy" * 20
API_KEY = "ABSKU0VOVElORUwtYmVkcm9jay1hcGkta2V5LXNlbnRpbmVs"
CREDENTIALS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, API_KEY)
CONTENT = (PROMPT, COMPLETION)
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
REQUEST = {"messages": [{"role": "user", "content": [{"text": PROMPT}]}]}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self._body


class EchoingService:
    """A service that rejects the signature and, like AWS's SignatureDoesNotMatch, echoes the canonical
    request, which carries the session token and the access key id, back in its error message."""

    def __init__(self) -> None:
        self.sent_headers: dict[str, str] = {}

    def __call__(self, request: Any, **_kwargs: Any) -> AWSResponse:  # the botocore before-send hook
        self.sent_headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        echoed = (
            "The request signature we calculated does not match the signature you provided. "
            f"Canonical request: x-amz-security-token:{self.sent_headers['X-Amz-Security-Token']} "
            f"Authorization: {self.sent_headers['Authorization']} body: {request.body.decode()}"
        )
        body = json.dumps({"message": echoed}).encode()
        headers = {
            "x-amzn-ErrorType": "UnrecognizedClientException",
            "x-amzn-RequestId": "req-secret-1",
            "Content-Type": "application/json",
        }
        return AWSResponse(request.url, 403, headers, _Raw(body))


def real_failure() -> tuple[ClientError, EchoingService]:
    """A real botocore ClientError from a signed request made with the sentinel credentials."""
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
        config=Config(retries={"total_max_attempts": 1}),
    )
    service = EchoingService()
    client.meta.events.register("before-send.bedrock-runtime.Converse", service)
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=MODEL, **REQUEST)
    return caught.value, service


def typed_failures(raw: ClientError) -> list[BaseException]:
    """The typed errors a client would raise, built from the real response (message and headers kept)."""
    message = raw.response["Error"]["Message"]
    common: dict[str, Any] = {
        "operation": "Converse",
        "model_id": MODEL,
        "region": "us-east-1",
        "request_id": "req-secret-1",
        "http_status": 403,
        "response": raw.response,
    }
    return [
        errors.InvalidCredentialsError(code="UnrecognizedClientException", message=message, **common),
        errors.InvalidRequestError(code="ValidationException", message=f"bad input {PROMPT}", **common),
        errors.ModelStreamError(
            code="modelStreamErrorException", message=f"failed after {COMPLETION}", mid_stream=True, **common
        ),
        EndpointConnectionError(endpoint_url=f"https://bedrock?X-Amz-Security-Token={SESSION_TOKEN}"),
        RuntimeError(f"consumer bug while handling {COMPLETION} with {API_KEY}"),
    ]


def everything_emitted(
    calls: list[tuple[CallDetails, dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> tuple[str, list[CallDetails]]:
    """Emit each call through every route (structlog pipeline, stdlib at DEBUG, hooks); return all of it."""
    hooked: list[CallDetails] = []
    texts: list[str] = []
    with capture_logs() as logs:
        for d, kwargs in calls:
            emit(d, hooks=[hooked.append], **kwargs)
    texts.append(repr(logs))
    structlog.reset_defaults()
    with caplog.at_level(logging.DEBUG, logger="safe_bedrock"):
        for d, kwargs in calls:
            emit(d, **kwargs)
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.__dict__))
    texts.append(caplog.text)
    texts.append(repr(hooked))
    return "\n".join(texts), hooked


def failure_details(exc: BaseException, **extra: Any) -> CallDetails:
    return CallDetails(
        operation="Converse",
        model_id=MODEL,
        model_arn=f"arn:aws:bedrock:us-east-1::foundation-model/{MODEL}",
        region="us-east-1",
        outcome=outcome_of(exc),
        latency_ms=12.0,
        request_id="req-secret-1",
        **error_fields(exc),
        **extra,
    )


def test_the_planted_credentials_really_went_over_the_wire_and_into_the_error() -> None:
    # The scan below means something only if the sentinels are where a leak would come from.
    raw, service = real_failure()
    assert ACCESS_KEY in service.sent_headers["Authorization"]
    assert service.sent_headers["X-Amz-Security-Token"] == SESSION_TOKEN
    message = raw.response["Error"]["Message"]
    assert SESSION_TOKEN in message
    assert ACCESS_KEY in message
    assert PROMPT in message


def test_no_event_carries_a_prompt_a_completion_or_a_credential_by_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw, _ = real_failure()
    bodies = {"request_body": REQUEST, "response_body": f"{COMPLETION} {SECRET_KEY}".encode()}
    calls = [(failure_details(exc), bodies) for exc in typed_failures(raw)]
    calls.append(
        (
            CallDetails(
                operation="ConverseStream",
                model_id=MODEL,
                model_arn=None,
                region="us-east-1",
                outcome="ok",
                latency_ms=5.0,
                stream=True,
                events=3,
                bytes=99,
            ),
            bodies,
        )
    )
    text, hooked = everything_emitted(calls, caplog)
    assert len(hooked) == len(calls)
    assert "bedrock.call" in text
    for sentinel in (*CONTENT, *CREDENTIALS):
        assert sentinel not in text, f"{sentinel[:24]}... leaked into a log event"
    # The credential fragments must not survive either (a truncated token is still a token).
    assert "SENTINELSESSIONTOKEN" not in text
    assert "SENTINEL0000KEY0" not in text


def test_an_access_error_keeps_who_what_and_the_fix_without_the_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw, _ = real_failure()
    error = errors.MissingPermissionError(
        code="AccessDeniedException",
        message=raw.response["Error"]["Message"],
        operation="Converse",
        principal="arn:aws:sts::123456789012:assumed-role/app/session",
        action="bedrock:InvokeModel",
        resource=f"arn:aws:bedrock:us-east-1::foundation-model/{MODEL}",
        policy_type="identity-based",
        fix=f"Allow bedrock:InvokeModel in the role's policy (the key {ACCESS_KEY} signed this call)",
    )
    text, _ = everything_emitted([(failure_details(error), {})], caplog)
    assert "assumed-role/app/session may not bedrock:InvokeModel on arn:aws:bedrock" in text
    assert "Fix: Allow bedrock:InvokeModel in the role's policy (the key [REDACTED] signed this call)" in text
    assert "The request signature we calculated" not in text
    assert ACCESS_KEY not in text


def test_opted_in_bodies_show_the_prompt_but_never_the_credentials(caplog: pytest.LogCaptureFixture) -> None:
    raw, _ = real_failure()
    leaky_request = {
        **REQUEST,
        "note": f"aws_access_key_id={ACCESS_KEY} aws_secret_access_key={SECRET_KEY} token {SESSION_TOKEN}",
    }
    leaky_response = f"{COMPLETION} Authorization: Bearer {API_KEY}".encode()
    bodies = {
        "body_logging": BodyLogging(max_chars=5000),
        "request_body": leaky_request,
        "response_body": leaky_response,
    }
    calls = [(failure_details(exc), bodies) for exc in typed_failures(raw)]
    text, _ = everything_emitted(calls, caplog)
    assert PROMPT in text  # the app asked for bodies
    assert COMPLETION in text
    for sentinel in CREDENTIALS:
        assert sentinel not in text, f"{sentinel[:24]}... leaked into a logged body"
    assert "SENTINELSESSIONTOKEN" not in text
