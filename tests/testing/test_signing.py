"""The fake server authenticates like the AWS front door: unsigned, unknown-key, mis-signed calls get 403."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from safe_bedrock import SafeBedrockClient
from safe_bedrock.testing import FakeBedrockServer

if TYPE_CHECKING:
    from collections.abc import Iterator

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
MESSAGES: Any = [{"role": "user", "content": [{"text": "Hello"}]}]
KEY, SECRET = "AKIAKNOWNKEY0000", "known-secret"
MakeClient = Callable[..., Any]
NO_RETRIES = Config(retries={"total_max_attempts": 1})
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"}],
}


@pytest.fixture
def keyed() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer(credentials={KEY: SECRET}) as server:
        yield server


def fetch(url: str, data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - the local fake server
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def client_of() -> Iterator[MakeClient]:
    """Makes boto3 clients of a server (no retries) and closes them after the test."""
    made: list[Any] = []

    def make(server: FakeBedrockServer, **kwargs: Any) -> Any:
        made.append(server.client(config=NO_RETRIES, **kwargs))
        return made[-1]

    yield make
    for client in made:
        client.close()


def error_of(call: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Message"]


@pytest.mark.parametrize("policy", [None, ALLOW_ALL], ids=["no-policy", "with-policy"])
def test_an_unsigned_call_gets_missing_authentication_token_and_is_not_recorded(policy: object) -> None:
    with FakeBedrockServer() as server:
        server.set_policy(policy)
        payload = json.dumps({"messages": MESSAGES}).encode()
        status, headers, body = fetch(f"{server.endpoint_url}/model/{HAIKU}/converse", payload)
        assert status == 403
        assert headers["x-amzn-ErrorType"].split(":")[0] == "MissingAuthenticationTokenException"
        assert json.loads(body) == {"message": "Missing Authentication Token"}
        assert server.requests == []


def test_any_key_signs_when_the_server_knows_none(client_of: MakeClient) -> None:
    with FakeBedrockServer() as server:
        client = client_of(server, aws_access_key_id="AKIAANYTHING", aws_secret_access_key="whatever")
        assert client.converse(modelId=HAIKU, messages=MESSAGES)["output"]
        assert server.requests[0].access_key == "AKIAANYTHING"


def test_a_known_key_is_verified_through_every_operation_shape(
    keyed: FakeBedrockServer, client_of: MakeClient
) -> None:
    client = client_of(keyed)  # signs with the server's first known key
    body = json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 9,
            "messages": [{"role": "user", "content": "Hi"}],
        }
    )
    assert json.loads(client.invoke_model(modelId=HAIKU, body=body)["body"].read())["content"]
    assert list(client.invoke_model_with_response_stream(modelId=HAIKU, body=body)["body"])
    assert list(client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"])[-1].keys() == {"metadata"}
    arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{HAIKU}"  # ':' and '/' in the path
    assert client.converse(modelId=arn, messages=MESSAGES)["output"]
    assert [r.access_key for r in keyed.requests] == [KEY] * 4


def test_temporary_credentials_verify_with_their_session_token(
    keyed: FakeBedrockServer, client_of: MakeClient
) -> None:
    client = client_of(keyed, aws_session_token="FwoGZXIvYXdzEXAMPLETOKEN")
    assert client.converse(modelId=HAIKU, messages=MESSAGES)["output"]
    assert keyed.requests[0].headers["x-amz-security-token"] == "FwoGZXIvYXdzEXAMPLETOKEN"


def test_the_guarded_client_signs_with_the_servers_session(keyed: FakeBedrockServer) -> None:
    client = SafeBedrockClient(allow=[HAIKU], session=keyed.session(), endpoint_url=keyed.endpoint_url)
    try:
        assert client.converse(modelId=HAIKU, messages=MESSAGES)["output"]["message"]["content"]
    finally:
        client.close()
    assert keyed.requests[0].access_key == KEY


def test_an_unknown_key_is_unrecognized(keyed: FakeBedrockServer, client_of: MakeClient) -> None:
    client = client_of(keyed, aws_access_key_id="AKIASTRANGER0000")
    code, status, message = error_of(lambda: client.converse(modelId=HAIKU, messages=MESSAGES))
    assert (code, status) == ("UnrecognizedClientException", 403)
    assert message == "The security token included in the request is invalid."
    assert keyed.requests == []


def test_a_wrong_secret_is_a_signature_mismatch(keyed: FakeBedrockServer, client_of: MakeClient) -> None:
    client = client_of(keyed, aws_secret_access_key="not-the-secret")
    code, status, message = error_of(lambda: client.converse(modelId=HAIKU, messages=MESSAGES))
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith(
        "The request signature we calculated does not match the signature you provided."
    )
    assert keyed.requests == []


def test_a_body_changed_after_signing_fails_verification(
    keyed: FakeBedrockServer, client_of: MakeClient
) -> None:
    client = client_of(keyed)

    def tamper(request: Any, **_: Any) -> None:
        request.body = request.body.replace(b"Hello", b"Jello")

    client.meta.events.register("before-send.bedrock-runtime.Converse", tamper)
    code, _, _ = error_of(lambda: client.converse(modelId=HAIKU, messages=MESSAGES))
    assert code == "InvalidSignatureException"


def test_a_presigned_url_verifies_and_a_changed_one_does_not(
    keyed: FakeBedrockServer, client_of: MakeClient
) -> None:
    client = client_of(keyed)
    arn = "arn:aws:bedrock:us-east-1:123456789012:async-invoke/abc123"
    url = client.generate_presigned_url("get_async_invoke", Params={"invocationArn": arn})
    status, _, body = fetch(url)
    assert (status, json.loads(body)["invocationArn"]) == (200, arn)
    status, headers, _ = fetch(url.replace("abc123", "xyz789"))
    assert status == 403
    assert headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")


@pytest.mark.parametrize("credentials", [{}, {"AKIA": ""}, {"": "secret"}, ["AKIA", "secret"]])
def test_credentials_must_map_key_ids_to_secrets(credentials: Any) -> None:
    with pytest.raises(ValueError, match="credentials must map access key ids to secret access keys"):
        FakeBedrockServer(credentials=credentials)
