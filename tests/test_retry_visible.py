"""Retries a user can see: an error raised after retries says how many attempts over how long and which
RetryConfig setting to change; a response's ResponseMetadata counts retries as raw boto3's does.

Through the real stack: the fake server scripted to throttle, a SafeBedrockClient and a raw boto3 client
(botocore's default retries) sent the same scripted answers."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from safe_bedrock import RetryConfig, SafeBedrockClient, ThrottlingError
from safe_bedrock._retry import set_testing
from safe_bedrock.testing import FakeBedrockServer
from tests.clienthelpers import HAIKU, messages, without_aws_environment

RETRY_KEYS = ("RetryAttempts", "MaxAttemptsReached")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Raw boto3 must use botocore's defaults, whatever this machine's ~/.aws and AWS_* variables say.
    without_aws_environment(monkeypatch)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    with set_testing(True):  # no waits between safe-bedrock's attempts
        yield


@pytest.fixture
def server() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as server:
        yield server


def safe(server: FakeBedrockServer, **kwargs: Any) -> SafeBedrockClient:
    return SafeBedrockClient(
        allow=[HAIKU], region_name="us-east-1", endpoint_url=server.endpoint_url, **kwargs
    )


def raw_converse(server: FakeBedrockServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What raw boto3, with botocore's standard retries (its default since 1.44), returns for `server`'s
    scripted answers."""
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        config=Config(retries={"mode": "standard"}),
    )
    with monkeypatch.context() as patch:
        patch.setattr(time, "sleep", lambda _seconds: None)  # botocore's backoff, skipped
        return client.converse(modelId=HAIKU, messages=messages())


def retry_metadata(response: Any) -> dict[str, Any]:
    metadata = response["ResponseMetadata"]
    return {key: metadata[key] for key in RETRY_KEYS if key in metadata}


def test_a_first_attempt_success_has_no_max_attempts_reached_as_in_raw_boto3(
    server: FakeBedrockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = safe(server).converse(modelId=HAIKU, messages=messages())
    assert retry_metadata(ours) == {"RetryAttempts": 0}
    assert retry_metadata(ours) == retry_metadata(raw_converse(server, monkeypatch))


def test_a_success_after_two_throttles_counts_two_retries_as_in_raw_boto3(
    server: FakeBedrockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.add_client_error("ThrottlingException", times=2)
    ours = safe(server).converse(modelId=HAIKU, messages=messages())
    server.add_client_error("ThrottlingException", times=2)
    raw = raw_converse(server, monkeypatch)
    # The third attempt was the last one allowed (3 by default in both): botocore marks it so.
    assert retry_metadata(ours) == retry_metadata(raw) == {"RetryAttempts": 2, "MaxAttemptsReached": True}


def test_a_success_on_the_second_of_five_attempts_is_not_marked_as_the_last(
    server: FakeBedrockServer,
) -> None:
    server.add_client_error("ThrottlingException")
    ours = safe(server, retry=RetryConfig(attempts=5)).converse(modelId=HAIKU, messages=messages())
    assert retry_metadata(ours) == {"RetryAttempts": 1}


def test_a_stream_response_counts_its_retries_too(server: FakeBedrockServer) -> None:
    server.add_client_error("ThrottlingException")
    response = safe(server).converse_stream(modelId=HAIKU, messages=messages())
    assert retry_metadata(response) == {"RetryAttempts": 1}
    assert list(response["stream"])


def test_throttling_after_every_attempt_says_how_often_and_which_setting_to_change(
    server: FakeBedrockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.add_client_error("ThrottlingException", times=3)
    with pytest.raises(ThrottlingError) as caught:
        safe(server).converse(modelId=HAIKU, messages=messages())
    error = caught.value
    assert len(server.requests) == 3
    text = str(error)
    assert "\n" not in text
    assert re.match(
        rf"ThrottlingException on Converse for \S+{HAIKU} after 3 attempts over \d+\.\d s: ", text
    )
    assert "safe-bedrock tried 3 times" in error.fix
    assert "RetryConfig.attempts=3" in error.fix
    assert "raise `attempts`" in error.fix
    assert "Retry with backoff" not in error.fix
    fields = error.fields()
    assert fields["attempts"] == 3
    assert isinstance(fields["elapsed_s"], float)
    assert fields["elapsed_s"] >= 0
    # The response is what raw boto3 gives for three throttles, and so is botocore's own line.
    server.add_client_error("ThrottlingException", times=3)
    with pytest.raises(ClientError) as raw:
        raw_converse(server, monkeypatch)
    assert retry_metadata(error.response) == retry_metadata(raw.value.response)
    assert retry_metadata(error.response) == {"RetryAttempts": 2, "MaxAttemptsReached": True}
    assert error.args == raw.value.args
    assert "(reached max retries: 2)" in repr(error)


def test_an_error_on_the_first_attempt_carries_no_retry_story(server: FakeBedrockServer) -> None:
    server.add_client_error("ValidationException", "Malformed input request")
    with pytest.raises(ClientError) as caught:
        safe(server).converse(modelId=HAIKU, messages=messages())
    error: Any = caught.value
    assert " after " not in str(error)
    assert "attempts" not in error.fields()
    assert retry_metadata(error.response) == {"RetryAttempts": 0}
    assert "(reached max retries" not in repr(error)


def test_a_throttle_with_retries_off_says_how_to_turn_them_on(server: FakeBedrockServer) -> None:
    server.add_client_error("ThrottlingException")
    with pytest.raises(ThrottlingError) as caught:
        safe(server, retry=RetryConfig.disabled()).converse(modelId=HAIKU, messages=messages())
    error = caught.value
    assert " after " not in str(error)
    assert error.fix.startswith("Retries are off for this client (RetryConfig.attempts=1): ")
    # One attempt of one allowed: botocore with max attempts 1 marks it the same way.
    assert retry_metadata(error.response) == {"RetryAttempts": 0, "MaxAttemptsReached": True}


def test_the_log_event_and_a_pickled_copy_keep_the_attempts(server: FakeBedrockServer) -> None:
    import pickle

    from structlog.testing import capture_logs

    server.add_client_error("ThrottlingException", times=2)
    server.add_client_error("AccessDeniedException", variant="implicit_deny")
    with capture_logs() as logs, pytest.raises(ClientError) as caught:
        safe(server).converse(modelId=HAIKU, messages=messages())
    error: Any = caught.value
    # Not retryable, so no RetryConfig advice; but it did come after three attempts.
    assert "after 3 attempts" in str(error)
    assert "RetryConfig" not in error.fix
    assert [log["attempts"] for log in logs] == [3]
    copy: Any = pickle.loads(pickle.dumps(error))
    assert (copy.attempts, copy.elapsed_s) == (3, error.elapsed_s)


def test_a_call_stopped_by_its_timeout_names_the_timeout() -> None:
    from safe_bedrock._fixes import retry_fix

    text = retry_fix(RetryConfig(attempts=5, timeout=2.0), attempts=2, elapsed_s=2.04)
    assert text.startswith("safe-bedrock tried 2 times over 2.0 s and stopped at RetryConfig.timeout=2 s: ")
    assert "raise `timeout`" in text
