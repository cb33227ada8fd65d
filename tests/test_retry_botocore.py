"""No multiplied retries: reading a boto3 client's own retry settings, and turning them off."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from safe_bedrock import errors
from safe_bedrock._retry import (
    RetryConfig,
    botocore_retries_active,
    call_with_retries,
    no_retry_config,
    retry_after_of,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def _no_ambient_aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # botocore also reads retry settings from the environment and ~/.aws/config; the tests set them.
    for name in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_PROFILE", "AWS_DEFAULTS_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))


def make_client(config: Config | None = None) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self._body


class Throttler:
    """Answers every request on the wire with a 429 carrying Retry-After, and counts the requests."""

    def __init__(self, retry_after: str = "2") -> None:
        self.sends = 0
        self.retry_after = retry_after

    def __call__(self, request: Any, **_kwargs: Any) -> AWSResponse:
        self.sends += 1
        headers = {
            "x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            "x-amzn-RequestId": f"req-{self.sends}",
            "Retry-After": self.retry_after,
            "Content-Type": "application/json",
        }
        return AWSResponse(request.url, 429, headers, _Raw(b'{"message":"Too many requests"}'))


def converse(client: Any) -> Any:
    return client.converse(
        modelId="anthropic.claude-3-haiku-20240307-v1:0",
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
    )


@pytest.mark.parametrize(
    ("config", "active"),
    [
        (None, True),  # botocore's default: standard mode, 3 attempts
        (Config(retries={"mode": "standard"}), True),
        (Config(retries={"mode": "legacy"}), True),  # legacy default: 5 attempts
        (Config(retries={"max_attempts": 2}), True),  # max_attempts counts retries: 3 in all
        (Config(retries={"max_attempts": 0}), False),
        (Config(retries={"total_max_attempts": 1}), False),
        (Config(retries={"total_max_attempts": 4, "mode": "adaptive"}), True),
        (Config(retries={"mode": "adaptive", "total_max_attempts": 1}), False),
    ],
    ids=repr,
)
def test_botocore_retries_active_reads_the_clients_resolved_retry_settings(
    config: Config | None, active: bool
) -> None:
    assert botocore_retries_active(make_client(config)) is active


def test_botocore_retries_active_sees_aws_max_attempts_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert botocore_retries_active(make_client()) is False
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    assert botocore_retries_active(make_client()) is True


def test_botocore_retries_active_treats_an_unknown_object_as_retrying() -> None:
    assert botocore_retries_active(object()) is True


def test_no_retry_config_without_a_config_turns_botocore_retries_off() -> None:
    config = no_retry_config(None)
    assert config.retries == {"total_max_attempts": 1}  # type: ignore[attr-defined]
    assert botocore_retries_active(make_client(config)) is False


def test_no_retry_config_keeps_every_other_user_setting_and_the_retry_mode() -> None:
    mine = Config(
        region_name="eu-west-1",
        read_timeout=7,
        user_agent_extra="my-app/1.0",
        retries={"mode": "adaptive", "max_attempts": 9},
    )
    merged = no_retry_config(mine)
    assert merged.retries == {"mode": "adaptive", "total_max_attempts": 1}  # type: ignore[attr-defined]
    assert (merged.region_name, merged.read_timeout, merged.user_agent_extra) == (  # type: ignore[attr-defined]
        "eu-west-1",
        7,
        "my-app/1.0",
    )
    assert mine.retries == {"mode": "adaptive", "max_attempts": 9}  # type: ignore[attr-defined]  # untouched
    assert botocore_retries_active(make_client(merged)) is False


def test_no_retry_config_rejects_what_is_not_a_botocore_config() -> None:
    with pytest.raises(TypeError, match=r"botocore\.config\.Config"):
        no_retry_config({"retries": {"max_attempts": 0}})  # type: ignore[arg-type]


def test_a_client_built_with_no_retry_config_sends_one_request_per_attempt() -> None:
    client = make_client(no_retry_config(None))
    wire = Throttler()
    client.meta.events.register("before-send.bedrock-runtime.Converse", wire)
    with pytest.raises(ClientError) as caught:
        converse(client)
    assert wire.sends == 1
    # botocore keeps the response, lower-cased headers and all: the policy can read Retry-After.
    assert retry_after_of(caught.value, now=0.0) == 2.0


def test_our_attempts_are_the_only_attempts_with_botocore_retries_off() -> None:
    client = make_client(no_retry_config(None))
    wire = Throttler(retry_after="1")
    client.meta.events.register("before-send.bedrock-runtime.Converse", wire)
    sleeps: list[float] = []

    def attempt() -> Any:
        try:
            return converse(client)
        except ClientError as exc:  # the client's translation step, reduced to what the policy needs
            raise errors.ThrottlingError(
                code="ThrottlingException",
                message="Too many requests",
                operation="Converse",
                response=exc.response,
            ) from exc

    with pytest.raises(errors.ThrottlingError):
        call_with_retries(attempt, config=RetryConfig(attempts=3), sleep=sleeps.append)
    assert wire.sends == 3
    assert sleeps == [1.0, 1.0]  # the service's Retry-After, honoured
