"""SafeBedrockClient through real boto3 and the in-process fake: guard, parity, typed errors, logs."""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from structlog.testing import capture_logs

from safe_bedrock import (
    InvalidModelIdError,
    MissingPermissionError,
    ModelAllowlist,
    ModelNotAllowedError,
    SafeBedrockClient,
    ThrottlingError,
)
from safe_bedrock._retry import set_testing
from safe_bedrock._service import operation_specs
from safe_bedrock.errors import StreamIncompleteError
from safe_bedrock.testing import FakeBedrock
from tests.clienthelpers import (
    HAIKU,
    LLAMA,
    NO_BOTOCORE_RETRIES,
    SONNET,
    US_HAIKU,
    anthropic_body,
    messages,
    safe_client,
    stream_text,
)


@pytest.fixture(autouse=True)
def _no_waiting() -> Iterator[None]:
    with set_testing(True):
        yield


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture
def client(fake: FakeBedrock) -> SafeBedrockClient:
    return safe_client(fake, allow=[HAIKU, US_HAIKU])


def _model_operations() -> list[str]:
    client = FakeBedrock().client()
    specs = operation_specs(client.meta.service_model)
    return sorted(m for m, spec in specs.items() if spec.model_member and hasattr(client, m))


# --- drop-in parity ----------------------------------------------------------------------------------------


def test_invoke_model_answers_exactly_like_raw_boto3(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    raw = fake.client()
    ours = client.invoke_model(modelId=HAIKU, body=anthropic_body("parity"))
    theirs = raw.invoke_model(modelId=HAIKU, body=anthropic_body("parity"))
    assert json.loads(ours["body"].read()) == json.loads(theirs["body"].read())
    assert ours["contentType"] == theirs["contentType"]
    assert set(ours) == set(theirs)


def test_converse_and_count_tokens_answer_like_raw_boto3(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    raw = fake.client()
    assert (
        client.converse(modelId=HAIKU, messages=messages("x"))["output"]
        == raw.converse(modelId=HAIKU, messages=messages("x"))["output"]
    )
    tokens_input = {"converse": {"messages": messages("count me")}}
    assert (
        client.count_tokens(modelId=HAIKU, input=tokens_input)["inputTokens"]
        == raw.count_tokens(modelId=HAIKU, input=tokens_input)["inputTokens"]
    )


@pytest.mark.parametrize("method", ["invoke_model_with_response_stream", "converse_stream"])
def test_streams_yield_the_same_events_as_raw_boto3(
    fake: FakeBedrock, client: SafeBedrockClient, method: str
) -> None:
    raw = fake.client()
    kwargs: dict[str, object] = {"modelId": HAIKU}
    if method == "converse_stream":
        kwargs["messages"] = messages("stream parity")
        key = "stream"
    else:
        kwargs["body"] = anthropic_body("stream parity")
        key = "body"
    ours = list(getattr(client, method)(**kwargs)[key])
    theirs = list(getattr(raw, method)(**kwargs)[key])
    assert ours == theirs
    assert stream_text(ours) == "You said: stream parity"


def test_operations_that_address_no_model_pass_through(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    answer = client.apply_guardrail(
        guardrailIdentifier="gr-1", guardrailVersion="1", source="INPUT", content=[{"text": {"text": "hi"}}]
    )
    assert answer["action"] == "NONE"
    assert fake.requests[-1].operation == "ApplyGuardrail"


def test_botocore_parameter_validation_still_applies(client: SafeBedrockClient) -> None:
    with pytest.raises(ParamValidationError):
        client.converse(modelId=HAIKU, messages=messages(), temperature=0.5)  # type: ignore[call-arg]


def test_meta_exceptions_and_helpers_are_boto3s(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    assert client.meta.region_name == "us-east-1"
    assert client.meta.service_model.service_name == "bedrock-runtime"
    assert client.can_paginate("list_async_invokes") is True
    assert issubclass(client.exceptions.AccessDeniedException, ClientError)
    assert "invoke_model" in dir(client)
    client.close()


# --- the guard ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", _model_operations())
def test_every_model_operation_refuses_models_off_the_allowlist_and_sends_nothing(
    fake: FakeBedrock, client: SafeBedrockClient, method: str
) -> None:
    with pytest.raises(ModelNotAllowedError) as caught:
        getattr(client, method)(modelId=LLAMA)
    assert fake.requests == []
    error = caught.value
    assert error.model_arn == f"arn:aws:bedrock:us-east-1::foundation-model/{LLAMA}"
    assert error.entry_to_add == LLAMA
    assert error.fields()["entry_to_add"] == LLAMA
    assert "response" not in error.fields()
    assert str(error) == f"{error.summary} Fix: {error.fix}"
    assert error.http_status == 403
    assert error.response["Error"]["Code"] == "AccessDeniedException"


def test_the_refusal_is_caught_by_boto3_style_handlers(client: SafeBedrockClient) -> None:
    with pytest.raises(client.exceptions.AccessDeniedException):
        client.converse(modelId=SONNET, messages=messages())
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=SONNET, messages=messages())
    error = caught.value
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert error.operation_name == "Converse"
    assert SONNET in str(error)
    assert HAIKU in str(error)  # the closest allowed entry is named


def test_allowing_a_model_does_not_allow_profiles_that_route_it_elsewhere(fake: FakeBedrock) -> None:
    client = safe_client(fake, allow=[HAIKU])
    with pytest.raises(ModelNotAllowedError):
        client.converse(modelId="eu.anthropic.claude-3-haiku-20240307-v1:0", messages=messages())
    assert fake.requests == []


def test_a_profile_on_the_allowlist_is_sent(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    client.converse(modelId=US_HAIKU, messages=messages())
    assert fake.requests[-1].model_id == US_HAIKU


def test_arn_and_bare_id_of_the_same_model_are_both_allowed(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    client.converse(modelId=f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}", messages=messages())
    with pytest.raises(ModelNotAllowedError):
        client.converse(modelId=f"arn:aws:bedrock:eu-west-1::foundation-model/{HAIKU}", messages=messages())
    assert len(fake.requests) == 1


def test_invoke_only_entries_refuse_streaming(fake: FakeBedrock) -> None:
    allowlist = ModelAllowlist([], invoke_only=[HAIKU])
    client = safe_client(fake, allow=allowlist)
    client.invoke_model(modelId=HAIKU, body=anthropic_body())
    with pytest.raises(ModelNotAllowedError) as caught:
        client.invoke_model_with_response_stream(modelId=HAIKU, body=anthropic_body())
    assert caught.value.action == "bedrock:InvokeModelWithResponseStream"
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("model_id", "problem"),
    [
        (None, "None"),
        (b"anthropic.claude-3-haiku-20240307-v1:0", "bytes"),
        (42, "int"),
        ("   ", "whitespace"),
        ("", "empty"),
        ("anthropic.claude\n-3", "control"),
        ("anthropic%2Fclaude", "encoded"),
        ("../../foundation-model/x", "traversal"),
        ("аnthropic.claude-3-haiku-20240307-v1:0", "non-ASCII"),  # noqa: RUF001 - a Cyrillic look-alike
        ("a" * 3000, "long"),
    ],
)
def test_bad_model_ids_are_refused_locally_with_a_clear_error(
    fake: FakeBedrock, client: SafeBedrockClient, model_id: object, problem: str
) -> None:
    with pytest.raises(InvalidModelIdError) as caught:
        client.invoke_model(modelId=model_id, body=anthropic_body())  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    assert caught.value.fix
    assert fake.requests == []


def test_missing_model_id_is_refused_locally(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    with pytest.raises(InvalidModelIdError):
        client.invoke_model(body=anthropic_body())  # type: ignore[call-arg]
    assert fake.requests == []


def test_allow_must_be_a_list_not_one_string(fake: FakeBedrock) -> None:
    with pytest.raises(TypeError, match=r"allow=\['anthropic"):
        SafeBedrockClient(allow=HAIKU, client=fake.client(config=NO_BOTOCORE_RETRIES))


def test_an_empty_allowlist_warns_at_the_callers_line_and_refuses_everything(fake: FakeBedrock) -> None:
    with pytest.warns(UserWarning, match="empty") as warned:
        client = SafeBedrockClient(allow=[], client=fake.client(config=NO_BOTOCORE_RETRIES))
    assert warned[0].filename == __file__
    with pytest.raises(ModelNotAllowedError):
        client.converse(modelId=HAIKU, messages=messages())


def test_a_wrapped_client_that_still_retries_warns_once_at_the_callers_line(fake: FakeBedrock) -> None:
    with pytest.warns(UserWarning, match="retries") as warned:
        SafeBedrockClient(allow=[HAIKU], client=fake.client())
    assert len(warned) == 1
    assert warned[0].filename == __file__


def test_the_client_it_builds_has_botocore_retries_off() -> None:
    client = SafeBedrockClient(allow=[HAIKU], region_name="eu-west-1")
    assert client.meta.config.retries["total_max_attempts"] == 1
    assert client.meta.region_name == "eu-west-1"


def test_bare_ids_resolve_in_the_clients_region(fake: FakeBedrock) -> None:
    client = SafeBedrockClient(
        allow=[HAIKU], client=fake.client(region_name="eu-west-1", config=NO_BOTOCORE_RETRIES)
    )
    with pytest.raises(ModelNotAllowedError) as caught:
        client.converse(modelId=LLAMA, messages=messages())
    assert caught.value.model_arn == f"arn:aws:bedrock:eu-west-1::foundation-model/{LLAMA}"


# --- typed errors from the service -----------------------------------------------------------------------


def test_access_denied_becomes_a_typed_error_that_old_handlers_still_catch(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    fake.add_client_error("AccessDeniedException", variant="implicit_deny")
    with pytest.raises(client.exceptions.AccessDeniedException) as caught:
        client.converse(modelId=HAIKU, messages=messages())
    error = caught.value
    assert isinstance(error, MissingPermissionError)
    assert error.action == "bedrock:InvokeModel"
    assert error.suggested_policy is not None
    assert "bedrock:InvokeModel" in json.dumps(error.suggested_policy)
    assert isinstance(error.__cause__, ClientError)
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert type(pickle.loads(pickle.dumps(error))) is MissingPermissionError


def test_access_errors_are_not_retried(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    fake.add_client_error("AccessDeniedException")
    with pytest.raises(client.exceptions.AccessDeniedException):
        client.converse(modelId=HAIKU, messages=messages())
    assert len(fake.requests) == 1


def test_throttling_is_retried_then_succeeds(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    fake.add_client_error("ThrottlingException", times=2)
    with capture_logs() as logs:
        answer = client.converse(modelId=HAIKU, messages=messages("again"))
    assert answer["output"]["message"]["content"][0]["text"] == "You said: again"
    assert len(fake.requests) == 3
    assert [log["attempts"] for log in logs] == [3]


def test_throttling_past_the_attempt_cap_raises_the_typed_error(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    fake.add_client_error("ThrottlingException", times=3)
    with pytest.raises(ThrottlingError) as caught:
        client.converse(modelId=HAIKU, messages=messages())
    assert caught.value.retryable is True
    assert len(fake.requests) == 3


# --- streams -----------------------------------------------------------------------------------------------


def test_a_stream_failing_before_its_first_event_is_retried_without_duplicates(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    fake.add_stream_error("throttlingException", after=0)
    response = client.converse_stream(modelId=HAIKU, messages=messages("once"))
    assert stream_text(response["stream"]) == "You said: once"
    assert len(fake.requests) == 2


def test_a_stream_failing_after_its_first_event_raises_and_is_not_retried(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    fake.add_stream_error("throttlingException", after=2)
    response = client.invoke_model_with_response_stream(modelId=HAIKU, body=anthropic_body())
    received = []
    with pytest.raises(ThrottlingError) as caught:
        received.extend(response["body"])
    assert len(received) == 2
    assert caught.value.mid_stream is True
    assert caught.value.events_received == 2
    assert caught.value.response["Error"]["Code"] == "throttlingException"
    assert caught.value.request_id == response["ResponseMetadata"]["RequestId"]
    assert len(fake.requests) == 1


def test_leaving_a_stream_early_closes_it_and_says_so_in_the_log(client: SafeBedrockClient) -> None:
    with capture_logs() as logs:
        response = client.converse_stream(modelId=HAIKU, messages=messages("a b c d"))
        with response["stream"] as events:
            for _ in events:
                break
    (event,) = logs
    assert event["closed_early"] is True
    assert event["events"] == 1
    assert event["stream"] is True
    assert event["ttft_ms"] is not None


def test_a_finished_stream_logs_one_event_with_token_counts(client: SafeBedrockClient) -> None:
    with capture_logs() as logs:
        response = client.invoke_model_with_response_stream(modelId=HAIKU, body=anthropic_body("tokens"))
        list(response["body"])
        response["body"].close()  # closing after the end changes nothing
    (event,) = logs
    assert event["closed_early"] is False
    assert event["input_tokens"] is not None
    assert event["output_tokens"] is not None
    assert event["outcome"] == "ok"


def test_an_abandoned_stream_is_closed_when_collected(client: SafeBedrockClient) -> None:
    with capture_logs() as logs:
        response = client.converse_stream(modelId=HAIKU, messages=messages("a b c"))
        next(iter(response["stream"]))
        del response
    assert [log["closed_early"] for log in logs] == [True]


# --- logs and threads ------------------------------------------------------------------------------------


def test_every_call_leaves_exactly_one_log_event_and_refusals_are_warnings(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    with capture_logs() as logs:
        client.converse(modelId=HAIKU, messages=messages())
        with pytest.raises(ModelNotAllowedError):
            client.converse(modelId=LLAMA, messages=messages())
        fake.add_client_error("ValidationException")
        with pytest.raises(ClientError):
            client.converse(modelId=HAIKU, messages=messages())
    assert [(log["outcome"], log["log_level"]) for log in logs] == [
        ("ok", "info"),
        ("refused", "warning"),
        ("error", "error"),
    ]
    assert all(log["event"] == "bedrock.call" for log in logs)


def test_one_client_serves_many_threads(fake: FakeBedrock, client: SafeBedrockClient) -> None:
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                text = f"thread {n} call {i}"
                answer = client.converse(modelId=HAIKU, messages=messages(text))
                assert answer["output"]["message"]["content"][0]["text"] == f"You said: {text}"
                with pytest.raises(ModelNotAllowedError):
                    client.converse(modelId=LLAMA, messages=messages())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(fake.requests) == 160
    assert {request.model_id for request in fake.requests} == {HAIKU}


def test_a_stream_cut_short_raises_at_its_end_and_logs_a_warning(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    fake.add_truncated_stream(after=3)
    events: list[object] = []
    with capture_logs() as logs:
        with pytest.raises(StreamIncompleteError) as raised:
            events.extend(client.converse_stream(modelId=HAIKU, messages=messages("a b c d e f"))["stream"])
        list(client.converse_stream(modelId=HAIKU, messages=messages("whole"))["stream"])
    assert len(events) == raised.value.events_received == 3
    cut, whole = logs
    assert (cut["complete"], cut["log_level"], cut["outcome"]) == (False, "warning", "error")
    assert (whole["complete"], whole["log_level"]) == (True, "info")
