"""The public error tree: drop-in for botocore's ClientError, picklable, one readable line each."""

from __future__ import annotations

import inspect
import pickle
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError, EventStreamError

from safe_bedrock import errors
from safe_bedrock._allowlist import Decision
from safe_bedrock._ids import parse_model_id
from safe_bedrock._translate import _class_for, refused

if TYPE_CHECKING:
    from collections.abc import Iterator

SERVICE_ERRORS = sorted(
    (
        klass
        for _, klass in inspect.getmembers(errors, inspect.isclass)
        if issubclass(klass, errors.BedrockServiceError) and klass.__module__ == errors.__name__
    ),
    key=lambda klass: klass.__name__,
)

EXTRA_FIELDS: dict[str, Any] = {
    "principal": "arn:aws:iam::123456789012:user/dev",
    "action": "bedrock:InvokeModel",
    "resource": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
    "policy_type": "identity-based",
    "policy_arn": "arn:aws:iam::123456789012:policy/Deny",
    "allowlist_source": "SAFE_BEDROCK_ALLOWED_MODELS",
    "closest": ("anthropic.claude-3-5-haiku-20241022-v1:0",),
    "entry_to_add": "anthropic.claude-3-haiku-20240307-v1:0",
    "suggested_policy": {"Version": "2012-10-17", "Statement": []},
    "suggested_model_id": "us.anthropic.claude-3-haiku-20240307-v1:0",
}


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


def defaults(klass: type[errors.BedrockServiceError]) -> dict[str, Any]:
    """Every field the class has, with its value when only the required ones are given."""
    return {**klass(code="", message="", operation="").fields(), "response": None}


def build(klass: type[errors.BedrockServiceError]) -> errors.BedrockServiceError:
    """An error whose every field differs from its default, so a field that pickling drops shows."""
    extra = {name: value for name, value in EXTRA_FIELDS.items() if name in defaults(klass)}
    response = {
        "Error": {"Code": "AccessDeniedException", "Message": "as Bedrock sent it"},
        "ResponseMetadata": {"RequestId": "req-1", "HTTPStatusCode": 403, "HTTPHeaders": {"x": "y"}},
    }
    return klass(
        code="AccessDeniedException",
        message="User: x is not authorized to perform: bedrock:InvokeModel",
        operation="Converse",
        model_id="anthropic.claude-3-haiku-20240307-v1:0",
        model_arn=EXTRA_FIELDS["resource"],
        region="us-east-1",
        request_id="req-1",
        http_status=403,
        retryable=True,
        fix="Attach a policy.",
        mid_stream=True,
        events_received=2,
        response=response,
        **extra,
    )


def state(error: errors.BedrockServiceError) -> dict[str, Any]:
    return {**error.fields(), "response": error.response}


def test_the_tree_covers_every_class_the_hierarchy_documents() -> None:
    names = {klass.__name__ for klass in SERVICE_ERRORS}
    for name in names:
        assert name in errors.__doc__
        assert name in errors.__all__
    assert len(names) == 28


@pytest.mark.parametrize("klass", SERVICE_ERRORS, ids=lambda klass: klass.__name__)
def test_every_service_error_is_a_botocore_client_error_with_a_response(
    klass: type[errors.BedrockServiceError],
) -> None:
    error = build(klass)
    assert isinstance(error, ClientError)
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error.operation_name == "Converse"


@pytest.mark.parametrize("klass", SERVICE_ERRORS, ids=lambda klass: klass.__name__)
def test_every_service_error_pickles_with_all_its_fields(klass: type[errors.BedrockServiceError]) -> None:
    error = build(klass)
    given = state(error)
    assert given.keys() == defaults(klass).keys()
    assert [name for name, default in defaults(klass).items() if given[name] == default] == []
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is klass
    assert state(copy) == state(error)
    assert str(copy) == str(error)


@pytest.mark.parametrize("klass", SERVICE_ERRORS, ids=lambda klass: klass.__name__)
def test_every_per_client_subclass_pickles_as_its_public_class(
    klass: type[errors.BedrockServiceError], client: Any
) -> None:
    for name in ("AccessDeniedException", "ThrottlingException", "ModelStreamErrorException"):
        modeled = getattr(client.exceptions, name)
        for stream in (False, True):
            dynamic = _class_for(klass, modeled, stream=stream)
            assert issubclass(dynamic, klass)
            assert issubclass(dynamic, modeled)
            assert issubclass(dynamic, EventStreamError) is stream
            assert dynamic.__name__ == klass.__name__
            error = build(dynamic)
            copy = pickle.loads(pickle.dumps(error))
            assert type(copy) is klass
            assert state(copy) == state(error)


def test_invalid_model_id_error_is_a_value_error_and_pickles() -> None:
    error = errors.InvalidModelIdError(model_id="bad id", problem="contains a space", fix="remove it")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is errors.InvalidModelIdError
    assert (copy.model_id, copy.problem, copy.fix) == ("bad id", "contains a space", "remove it")


def test_str_is_one_line_even_when_the_message_has_newlines() -> None:
    error = errors.ModelError(
        code="ModelErrorException", message="line one\nline two", operation="InvokeModel", fix="a\nb"
    )
    # Escaped as repr shows them, so the line break stays visible but cannot split a log line.
    assert str(error) == "ModelErrorException on InvokeModel: line one\\nline two Fix: a\\nb"


def test_str_says_mid_stream_and_how_many_events_arrived() -> None:
    error = errors.ModelStreamError(
        code="modelStreamErrorException",
        message="interrupted",
        operation="ConverseStream",
        model_id="m",
        mid_stream=True,
        events_received=4,
    )
    assert "mid-stream after 4 events" in str(error)


def test_a_retried_error_says_how_many_attempts_over_how_long_and_pickles_them() -> None:
    once = errors.ThrottlingError(code="ThrottlingException", message="slow down", operation="Converse")
    assert str(once) == "ThrottlingException on Converse: slow down"
    assert "attempts" not in once.fields()
    error = errors.ThrottlingError(
        code="ThrottlingException", message="slow down", operation="Converse", attempts=3, elapsed_s=2.14
    )
    assert str(error) == "ThrottlingException on Converse after 3 attempts over 2.1 s: slow down"
    assert (error.fields()["attempts"], error.fields()["elapsed_s"]) == (3, 2.14)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.attempts, copy.elapsed_s, str(copy)) == (type(error), 3, 2.14, str(error))


# -- refused by the allowlist -------------------------------------------------------------------------------


def decision() -> Decision:
    return Decision(
        allowed=False,
        matched=None,
        closest=("anthropic.claude-3-5-haiku-20241022-v1:0",),
        entry_to_add="anthropic.claude-3-haiku-20240307-v1:0",
    )


def test_refused_says_what_was_refused_what_is_close_and_what_to_add(client: Any) -> None:
    ref = parse_model_id("anthropic.claude-3-haiku-20240307-v1:0", region="us-east-1")
    error = refused(
        ref,
        operation="ConverseStream",
        decision=decision(),
        source="env SAFE_BEDROCK_ALLOWED_MODELS",
        exceptions=client.exceptions,
    )
    assert isinstance(error, errors.ModelNotAllowedError)
    assert isinstance(error, client.exceptions.AccessDeniedException)
    assert error.code == "AccessDeniedException"
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert error.http_status == 403
    assert not error.retryable
    assert error.action == "bedrock:InvokeModelWithResponseStream"
    assert error.resource == ref.arn
    assert error.model_arn == ref.arn
    assert error.allowlist_source == "env SAFE_BEDROCK_ALLOWED_MODELS"
    assert error.closest == ("anthropic.claude-3-5-haiku-20241022-v1:0",)
    assert error.entry_to_add == "anthropic.claude-3-haiku-20240307-v1:0"
    for part in (
        ref.raw,
        ref.arn,
        "ConverseStream",
        "SAFE_BEDROCK_ALLOWED_MODELS",
        "anthropic.claude-3-5-haiku",
    ):
        assert part in error.message
    assert error.fix == (
        "add `anthropic.claude-3-haiku-20240307-v1:0` to the SAFE_BEDROCK_ALLOWED_MODELS environment "
        "variable (comma separated)"
    )
    with pytest.raises(client.exceptions.AccessDeniedException):
        raise error
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is errors.ModelNotAllowedError
    assert copy.entry_to_add == error.entry_to_add


def test_refused_without_client_exceptions_is_the_public_class() -> None:
    ref = parse_model_id("anthropic.claude-3-haiku-20240307-v1:0", region="us-east-1")
    error = refused(ref, operation="Converse", decision=decision(), source="code")
    assert type(error) is errors.ModelNotAllowedError
    assert error.action == "bedrock:InvokeModel"
