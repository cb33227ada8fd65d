"""AsyncSafeBedrockClient through real aiobotocore and the fake server: the sync client's rules, awaited."""

from __future__ import annotations

import asyncio
import gc
import json
import pickle
from collections.abc import AsyncIterator, Iterator

import pytest
from aiobotocore.config import AioConfig
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError
from structlog.testing import capture_logs

from safe_bedrock import (
    AsyncSafeBedrockClient,
    CallDetails,
    InvalidModelIdError,
    MissingPermissionError,
    ModelAllowlist,
    ModelNotAllowedError,
    SafeBedrockClient,
    ThrottlingError,
)
from safe_bedrock._retry import set_testing
from safe_bedrock._service import operation_specs
from safe_bedrock.testing import FakeBedrockServer
from tests.aio.aiohelpers import astream_text, async_client, isolated_session
from tests.clienthelpers import HAIKU, LLAMA, SONNET, US_HAIKU, anthropic_body, messages

pytestmark = pytest.mark.anyio

NO_BOTOCORE_RETRIES = AioConfig(retries={"total_max_attempts": 1})


@pytest.fixture(autouse=True)
def _no_waiting() -> Iterator[None]:
    with set_testing(True):
        yield


@pytest.fixture(scope="module")
def running_server() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as server:
        yield server


@pytest.fixture
def server(running_server: FakeBedrockServer) -> FakeBedrockServer:
    running_server.reset()
    return running_server


@pytest.fixture
async def client(server: FakeBedrockServer) -> AsyncIterator[AsyncSafeBedrockClient]:
    async with async_client(server, allow=[HAIKU, US_HAIKU]) as client:
        yield client


def _model_operations() -> list[str]:
    specs = operation_specs(SafeBedrockClient(allow=[HAIKU], region_name="us-east-1").meta.service_model)
    return sorted(
        m for m, spec in specs.items() if spec.model_member and m != "invoke_model_with_bidirectional_stream"
    )


def _raw(server: FakeBedrockServer):  # type: ignore[no-untyped-def]
    return isolated_session().create_client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        config=NO_BOTOCORE_RETRIES,
    )


# --- drop-in parity ----------------------------------------------------------------------------------------


async def test_invoke_model_answers_exactly_like_raw_aiobotocore(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient
) -> None:
    async with _raw(server) as raw:
        ours = await client.invoke_model(modelId=HAIKU, body=anthropic_body("parity"))
        theirs = await raw.invoke_model(modelId=HAIKU, body=anthropic_body("parity"))
        assert json.loads(await ours["body"].read()) == json.loads(await theirs["body"].read())
        assert set(ours) == set(theirs)


async def test_converse_and_count_tokens_answer_like_raw_aiobotocore(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient
) -> None:
    async with _raw(server) as raw:
        ours = await client.converse(modelId=HAIKU, messages=messages("x"))
        theirs = await raw.converse(modelId=HAIKU, messages=messages("x"))
        assert ours["output"] == theirs["output"]
        tokens_input = {"converse": {"messages": messages("count me")}}
        ours_count = await client.count_tokens(modelId=HAIKU, input=tokens_input)  # type: ignore[arg-type]
        theirs_count = await raw.count_tokens(modelId=HAIKU, input=tokens_input)
        assert ours_count["inputTokens"] == theirs_count["inputTokens"]


@pytest.mark.parametrize("method", ["invoke_model_with_response_stream", "converse_stream"])
async def test_streams_yield_the_same_events_as_raw_aiobotocore(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient, method: str
) -> None:
    kwargs: dict[str, object] = {"modelId": HAIKU}
    if method == "converse_stream":
        kwargs["messages"] = messages("stream parity")
        key = "stream"
    else:
        kwargs["body"] = anthropic_body("stream parity")
        key = "body"
    async with _raw(server) as raw:
        ours = [event async for event in (await getattr(client, method)(**kwargs))[key]]
        theirs = [event async for event in (await getattr(raw, method)(**kwargs))[key]]
    assert ours == theirs
    assert await astream_text(_aiter(ours)) == "You said: stream parity"


async def _aiter(items: list[dict[str, object]]) -> AsyncIterator[dict[str, object]]:
    for item in items:
        yield item


async def test_operations_that_address_no_model_pass_through(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient
) -> None:
    answer = await client.apply_guardrail(
        guardrailIdentifier="gr-1", guardrailVersion="1", source="INPUT", content=[{"text": {"text": "hi"}}]
    )
    assert answer["action"] == "NONE"
    assert server.requests[-1].operation == "ApplyGuardrail"


async def test_botocore_parameter_validation_still_applies(client: AsyncSafeBedrockClient) -> None:
    with pytest.raises(ParamValidationError):
        await client.converse(modelId=HAIKU, messages=messages(), temperature=0.5)  # type: ignore[call-arg]


async def test_meta_exceptions_and_helpers_are_aiobotocores(client: AsyncSafeBedrockClient) -> None:
    assert client.meta.region_name == "us-east-1"
    assert client.can_paginate("list_async_invokes") is True
    assert issubclass(client.exceptions.AccessDeniedException, ClientError)
    assert "invoke_model" in dir(client)
    assert "us-east-1" in repr(client)


# --- construction ------------------------------------------------------------------------------------------


async def test_the_client_it_builds_has_botocore_retries_off_and_is_closed_on_exit() -> None:
    async with AsyncSafeBedrockClient(allow=[HAIKU], region_name="eu-west-1") as client:
        assert client.meta.config.retries["total_max_attempts"] == 1
        assert client.meta.region_name == "eu-west-1"
        session = client.client._endpoint.http_session
    assert not session._sessions  # aiohttp sessions closed with the client


async def test_an_aioconfig_keeps_its_aiohttp_settings_with_retries_off() -> None:
    config = AioConfig(connector_args={"keepalive_timeout": 3}, retries={"mode": "adaptive"})
    async with AsyncSafeBedrockClient(allow=[HAIKU], region_name="us-east-1", config=config) as client:
        assert isinstance(client.meta.config, AioConfig)
        assert client.meta.config.connector_args["keepalive_timeout"] == 3
        assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 1}


def test_using_it_before_entering_says_how_to_build_it() -> None:
    client = AsyncSafeBedrockClient(allow=[HAIKU], region_name="us-east-1")
    with pytest.raises(RuntimeError, match="async with AsyncSafeBedrockClient"):
        client.converse  # noqa: B018 - the attribute access is what fails
    assert "not entered" in repr(client)


async def test_a_wrapped_client_that_still_retries_warns_once_at_the_callers_line(
    server: FakeBedrockServer,
) -> None:
    session = isolated_session()
    async with session.create_client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=server.endpoint_url
    ) as raw:
        with pytest.warns(UserWarning, match="retries") as warned:
            client = AsyncSafeBedrockClient(allow=[HAIKU], client=raw)
        assert len(warned) == 1
        assert warned[0].filename == __file__
        answer = await client.converse(modelId=HAIKU, messages=messages("wrapped"))
        assert answer["output"]["message"]["content"][0]["text"] == "You said: wrapped"


async def test_a_boto3_client_is_refused_with_the_right_class_to_use(server: FakeBedrockServer) -> None:
    boto3_client = server.client(config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(TypeError, match="SafeBedrockClient"):
        AsyncSafeBedrockClient(allow=[HAIKU], client=boto3_client)


async def test_client_and_building_arguments_do_not_mix(server: FakeBedrockServer) -> None:
    async with _raw(server) as raw:
        with pytest.raises(TypeError, match="not both"):
            AsyncSafeBedrockClient(allow=[HAIKU], client=raw, region_name="us-east-1")


# --- the guard ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", _model_operations())
async def test_every_model_operation_refuses_models_off_the_allowlist_and_sends_nothing(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient, method: str
) -> None:
    with pytest.raises(ModelNotAllowedError) as caught:
        await getattr(client, method)(modelId=LLAMA)
    assert server.requests == []
    assert caught.value.model_arn == f"arn:aws:bedrock:us-east-1::foundation-model/{LLAMA}"
    assert caught.value.entry_to_add == LLAMA


async def test_the_refusal_is_caught_by_boto3_style_handlers(client: AsyncSafeBedrockClient) -> None:
    with pytest.raises(client.exceptions.AccessDeniedException):
        await client.converse(modelId=SONNET, messages=messages())
    with pytest.raises(ClientError) as caught:
        await client.converse(modelId=SONNET, messages=messages())
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert HAIKU in str(caught.value)


async def test_invoke_only_entries_refuse_streaming(server: FakeBedrockServer) -> None:
    async with async_client(server, allow=ModelAllowlist([], invoke_only=[HAIKU])) as client:
        await client.invoke_model(modelId=HAIKU, body=anthropic_body())
        with pytest.raises(ModelNotAllowedError) as caught:
            await client.invoke_model_with_response_stream(modelId=HAIKU, body=anthropic_body())
    assert caught.value.action == "bedrock:InvokeModelWithResponseStream"
    assert len(server.requests) == 1


@pytest.mark.parametrize("model_id", [None, b"x", 42, "   ", "../../foundation-model/x", "a" * 3000])
async def test_bad_model_ids_are_refused_locally_with_a_clear_error(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient, model_id: object
) -> None:
    with pytest.raises(InvalidModelIdError) as caught:
        await client.invoke_model(modelId=model_id, body=anthropic_body())  # type: ignore[arg-type]
    assert caught.value.fix
    assert server.requests == []


# --- typed errors and retries ------------------------------------------------------------------------------


async def test_access_denied_becomes_a_typed_error_that_old_handlers_still_catch(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient
) -> None:
    server.add_client_error("AccessDeniedException", variant="implicit_deny")
    with pytest.raises(client.exceptions.AccessDeniedException) as caught:
        await client.converse(modelId=HAIKU, messages=messages())
    error = caught.value
    assert isinstance(error, MissingPermissionError)
    assert error.action == "bedrock:InvokeModel"
    assert "bedrock:InvokeModel" in json.dumps(error.suggested_policy)
    assert type(pickle.loads(pickle.dumps(error))) is MissingPermissionError
    assert len(server.requests) == 1  # never retried


async def test_throttling_is_retried_then_succeeds(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient
) -> None:
    server.add_client_error("ThrottlingException", times=2)
    with capture_logs() as logs:
        answer = await client.converse(modelId=HAIKU, messages=messages("again"))
    assert answer["output"]["message"]["content"][0]["text"] == "You said: again"
    assert len(server.requests) == 3
    assert [log["attempts"] for log in logs] == [3]


async def test_throttling_past_the_attempt_cap_raises_the_typed_error(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient
) -> None:
    server.add_client_error("ThrottlingException", times=3)
    with pytest.raises(ThrottlingError) as caught:
        await client.converse(modelId=HAIKU, messages=messages())
    assert caught.value.retryable is True
    assert len(server.requests) == 3


async def test_a_dropped_connection_is_retried(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient
) -> None:
    server.add_connection_drop()
    answer = await client.converse(modelId=HAIKU, messages=messages("after a drop"))
    assert answer["output"]["message"]["content"][0]["text"] == "You said: after a drop"
    assert len(server.requests) == 2


# --- streams -----------------------------------------------------------------------------------------------


async def test_a_stream_failing_before_its_first_event_is_retried_without_duplicates(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient
) -> None:
    server.add_stream_error("throttlingException", after=0)
    response = await client.converse_stream(modelId=HAIKU, messages=messages("once"))
    assert await astream_text(response["stream"]) == "You said: once"
    assert len(server.requests) == 2


async def test_a_stream_failing_after_its_first_event_raises_and_is_not_retried(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient
) -> None:
    server.add_stream_error("throttlingException", after=2)
    response = await client.invoke_model_with_response_stream(modelId=HAIKU, body=anthropic_body())
    received: list[object] = []
    with capture_logs() as logs, pytest.raises(ThrottlingError) as caught:
        await _collect(response["body"], into=received)
    assert len(received) == 2
    assert caught.value.mid_stream is True
    assert caught.value.events_received == 2
    assert caught.value.response["Error"]["Code"] == "throttlingException"
    assert len(server.requests) == 1
    (log,) = logs
    assert (log["outcome"], log["error_class"], log["events"]) == ("error", "ThrottlingError", 2)


async def _collect(events: AsyncIterator[object], *, into: list[object]) -> None:
    async for event in events:
        into.append(event)  # noqa: PERF401 - the events before an error must be kept


async def test_a_connection_cut_mid_stream_is_a_typed_error_not_a_retry(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient
) -> None:
    server.add_connection_drop(after=2, operation="converse_stream")
    response = await client.converse_stream(modelId=HAIKU, messages=messages("a b c d e f"))
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever aiohttp raises, it is not swallowed
        async for _ in response["stream"]:
            pass
    assert len(server.requests) == 1
    assert not isinstance(caught.value, StopAsyncIteration)


async def test_leaving_a_stream_early_closes_it_and_says_so_in_the_log(
    client: AsyncSafeBedrockClient,
) -> None:
    with capture_logs() as logs:
        response = await client.converse_stream(modelId=HAIKU, messages=messages("a b c d"))
        async with response["stream"] as events:
            async for _ in events:
                break
    (event,) = logs
    assert event["closed_early"] is True
    assert event["events"] == 1
    assert event["stream"] is True
    assert event["ttft_ms"] is not None


async def test_a_finished_stream_logs_one_event_with_token_counts(client: AsyncSafeBedrockClient) -> None:
    with capture_logs() as logs:
        response = await client.invoke_model_with_response_stream(modelId=HAIKU, body=anthropic_body("tok"))
        [event async for event in response["body"]]
        await response["body"].aclose()  # closing after the end changes nothing
        response["body"].close()
    (event,) = logs
    assert event["closed_early"] is False
    assert event["input_tokens"] is not None
    assert event["output_tokens"] is not None
    assert event["outcome"] == "ok"


async def test_an_abandoned_stream_is_closed_when_collected(client: AsyncSafeBedrockClient) -> None:
    with capture_logs() as logs:
        response = await client.converse_stream(modelId=HAIKU, messages=messages("a b c"))
        stream = response["stream"]
        await anext(aiter(stream))
        del response, stream
        gc.collect()
        await asyncio.sleep(0)  # lets the event generator's finaliser run
    assert [log["closed_early"] for log in logs] == [True]


# --- logs, hooks and concurrency ---------------------------------------------------------------------------


async def test_every_call_leaves_exactly_one_log_event_and_refusals_are_warnings(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient
) -> None:
    with capture_logs() as logs:
        await client.converse(modelId=HAIKU, messages=messages())
        with pytest.raises(ModelNotAllowedError):
            await client.converse(modelId=LLAMA, messages=messages())
        server.add_client_error("ValidationException")
        with pytest.raises(ClientError):
            await client.converse(modelId=HAIKU, messages=messages())
    assert [(log["outcome"], log["log_level"]) for log in logs] == [
        ("ok", "info"),
        ("refused", "warning"),
        ("error", "error"),
    ]
    assert all(log["event"] == "bedrock.call" for log in logs)


async def test_hooks_receive_the_details_of_every_call(server: FakeBedrockServer) -> None:
    seen: list[CallDetails] = []
    async with async_client(server, allow=[HAIKU], hooks=[seen.append]) as client:
        await client.converse(modelId=HAIKU, messages=messages())
        response = await client.converse_stream(modelId=HAIKU, messages=messages("x y"))
        [event async for event in response["stream"]]
    assert [(d.operation, d.outcome, d.stream) for d in seen] == [
        ("Converse", "ok", False),
        ("ConverseStream", "ok", True),
    ]


async def test_one_client_serves_many_tasks_at_once(
    server: FakeBedrockServer, client: AsyncSafeBedrockClient
) -> None:
    async def work(n: int) -> None:
        text = f"task {n}"
        answer = await client.converse(modelId=HAIKU, messages=messages(text))
        assert answer["output"]["message"]["content"][0]["text"] == f"You said: {text}"
        response = await client.converse_stream(modelId=HAIKU, messages=messages(text))
        assert await astream_text(response["stream"]) == f"You said: {text}"

    await asyncio.gather(*(work(n) for n in range(40)))
    assert len(server.requests) == 80
