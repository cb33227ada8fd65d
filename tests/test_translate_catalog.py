"""Every message the fake Bedrock can send classifies to the class its cause belongs to, so an app tested
against the fake meets the same typed errors as in production."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EventStreamError

from safe_bedrock import errors
from safe_bedrock._service import stream_exceptions
from safe_bedrock._translate import CallContext, translate
from safe_bedrock.testing import _messages

# (code, variant) -> the class safe-bedrock raises for it. A new catalog row must be added here.
EXPECTED: dict[tuple[str, str], type[errors.BedrockServiceError]] = {
    ("AccessDeniedException", "implicit_deny"): errors.MissingPermissionError,
    ("AccessDeniedException", "implicit_deny_scp"): errors.MissingPermissionError,
    ("AccessDeniedException", "implicit_deny_session"): errors.MissingPermissionError,
    ("AccessDeniedException", "implicit_deny_boundary"): errors.MissingPermissionError,
    ("AccessDeniedException", "explicit_deny_scp"): errors.ExplicitDenyError,
    ("AccessDeniedException", "explicit_deny_scp_arn"): errors.ExplicitDenyError,
    ("AccessDeniedException", "explicit_deny_identity"): errors.ExplicitDenyError,
    ("AccessDeniedException", "explicit_deny_session"): errors.ExplicitDenyError,
    ("AccessDeniedException", "explicit_deny_boundary"): errors.ExplicitDenyError,
    ("AccessDeniedException", "explicit_deny_rcp"): errors.ExplicitDenyError,
    ("AccessDeniedException", "model_access_not_enabled"): errors.ModelAccessNotEnabledError,
    ("AccessDeniedException", "use_case_form"): errors.ModelAccessNotEnabledError,
    ("AccessDeniedException", "account_not_authorized"): errors.ModelAccessNotEnabledError,
    ("AccessDeniedException", "marketplace_subscription"): errors.MarketplaceSubscriptionError,
    ("AccessDeniedException", "marketplace_payment"): errors.MarketplaceSubscriptionError,
    ("AccessDeniedException", "invalid_token"): errors.InvalidCredentialsError,
    ("AccessDeniedException", "expired_token"): errors.ExpiredCredentialsError,
    ("AccessDeniedException", "invalid_api_key"): errors.InvalidCredentialsError,
    ("UnrecognizedClientException", "invalid_token"): errors.InvalidCredentialsError,
    ("ExpiredTokenException", "expired_token"): errors.ExpiredCredentialsError,
    ("InvalidSignatureException", "bad_signature"): errors.InvalidCredentialsError,
    ("UnknownOperationException", "unknown_operation"): errors.InvalidRequestError,
    ("ValidationException", "invalid_request"): errors.InvalidRequestError,
    ("ValidationException", "inference_profile_required"): errors.InferenceProfileRequiredError,
    ("ValidationException", "invalid_model_id"): errors.ModelNotFoundError,
    ("ValidationException", "on_demand_not_supported"): errors.InferenceProfileRequiredError,
    ("ValidationException", "malformed_input"): errors.InvalidRequestError,
    ("ValidationException", "input_too_long"): errors.InvalidRequestError,
    ("ValidationException", "model_returned_errors"): errors.InvalidRequestError,
    ("ValidationException", "conversation_must_start_with_user"): errors.InvalidRequestError,
    ("ThrottlingException", "too_many_requests"): errors.ThrottlingError,
    ("ThrottlingException", "too_many_tokens"): errors.ThrottlingError,
    ("ThrottlingException", "too_many_tokens_per_day"): errors.QuotaExceededError,
    ("ResourceNotFoundException", "model_not_found"): errors.ModelNotFoundError,
    ("ResourceNotFoundException", "end_of_life"): errors.ModelRetiredError,
    ("ResourceNotFoundException", "legacy"): errors.ModelRetiredError,
    ("ModelNotReadyException", "not_ready"): errors.ModelNotReadyError,
    ("ModelTimeoutException", "timeout"): errors.ModelTimeoutError,
    ("ModelErrorException", "model_error"): errors.ModelError,
    ("ModelStreamErrorException", "stream_error"): errors.ModelStreamError,
    ("InternalServerException", "internal"): errors.InternalServerError,
    ("ServiceUnavailableException", "unavailable"): errors.ServiceUnavailableError,
    ("ServiceUnavailableException", "too_many_connections"): errors.ServiceUnavailableError,
    ("ServiceQuotaExceededException", "quota_exceeded"): errors.QuotaExceededError,
    ("ConflictException", "conflict"): errors.BedrockServiceError,
}
ROWS = [(row.code, row.variant) for row in _messages.ERRORS]
FIELDS = {
    "principal": "arn:aws:sts::123456789012:assumed-role/app-role/session",
    "action": "bedrock:InvokeModel",
    "resource": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
    "model_id": "anthropic.claude-3-haiku-20240307-v1:0",
    "region": "us-east-1",
    "account": "123456789012",
    "policy_arn": "arn:aws:organizations::000000000000:policy/o-abcdef1234/service_control_policy/p-abcd1234",
    "detail": "messages.0: field required",
}
CONTEXT = CallContext(
    operation="InvokeModel",
    model_id=FIELDS["model_id"],
    model_arn=FIELDS["resource"],
    region="us-east-1",
)


def test_every_catalog_row_has_an_expected_class() -> None:
    assert sorted(set(ROWS) - set(EXPECTED)) == []


@pytest.mark.parametrize(("code", "variant"), ROWS, ids=[f"{code}-{variant}" for code, variant in ROWS])
def test_every_catalog_message_classifies_to_its_cause(code: str, variant: str) -> None:
    template = _messages.find(code, variant).template
    message = _messages.render(template, **FIELDS)
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"RequestId": "r", "HTTPStatusCode": _messages.http_status(code)},
    }
    error = translate(ClientError(response, "InvokeModel"), context=CONTEXT)
    assert type(error) is EXPECTED[code, variant]
    assert isinstance(error, errors.BedrockServiceError)
    assert error.code == code
    if isinstance(error, errors.AccessDeniedError) and "{principal}" in template:
        assert error.principal == FIELDS["principal"]
        assert error.action == FIELDS["action"]
        assert error.resource == FIELDS["resource"]


@pytest.mark.parametrize("member", stream_exceptions())
def test_every_mid_stream_exception_the_fake_can_send_classifies_by_its_code(member: str) -> None:
    original = EventStreamError({"Error": {"Code": member, "Message": "x"}}, "ConverseStream")
    context = CallContext(operation="ConverseStream", region="us-east-1", mid_stream=True)
    error = translate(original, context=context)
    assert isinstance(error, errors.BedrockServiceError)
    assert type(error) is not errors.BedrockServiceError
    assert error.mid_stream
    assert error.http_status == _messages.http_status(member[0].upper() + member[1:])
