"""Clients that sign and send their own requests, against the fake server: Anthropic SDK, LiteLLM, AWS CLI.

The server knows one key pair, so a request counts only if the client signed it with SigV4 as it would for
Bedrock. What `guard()` covers differs per client:

- The AWS CLI is botocore through and through: its driver's session takes `guard()` like a boto3 one.
- The Anthropic SDK and LiteLLM sign with botocore's `SigV4Auth` but send through their own httpx client;
  no boto3 client or session carries the request, so `guard()` cannot refuse for them (LiteLLM's
  deprecated `aws_bedrock_client` lends only its keys, shown below). Their tests assert the fake's request
  log instead: exactly the requests made, for the model asked, signed with the key given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from safe_bedrock import guard
from safe_bedrock.testing import FakeBedrockServer
from tests.clienthelpers import HAIKU, LLAMA, without_aws_environment

KEY, SECRET = "AKIDCLIENTTEST", "client-test-secret"
HI = [{"role": "user", "content": "Capital of France?"}]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrockServer]:
    without_aws_environment(monkeypatch)  # only the keys a test hands over can sign
    with FakeBedrockServer(credentials={KEY: SECRET}) as server:
        yield server


def _sent(server: FakeBedrockServer) -> list[tuple[str, str | None, str | None]]:
    return [(request.operation, request.model_id, request.access_key) for request in server.requests]


# --- the Anthropic SDK --------------------------------------------------------------------------------------


def _claude(server: FakeBedrockServer, secret: str = SECRET) -> Any:
    from anthropic import AnthropicBedrock  # a test dependency, imported where used

    return AnthropicBedrock(
        base_url=server.endpoint_url,
        aws_access_key=KEY,
        aws_secret_key=secret,
        aws_region="us-east-1",
        max_retries=0,  # one call, one request: the log below counts them
    )


def test_anthropic_sdk_messages_create_gets_the_fakes_answer(server: FakeBedrockServer) -> None:
    server.add_response(text="Paris")

    with _claude(server) as claude:  # closing it closes its connections
        message = claude.messages.create(model=HAIKU, max_tokens=64, messages=HI)

    assert message.content[0].text == "Paris"
    assert _sent(server) == [("InvokeModel", HAIKU, KEY)]
    assert server.requests[0].json["messages"] == HI  # type: ignore[index]


def test_anthropic_sdk_stream_gets_the_fakes_chunks(server: FakeBedrockServer) -> None:
    server.add_stream(text="Par is")

    with _claude(server) as claude, claude.messages.stream(model=HAIKU, max_tokens=64, messages=HI) as stream:
        text = "".join(stream.text_stream)

    assert text == "Par is"
    assert _sent(server) == [("InvokeModelWithResponseStream", HAIKU, KEY)]


def test_anthropic_sdk_signing_with_the_wrong_secret_is_refused_as_by_bedrock(
    server: FakeBedrockServer,
) -> None:
    from anthropic import PermissionDeniedError

    with (
        _claude(server, secret="not-the-secret") as claude,
        pytest.raises(PermissionDeniedError, match="signature we calculated does not match"),
    ):
        claude.messages.create(model=HAIKU, max_tokens=64, messages=HI)


# --- LiteLLM ------------------------------------------------------------------------------------------------

ROUTES = [  # (model prefix, operation, streamed operation); a bare `bedrock/` sends Claude 3 to Converse
    ("bedrock/converse/", "Converse", "ConverseStream"),
    ("bedrock/invoke/", "InvokeModel", "InvokeModelWithResponseStream"),
    ("bedrock/", "Converse", "ConverseStream"),
]


@pytest.fixture(scope="module")
def litellm() -> Iterator[ModuleType]:
    # Importing LiteLLM fetches its model price list from the internet unless told to use its bundled copy.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True  # else it prints a provider-list banner for `bedrock/invoke/` ids
    yield litellm
    # A sync call logs its timing through asyncio.get_event_loop(), which gives the main thread an event
    # loop that nothing closes: close it here, or a later test that replaces it fails on a ResourceWarning.
    with contextlib.suppress(RuntimeError), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.get_event_loop().close()
    asyncio.set_event_loop(None)


def _complete(litellm: ModuleType, server: FakeBedrockServer, model: str, **kwargs: Any) -> Any:
    return litellm.completion(
        model=model,
        messages=HI,
        aws_bedrock_runtime_endpoint=server.endpoint_url,
        aws_region_name="us-east-1",
        num_retries=0,
        **{"aws_access_key_id": KEY, "aws_secret_access_key": SECRET, **kwargs},
    )


@pytest.mark.parametrize(("prefix", "operation", "streamed"), ROUTES)
def test_litellm_completion_gets_the_fakes_answer(
    litellm: ModuleType, server: FakeBedrockServer, prefix: str, operation: str, streamed: str
) -> None:
    server.add_response(text="Paris")

    answer = _complete(litellm, server, prefix + HAIKU)

    assert answer.choices[0].message.content == "Paris"
    assert _sent(server) == [(operation, HAIKU, KEY)]


# LiteLLM's stream chunk code makes pydantic warn about LiteLLM's own types, not about the reply.
@pytest.mark.filterwarnings("ignore:Item .* on TypedDict class .* the `ReadOnly` qualifier:UserWarning")
@pytest.mark.filterwarnings("ignore:Accessing the 'model_.*' attribute on the instance is deprecated")
@pytest.mark.parametrize(("prefix", "operation", "streamed"), ROUTES)
def test_litellm_streamed_completion_gets_the_fakes_chunks(
    litellm: ModuleType, server: FakeBedrockServer, prefix: str, operation: str, streamed: str
) -> None:
    server.add_stream(text="Par is")

    chunks = list(_complete(litellm, server, prefix + HAIKU, stream=True))

    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "Par is"
    assert _sent(server) == [(streamed, HAIKU, KEY)]


def test_a_guarded_client_handed_to_litellm_lends_only_its_keys(
    litellm: ModuleType, server: FakeBedrockServer
) -> None:
    # Why the docs say to check model ids before calling LiteLLM: the guard on this client never sees the
    # request, and the refused model reaches Bedrock.
    client = guard(server.client(aws_access_key_id=KEY, aws_secret_access_key=SECRET), allow=[HAIKU])
    server.add_response(text="Bonjour")

    answer = litellm.completion(
        model=f"bedrock/converse/{LLAMA}",
        messages=HI,
        aws_bedrock_client=client,
        aws_bedrock_runtime_endpoint=server.endpoint_url,
        num_retries=0,
    )

    assert answer.choices[0].message.content == "Bonjour"
    assert _sent(server) == [("Converse", LLAMA, KEY)]


# --- the AWS CLI --------------------------------------------------------------------------------------------

CONVERSE = ["bedrock-runtime", "converse", "--messages", '[{"role": "user", "content": [{"text": "Hi"}]}]']


def _to(model: str, server: FakeBedrockServer) -> list[str]:
    return ["--model-id", model, "--endpoint-url", server.endpoint_url]


def test_aws_cli_converse_prints_the_fakes_answer(server: FakeBedrockServer) -> None:
    server.add_response(text="Paris")
    env = {
        "PATH": os.environ["PATH"],
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    done = subprocess.run(
        [sys.executable, "-m", "awscli", *CONVERSE, *_to(HAIKU, server)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"]["message"]["content"] == [{"text": "Paris"}]
    assert _sent(server) == [("Converse", HAIKU, KEY)]


def test_aws_cli_driver_session_takes_the_guard(
    server: FakeBedrockServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from awscli.clidriver import create_clidriver

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    driver = create_clidriver()
    guard(driver.session, allow=[HAIKU])
    server.add_response(text="Paris")

    allowed = driver.main([*CONVERSE, *_to(HAIKU, server)])
    refused = driver.main([*CONVERSE, *_to(LLAMA, server)])

    assert (allowed, refused) == (0, 255)
    assert "refused by the allowlist" in capsys.readouterr().err
    assert _sent(server) == [("Converse", HAIKU, KEY)]
