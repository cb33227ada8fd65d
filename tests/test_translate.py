"""Every message form in the corpus becomes the right typed error, with the right fields and a fix that says
what to change, and stays a drop-in for code written against boto3's exceptions."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError, EventStreamError, ReadTimeoutError

from safe_bedrock import errors
from safe_bedrock._classify import Cause
from safe_bedrock._ids import parse_model_id
from safe_bedrock._observe import error_fields
from safe_bedrock._translate import CallContext, translate
from tests.error_corpus import CORPUS, Case

if TYPE_CHECKING:
    from collections.abc import Iterator


CONVERSE = CallContext(operation="Converse", region="us-east-1")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    made = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield made
    made.close()


def public_type(error: BaseException) -> type[BaseException]:
    """The class of safe_bedrock.errors an error presents as (through any per-client subclass)."""
    for klass in type(error).__mro__:
        if getattr(errors, klass.__name__, None) is klass:
            return klass
    raise AssertionError(f"{type(error)!r} is not a safe_bedrock error")


def response_for(case: Case) -> dict[str, Any]:
    if case.mid_stream:
        # What botocore's event-stream parser builds for an exception frame: no response metadata.
        return {"Error": {"Code": case.code, "Message": case.message}}
    return {
        "Error": {"Code": case.code, "Message": case.message},
        "ResponseMetadata": {
            "RequestId": "req-0001",
            "HTTPStatusCode": case.status,
            "HTTPHeaders": {"x-amzn-requestid": "req-0001", "x-amzn-errortype": case.code},
            "RetryAttempts": 0,
        },
    }


def original_for(case: Case, client: Any) -> ClientError:
    """The exception botocore itself raises for this case."""
    response = response_for(case)
    if case.mid_stream:
        return EventStreamError(response, case.operation)
    modeled: type[ClientError] = client.exceptions.from_code(case.code)
    return modeled(response, case.operation)


def context_for(case: Case, **overrides: Any) -> CallContext:
    ref = parse_model_id(case.model_id, region=case.region)
    values: dict[str, Any] = {
        "operation": case.operation,
        "model_id": case.model_id,
        "model_arn": ref.arn,
        "region": case.region,
        "ref": ref,
        "mid_stream": case.mid_stream,
        "events_received": 3 if case.mid_stream else 0,
    }
    values.update(overrides)
    return CallContext(**values)


def translated(case: Case, client: Any, **overrides: Any) -> errors.BedrockServiceError:
    error = translate(
        original_for(case, client), context=context_for(case, **overrides), exceptions=client.exceptions
    )
    assert isinstance(error, errors.BedrockServiceError)
    return error


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_every_corpus_message_becomes_its_class_with_the_fields_it_names(case: Case, client: Any) -> None:
    error = translated(case, client)
    assert public_type(error) is case.expected
    assert error.code == case.code
    assert error.message == case.message
    assert error.operation == case.operation
    assert error.region == case.region
    assert error.model_id == case.model_id
    assert error.retryable is issubclass(case.expected, errors.TransientError)
    assert error.fix
    for name, value in case.fields.items():
        assert getattr(error, name) == value, name
    if case.mid_stream:
        assert error.mid_stream
        assert error.events_received == 3
        assert error.request_id is None
    else:
        assert error.http_status == case.status
        assert error.request_id == "req-0001"


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_every_translated_error_is_still_the_exception_boto3_code_catches(case: Case, client: Any) -> None:
    original = original_for(case, client)
    modeled = type(original)
    with pytest.raises(modeled) as caught:
        raise translate(original, context=context_for(case), exceptions=client.exceptions) from original
    error = caught.value
    assert isinstance(error, ClientError)
    assert error.response is original.response
    assert error.response["Error"]["Code"] == case.code
    assert error.operation_name == case.operation
    assert error.__cause__ is original
    if case.mid_stream:
        assert isinstance(error, EventStreamError)
        # The lowerCamel stream code still reaches the client's modeled class.
        assert isinstance(error, client.exceptions.from_code(case.code[0].upper() + case.code[1:]))


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_every_translated_error_prints_one_line_with_its_cause_and_fix(case: Case, client: Any) -> None:
    error = translated(case, client)
    text = str(error)
    assert "\n" not in text
    assert case.code in text
    assert f"Fix: {' '.join(error.fix.split())}" in text


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_every_translated_error_pickles_as_its_public_class(case: Case, client: Any) -> None:
    error = translated(case, client)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is case.expected
    assert copy.code == error.code
    assert copy.fix == error.fix
    assert copy.response == error.response
    assert copy.operation_name == error.operation_name
    assert str(copy) == str(error)


@pytest.mark.parametrize("cause", list(Cause), ids=[cause.name for cause in Cause])
def test_every_cause_is_logged_under_the_category_the_cause_table_gives_it(cause: Cause) -> None:
    error = cause.error_class(code="x", message="y", operation="Converse")
    assert error_fields(error)["error_category"] == cause.category
    assert cause.retryable is isinstance(error, errors.TransientError)


def test_modeled_class_is_found_from_the_code_when_botocore_raised_plain_client_error(client: Any) -> None:
    response = {"Error": {"Code": "AccessDeniedException", "Message": "Access denied."}}
    original = ClientError(response, "Converse")
    with pytest.raises(client.exceptions.AccessDeniedException):
        raise translate(original, context=CONVERSE, exceptions=client.exceptions) from original


def test_modeled_class_is_kept_without_the_client_exceptions(client: Any) -> None:
    response = {
        "Error": {
            "Code": "ThrottlingException",
            "Message": "Too many tokens, please wait before trying again.",
        }
    }
    original = client.exceptions.ThrottlingException(response, "Converse")
    error = translate(original, context=CONVERSE)
    assert isinstance(error, errors.ThrottlingError)
    assert isinstance(error, client.exceptions.ThrottlingException)


def test_the_same_pair_of_classes_is_built_once(client: Any) -> None:
    case = next(case for case in CORPUS if case.id == "too-many-tokens")
    assert type(translated(case, client)) is type(translated(case, client))
    assert type(translated(case, client)).__name__ == "ThrottlingError"


def test_mid_stream_error_without_the_client_exceptions_is_still_an_event_stream_error() -> None:
    original = EventStreamError(
        {"Error": {"Code": "throttlingException", "Message": "slow down"}}, "ConverseStream"
    )
    context = CallContext(operation="ConverseStream", region="us-east-1", mid_stream=True)
    error = translate(original, context=context)
    assert isinstance(error, errors.ThrottlingError)
    assert isinstance(error, EventStreamError)
    assert error.mid_stream


def test_mid_stream_error_takes_the_stream_request_id_from_the_context() -> None:
    original = EventStreamError(
        {"Error": {"Code": "modelStreamErrorException", "Message": "x"}}, "ConverseStream"
    )
    context = CallContext(
        operation="ConverseStream",
        region="us-east-1",
        mid_stream=True,
        events_received=7,
        request_id="req-stream",
    )
    error = translate(original, context=context)
    assert isinstance(error, errors.ModelStreamError)
    assert error.request_id == "req-stream"
    assert "7 events" in error.fix


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("not ours"),
        ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com"),
        errors.InvalidModelIdError(model_id="x", problem="bad", fix="good"),
    ],
    ids=["value-error", "read-timeout", "already-translated"],
)
def test_errors_that_are_not_bedrock_service_errors_pass_through_unchanged(exc: Exception) -> None:
    assert translate(exc, context=CONVERSE) is exc


def test_translating_a_translated_error_returns_it_unchanged(client: Any) -> None:
    case = CORPUS[0]
    error = translated(case, client)
    assert translate(error, context=context_for(case), exceptions=client.exceptions) is error


def test_request_id_falls_back_to_the_response_header() -> None:
    response = {
        "Error": {"Code": "InternalServerException", "Message": "boom"},
        "ResponseMetadata": {"HTTPStatusCode": 500, "HTTPHeaders": {"x-amzn-requestid": "from-header"}},
    }
    error = translate(ClientError(response, "Converse"), context=CONVERSE)
    assert isinstance(error, errors.InternalServerError)
    assert error.request_id == "from-header"


def test_a_response_without_error_details_still_translates() -> None:
    error = translate(ClientError({}, "Converse"), context=CONVERSE)
    assert isinstance(error, errors.BedrockServiceError)
    assert error.code == ""
    assert error.fix
