"""No credentials: a typed error that says how to provide them (and, for a local fake, that any keys do),
raised before anything is sent, through the real stack: a boto3 session that finds no credentials."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import NoCredentialsError, PartialCredentialsError
from structlog.testing import capture_logs

from safe_bedrock import SafeBedrockClient, SafeBedrockError
from safe_bedrock.errors import CredentialsNotFoundError
from safe_bedrock.testing import FakeBedrockServer
from tests.clienthelpers import HAIKU, messages, without_aws_environment


@pytest.fixture(autouse=True)
def _no_credentials_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    without_aws_environment(monkeypatch)


@pytest.fixture
def server() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as server:
        yield server


def sent_requests(client: SafeBedrockClient) -> list[Any]:
    """Every request the wrapped boto3 client hands to its HTTP layer, recorded on `before-send`."""
    seen: list[Any] = []
    client.meta.events.register("before-send", lambda request, **_: seen.append(request))
    return seen


def test_no_credentials_against_the_local_fake_says_any_dummy_keys_work(server: FakeBedrockServer) -> None:
    client = SafeBedrockClient(
        allow=[HAIKU],
        session=boto3.session.Session(),
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
    )
    with capture_logs() as logs, pytest.raises(CredentialsNotFoundError) as caught:
        client.converse(modelId=HAIKU, messages=messages())
    error = caught.value
    # Still what boto3 raised, for existing handlers; and one of ours.
    assert isinstance(error, NoCredentialsError)
    assert isinstance(error, SafeBedrockError)
    assert isinstance(error.__cause__, NoCredentialsError)
    assert error.local_endpoint is True
    assert error.endpoint_url == server.endpoint_url
    assert error.operation == "Converse"
    text = str(error)
    assert "\n" not in text
    assert text.startswith("No usable AWS credentials for Converse: ")
    assert f"{server.endpoint_url} is a local endpoint" in text
    assert "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test" in text
    assert server.requests == []
    assert [(log["outcome"], log["error_class"]) for log in logs] == [("error", "CredentialsNotFoundError")]


def test_no_credentials_against_aws_names_the_ways_to_provide_them() -> None:
    client = SafeBedrockClient(allow=[HAIKU], session=boto3.session.Session(), region_name="us-east-1")
    sent = sent_requests(client)
    with pytest.raises(CredentialsNotFoundError) as caught:
        client.converse(modelId=HAIKU, messages=messages())
    error = caught.value
    assert error.local_endpoint is False
    assert error.endpoint_url == "https://bedrock-runtime.us-east-1.amazonaws.com"
    for way in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "aws sso login", "instance, task or pod role"):
        assert way in error.fix
    assert "dummy" not in str(error)
    assert sent == []  # refused before the HTTP layer: nothing left the process
    assert error.fields() == {
        "problem": error.problem,
        "fix": error.fix,
        "operation": "Converse",
        "endpoint_url": "https://bedrock-runtime.us-east-1.amazonaws.com",
        "local_endpoint": False,
    }


def test_a_stream_call_without_credentials_raises_the_same_error(server: FakeBedrockServer) -> None:
    client = SafeBedrockClient(
        allow=[HAIKU],
        session=boto3.session.Session(),
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
    )
    with pytest.raises(CredentialsNotFoundError, match="ConverseStream"):
        client.converse_stream(modelId=HAIKU, messages=messages())
    assert server.requests == []


def test_half_the_keys_in_the_environment_fails_when_the_client_is_built(
    monkeypatch: pytest.MonkeyPatch, server: FakeBedrockServer
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    with pytest.raises(PartialCredentialsError) as caught:
        SafeBedrockClient(
            allow=[HAIKU],
            session=boto3.session.Session(),
            region_name="us-east-1",
            endpoint_url=server.endpoint_url,
        )
    error = caught.value
    assert isinstance(error, CredentialsNotFoundError)
    assert "only part of the credentials was found" in error.problem
    assert "missing: AWS_SECRET_ACCESS_KEY" in error.problem
    assert "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test" in error.fix


def test_the_error_pickles_as_the_public_class(server: FakeBedrockServer) -> None:
    client = SafeBedrockClient(
        allow=[HAIKU],
        session=boto3.session.Session(),
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
    )
    with pytest.raises(CredentialsNotFoundError) as caught:
        client.converse(modelId=HAIKU, messages=messages())
    copy: Any = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is CredentialsNotFoundError
    assert (str(copy), copy.fields()) == (str(caught.value), caught.value.fields())


def test_dummy_keys_are_all_the_local_fake_needs(
    monkeypatch: pytest.MonkeyPatch, server: FakeBedrockServer
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = SafeBedrockClient(
        allow=[HAIKU],
        session=boto3.session.Session(),
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
    )
    answer = client.converse(modelId=HAIKU, messages=messages("hi"))
    assert answer["output"]["message"]["content"][0]["text"] == "You said: hi"
