"""No credential in error text: Bedrock's message can echo the request (a signature mismatch quotes the
canonical request, session token included), so a typed error masks credentials in everything it shows
(`str`, `repr`, `.message`, `fields()`), as do the log event and the CLI, while `e.response` stays exactly
what boto3 gives, for drop-in code."""

from __future__ import annotations

import io
import json
import logging
import pickle
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from structlog.testing import capture_logs

from safe_bedrock import BedrockServiceError, SafeBedrockClient
from safe_bedrock.cli._output import Output, describe
from safe_bedrock.testing import FakeBedrock
from tests.clienthelpers import HAIKU, messages, safe_client

if TYPE_CHECKING:
    from collections.abc import Iterator

ACCESS_KEY = "AKIAREDACTME0000KEY7"
SECRET_KEY = "RedactMeSecret/Key+0123456789abcdefghijk"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjREDACTMESESSIONTOKEN" + "Zm9vYmFy" * 30
OPAQUE_TOKEN = "opaqueSessionToken0123456789abcdefXYZ"  # no well-known prefix: found by its header name
SIGNATURE = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
API_KEY = "ABSKUkVEQUNUTUUtYmVkcm9jay1hcGkta2V5LXNlbnRpbmVs"

# Real Bedrock's answer to a bad signature, as the front door sends it: the canonical request it expected,
# with every signed header (the session token among them) and the signature it got.
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details.\n\n"
    "The Canonical String for this request should have been\n"
    f"'POST\n/model/{HAIKU}/converse\n\ncontent-type:application/json\n"
    "host:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date:20250101T000000Z\n"
    f"x-amz-security-token:{SESSION_TOKEN}\n\ncontent-type;host;x-amz-date;x-amz-security-token\n"
    "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae'\n\n"
    "The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20250101T000000Z\n"
    "20250101/us-east-1/bedrock/aws4_request\n9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'\n"
)

LEAKS = {
    "signature-mismatch": ("InvalidSignatureException", SIGNATURE_MISMATCH, SESSION_TOKEN),
    "authorization-header": (
        "InvalidSignatureException",
        (
            f"Authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20250101/us-east-1/bedrock/"
            f"aws4_request, SignedHeaders=host;x-amz-date, Signature={SIGNATURE}"
        ),
        ACCESS_KEY,
    ),
    "signature": ("InvalidSignatureException", f"bad request Signature={SIGNATURE} was sent", SIGNATURE),
    "presigned-query": (
        "UnrecognizedClientException",
        (
            f"invalid url ?X-Amz-Credential={ACCESS_KEY}%2F20250101&X-Amz-Security-Token={OPAQUE_TOKEN}"
            f"&X-Amz-Signature={SIGNATURE}"
        ),
        OPAQUE_TOKEN,
    ),
    "opaque-token-header": (
        "UnrecognizedClientException",
        f"bad headers X-Amz-Security-Token: {OPAQUE_TOKEN}\nhost:x",
        OPAQUE_TOKEN,
    ),
    "access-key": (
        "UnrecognizedClientException",
        f"The security token included in the request is invalid (key {ACCESS_KEY}).",
        ACCESS_KEY,
    ),
    "secret-key": (
        "ValidationException",
        f"Malformed input request: aws_secret_access_key={SECRET_KEY} is not a field",
        SECRET_KEY,
    ),
    "bare-secret-key": ("ValidationException", f"unexpected value {SECRET_KEY} in body", SECRET_KEY),
    "bearer": ("AccessDeniedException", f"Authorization: Bearer {API_KEY} was rejected", API_KEY),
    "json-quoted": (
        "ValidationException",
        f'Malformed input request: {{"sessionToken": "{OPAQUE_TOKEN}"}}',
        OPAQUE_TOKEN,
    ),
}


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture
def client(fake: FakeBedrock) -> SafeBedrockClient:
    return safe_client(fake, allow=[HAIKU])


def raised(client: SafeBedrockClient) -> BedrockServiceError:
    with pytest.raises(BedrockServiceError) as caught:
        client.converse(modelId=HAIKU, messages=messages())
    return caught.value


def shown(error: BedrockServiceError) -> dict[str, str]:
    """Everything an error shows of itself."""
    return {
        "str": str(error),
        "repr": repr(error),
        "args": repr(error.args),
        "message": error.message,
        "summary": error.summary,
        "fields": json.dumps(error.fields(), default=str),
        "pickled": str(pickle.loads(pickle.dumps(error))),
    }


@pytest.mark.parametrize(("code", "message", "secret"), LEAKS.values(), ids=LEAKS.keys())
def test_a_credential_in_bedrocks_message_is_masked_in_everything_the_error_shows(
    fake: FakeBedrock, client: SafeBedrockClient, code: str, message: str, secret: str
) -> None:
    fake.add_client_error(code, message)
    error = raised(client)
    for where, text in shown(error).items():
        assert secret not in text, f"{where}: {text}"
        assert secret[4:20] not in text, f"{where} keeps part of it: {text}"
    assert "[REDACTED]" in error.message
    # e.response is what boto3 gives: the same text, unmasked.
    assert error.response["Error"]["Message"] == message
    assert secret in error.response["Error"]["Message"]


@pytest.mark.parametrize(("code", "message", "secret"), LEAKS.values(), ids=LEAKS.keys())
def test_a_credential_in_bedrocks_message_is_masked_in_the_log_event_and_the_cli(
    fake: FakeBedrock, client: SafeBedrockClient, code: str, message: str, secret: str
) -> None:
    fake.add_client_error(code, message)
    with capture_logs() as events:
        error = raised(client)
    assert secret not in repr(events)
    for json_mode in (False, True):
        stdout, stderr = io.StringIO(), io.StringIO()
        Output(command="invoke", json_mode=json_mode, stdout=stdout, stderr=stderr).problem(describe(error))
        assert secret not in stdout.getvalue() + stderr.getvalue()


def test_a_credential_is_masked_in_the_stdlib_log_line_too(
    fake: FakeBedrock, client: SafeBedrockClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_client_error("InvalidSignatureException", SIGNATURE_MISMATCH)
    with caplog.at_level(logging.DEBUG, logger="safe_bedrock"):
        raised(client)
    assert caplog.records
    assert SESSION_TOKEN not in caplog.text
    assert all(SESSION_TOKEN not in repr(record.__dict__) for record in caplog.records)


def test_a_mid_stream_error_is_masked_too(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    fake.add_stream_error("modelStreamErrorException", f"failed, token={OPAQUE_TOKEN}", after=1)
    with pytest.raises(BedrockServiceError) as caught:
        list(client.converse_stream(modelId=HAIKU, messages=messages())["stream"])
    for text in shown(caught.value).values():
        assert OPAQUE_TOKEN not in text
    assert OPAQUE_TOKEN in caught.value.response["Error"]["Message"]


def test_e_response_is_exactly_what_boto3_raises(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    fake.add_client_error("InvalidSignatureException", SIGNATURE_MISMATCH, times=2)
    with pytest.raises(ClientError) as plain:
        fake.client().converse(modelId=HAIKU, messages=messages())
    error = raised(client)
    assert error.response is error.__cause__.response  # type: ignore[union-attr]  # the same dict
    ours, theirs = dict(error.response), dict(plain.value.response)
    ours["ResponseMetadata"] = theirs["ResponseMetadata"] = None  # request ids differ per call
    assert ours == theirs
    assert error.response["Error"]["Message"] == SIGNATURE_MISMATCH


def test_str_keeps_the_first_thousand_characters_of_a_long_message(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    long = "Malformed input request: " + "x" * 5000
    fake.add_client_error("ValidationException", long)
    error = raised(client)
    assert "x" * 900 in str(error)
    assert len(str(error)) < 1500
    assert len(repr(error)) < 1500
    assert error.message == long  # the field keeps it all (masked and escaped, nothing else)
    assert error.response["Error"]["Message"] == long


def test_the_error_text_names_the_cause_and_fix_around_the_mask(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    fake.add_client_error("InvalidSignatureException", SIGNATURE_MISMATCH)
    error = raised(client)
    assert type(error).__name__ == "InvalidCredentialsError"
    text = str(error)
    assert text.startswith("InvalidSignatureException on Converse")
    assert "The request signature we calculated does not match" in text
    assert "x-amz-security-token:[REDACTED]\\n" in text
    assert " Fix: " in text


def test_pickling_keeps_the_masked_text(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    fake.add_client_error("InvalidSignatureException", SIGNATURE_MISMATCH)
    error = raised(client)
    copy: Any = pickle.loads(pickle.dumps(error))
    assert (copy.message, str(copy), copy.fields()) == (error.message, str(error), error.fields())
