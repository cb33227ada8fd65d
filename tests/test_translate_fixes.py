"""Each fix names what to change for this very call: the action, the ARNs, the region, the policy type."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from safe_bedrock import errors
from safe_bedrock._fixes import suggested_profile_id
from safe_bedrock._ids import ModelRef, parse_model_id, profile_routes
from safe_bedrock._policy import INVOKE, INVOKE_STREAM, PolicyDocument
from safe_bedrock._translate import CallContext, translate

ROLE = "arn:aws:sts::123456789012:assumed-role/app-role/session"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
PROFILE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"


def fail(
    code: str,
    message: str,
    *,
    model_id: str = HAIKU,
    operation: str = "InvokeModel",
    region: str = "us-east-1",
    status: int = 403,
) -> tuple[errors.BedrockServiceError, ModelRef]:
    ref = parse_model_id(model_id, region=region)
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"RequestId": "req-1", "HTTPStatusCode": status},
    }
    context = CallContext(operation=operation, model_id=model_id, model_arn=ref.arn, region=region, ref=ref)
    error = translate(ClientError(response, operation), context=context)
    assert isinstance(error, errors.BedrockServiceError)
    return error, ref


def implicit(action: str, resource: str, policy: str = "identity-based policy") -> str:
    return (
        f"User: {ROLE} is not authorized to perform: {action} on resource: {resource} "
        f"because no {policy} allows the {action} action"
    )


@pytest.mark.parametrize(
    ("operation", "action"),
    [
        ("InvokeModel", INVOKE),
        ("Converse", INVOKE),
        ("ConverseStream", INVOKE_STREAM),
        ("InvokeModelWithResponseStream", INVOKE_STREAM),
    ],
)
def test_missing_permission_suggests_the_least_privilege_policy_that_allows_the_call(
    operation: str, action: str
) -> None:
    ref = parse_model_id(HAIKU, region="us-east-1")
    error, ref = fail("AccessDeniedException", implicit(action, ref.arn), operation=operation)
    assert isinstance(error, errors.MissingPermissionError)
    assert error.suggested_policy is not None
    document = PolicyDocument.from_json(error.suggested_policy)
    assert document.evaluate(action=action, resource=ref.arn).allowed
    assert not document.evaluate(action=action, resource=ref.arn.replace("haiku", "opus")).allowed
    assert action in error.fix
    assert ref.arn in error.fix
    assert ROLE in error.fix
    assert "identity-based policy" in error.fix


def test_missing_permission_on_an_inference_profile_allows_the_profile_and_every_routed_region() -> None:
    ref = parse_model_id(PROFILE, region="us-east-1")
    error, ref = fail(
        "AccessDeniedException", implicit(INVOKE, ref.arn), model_id=PROFILE, operation="Converse"
    )
    assert isinstance(error, errors.MissingPermissionError)
    assert error.suggested_policy is not None
    document = PolicyDocument.from_json(error.suggested_policy)
    routes = profile_routes(ref)
    assert len(routes) > 1
    # IAM checks the profile's full ARN (the account comes from the caller named in the denial), then the
    # foundation model in the region the request was routed to, with the profile as request context.
    profile_arn = parse_model_id(PROFILE, region="us-east-1", account="123456789012").arn
    assert document.evaluate(action=INVOKE, resource=profile_arn).allowed
    assert profile_arn in error.fix
    for resource in routes:
        assert document.evaluate(action=INVOKE, resource=resource, inference_profile_arn=profile_arn).allowed
        assert not document.evaluate(action=INVOKE, resource=resource).allowed  # not when called directly
        assert resource in error.fix
    assert "*" not in str(error.suggested_policy)


def test_missing_permission_in_a_permissions_boundary_says_to_change_the_boundary() -> None:
    ref = parse_model_id(HAIKU, region="us-east-1")
    error, _ = fail("AccessDeniedException", implicit(INVOKE, ref.arn, "permissions boundary"))
    assert isinstance(error, errors.MissingPermissionError)
    assert error.policy_type == "permissions boundary"
    assert "permissions boundary" in error.fix


@pytest.mark.parametrize(
    ("policy", "policy_type", "owner"),
    [
        (
            "a service control policy: arn:aws:organizations::000000000000:policy/o-x/scp/p-1",
            "service control",
            "Organizations",
        ),
        ("an identity-based policy", "identity-based", ROLE),
        ("a permissions boundary", "permissions boundary", "permissions boundary"),
        ("a session policy", "session", "session"),
        ("a resource-based policy", "resource-based", "resource-based"),
    ],
)
def test_explicit_deny_names_the_policy_to_change_and_that_allows_will_not_help(
    policy: str, policy_type: str, owner: str
) -> None:
    ref = parse_model_id(HAIKU, region="us-east-1")
    message = (
        f"User: {ROLE} is not authorized to perform: {INVOKE} on resource: {ref.arn} "
        f"with an explicit deny in {policy}"
    )
    error, _ = fail("AccessDeniedException", message)
    assert isinstance(error, errors.ExplicitDenyError)
    assert error.policy_type == policy_type
    assert policy_type in error.fix
    assert owner in error.fix
    assert "Allow statements will not help" in error.fix
    if error.policy_arn:
        assert error.policy_arn in error.fix


def test_explicit_deny_on_an_inference_profile_mentions_the_regions_it_routes_to() -> None:
    message = (
        f"User: {ROLE} is not authorized to perform: {INVOKE_STREAM} on resource: "
        "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0 "
        "with an explicit deny in a service control policy"
    )
    error, _ = fail("AccessDeniedException", message, model_id=PROFILE, operation="ConverseStream")
    assert isinstance(error, errors.ExplicitDenyError)
    assert "inference profile" in error.fix


def test_a_profile_whose_routes_nobody_knows_still_gets_its_error_and_fix() -> None:
    ref = parse_model_id("xx.anthropic.claude-3-haiku-20240307-v1:0", region="us-east-1")
    error, _ = fail("AccessDeniedException", implicit(INVOKE, ref.arn), model_id=ref.raw)
    assert isinstance(error, errors.MissingPermissionError)
    assert error.suggested_policy is None  # rather than a guess at the regions it routes to
    assert f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{ref.raw} " in error.fix


def test_model_access_not_enabled_names_the_region_and_where_to_request_access() -> None:
    error, _ = fail(
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
        model_id="amazon.titan-text-express-v1",
        region="eu-central-1",
    )
    assert isinstance(error, errors.ModelAccessNotEnabledError)
    assert "Bedrock console > Model access in eu-central-1" in error.fix
    assert "region=eu-central-1" in error.fix
    assert "amazon.titan-text-express-v1" in error.fix
    assert "Anthropic" not in error.fix


def test_model_access_for_anthropic_points_at_the_use_case_form() -> None:
    error, _ = fail(
        "AccessDeniedException", "You don't have access to the model with the specified model ID."
    )
    assert isinstance(error, errors.ModelAccessNotEnabledError)
    assert "use-case details form" in error.fix
    assert "us-east-1" in error.fix


def test_use_case_form_not_submitted_says_to_submit_it_and_wait() -> None:
    error, _ = fail(
        "ResourceNotFoundException",
        "Model use case details have not been submitted for this account. Fill out the Anthropic use case "
        "details form before using the model.",
        status=404,
    )
    assert isinstance(error, errors.ModelAccessNotEnabledError)
    assert "use-case details form" in error.fix
    assert "15 minutes" in error.fix
    assert "Model access in us-east-1" in error.fix


@pytest.mark.parametrize(
    ("region", "suggested"),
    [
        ("us-east-1", "us."),
        ("us-west-2", "us."),
        ("eu-west-3", "eu."),
        ("ap-southeast-2", "apac."),
        ("us-gov-west-1", "us-gov."),
    ],
)
def test_inference_profile_required_suggests_the_profile_of_the_clients_region(
    region: str, suggested: str
) -> None:
    model = "anthropic.claude-3-7-sonnet-20250219-v1:0"
    message = (
        f"Invocation of model ID {model} with on-demand throughput isn\u2019t supported. Retry your request "
        f"with "
        "the ID or ARN of an inference profile that contains this model."
    )
    error, _ = fail("ValidationException", message, model_id=model, region=region, status=400)
    assert isinstance(error, errors.InferenceProfileRequiredError)
    assert error.suggested_model_id == suggested + model
    assert error.suggested_model_id in error.fix
    assert INVOKE in error.fix


def test_inference_profile_required_without_a_known_geography_says_how_to_list_profiles() -> None:
    assert suggested_profile_id("anthropic.claude-3-7-sonnet-20250219-v1:0", region="sa-east-1") is None
    model = "anthropic.claude-3-7-sonnet-20250219-v1:0"
    message = f"Invocation of model ID {model} with on-demand throughput isn't supported."
    error, _ = fail("ValidationException", message, model_id=model, region="sa-east-1", status=400)
    assert isinstance(error, errors.InferenceProfileRequiredError)
    assert error.suggested_model_id is None
    assert "list-inference-profiles --region sa-east-1" in error.fix


def test_suggested_profile_accepts_a_foundation_model_arn() -> None:
    arn = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-7-sonnet-20250219-v1:0"
    assert suggested_profile_id(arn, region="us-east-1") == "us.anthropic.claude-3-7-sonnet-20250219-v1:0"


def test_expired_and_invalid_credentials_get_different_fixes() -> None:
    expired, _ = fail("ExpiredTokenException", "The security token included in the request is expired")
    invalid, _ = fail("UnrecognizedClientException", "The security token included in the request is invalid.")
    assert isinstance(expired, errors.ExpiredCredentialsError)
    assert isinstance(invalid, errors.InvalidCredentialsError)
    assert not isinstance(invalid, errors.ExpiredCredentialsError)
    assert "Refresh" in expired.fix
    assert "aws sso login" in expired.fix
    assert "not recognised" in invalid.fix
    assert "aws partition" in invalid.fix


def test_clock_skew_is_told_apart_from_a_wrong_secret() -> None:
    skew, _ = fail(
        "InvalidSignatureException",
        "Signature expired: 20240101T000000Z is now earlier than 20240101T000500Z",
    )
    wrong, _ = fail(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided.",
    )
    assert "clock" in skew.fix
    assert "secret access key" in wrong.fix


def test_retired_model_says_to_move_to_an_active_model_in_the_region() -> None:
    error, _ = fail(
        "ResourceNotFoundException",
        "This model version has reached the end of its life. Please refer to the AWS documentation for "
        "more details.",
        model_id="anthropic.claude-v2",
        region="us-west-2",
        status=404,
    )
    assert isinstance(error, errors.ModelRetiredError)
    assert isinstance(error, errors.ModelNotFoundError)
    assert "end of life" in error.fix
    assert "us-west-2" in error.fix
    assert "ACTIVE" in error.fix


def test_model_not_found_points_at_listing_models_in_the_region() -> None:
    error, _ = fail("ValidationException", "The provided model identifier is invalid.", status=400)
    assert isinstance(error, errors.ModelNotFoundError)
    assert "list-foundation-models --region us-east-1" in error.fix


def test_quota_is_not_retryable_and_throttling_is() -> None:
    quota, _ = fail(
        "ServiceQuotaExceededException",
        "Your request exceeds the service quota for your account.",
        status=400,
    )
    daily, _ = fail(
        "ThrottlingException", "Too many tokens per day, please wait before trying again.", status=429
    )
    throttled, _ = fail(
        "ThrottlingException", "Too many requests, please wait before trying again.", status=429
    )
    assert isinstance(quota, errors.QuotaExceededError)
    assert isinstance(daily, errors.QuotaExceededError)
    assert isinstance(throttled, errors.ThrottlingError)
    assert not quota.retryable
    assert not daily.retryable
    assert throttled.retryable
    assert "Service Quotas" in quota.fix
    assert "tokens-per-day" in daily.fix
    assert "backoff" in throttled.fix


def test_marketplace_and_payment_fixes_name_what_to_change() -> None:
    marketplace, _ = fail(
        "AccessDeniedException",
        "Model access is denied due to IAM user or service role is not authorized to perform the required "
        "AWS "
        "Marketplace actions (aws-marketplace:ViewSubscriptions, aws-marketplace:Subscribe) to enable "
        "access to "
        "this model.",
    )
    payment, _ = fail(
        "AccessDeniedException",
        "Model access is denied due to INVALID_PAYMENT_INSTRUMENT:A valid payment instrument must be "
        "provided.",
    )
    assert isinstance(marketplace, errors.MarketplaceSubscriptionError)
    assert isinstance(payment, errors.MarketplaceSubscriptionError)
    assert "aws-marketplace:Subscribe" in marketplace.fix
    assert "Model access in us-east-1" in marketplace.fix
    assert "payment method" in payment.fix


def test_str_is_one_line_of_cause_and_fix() -> None:
    ref = parse_model_id(HAIKU, region="us-east-1")
    error, _ = fail("AccessDeniedException", implicit(INVOKE, ref.arn))
    text = str(error)
    assert "\n" not in text
    assert text.startswith("AccessDeniedException on InvokeModel for")
    assert "because no identity-based policy allows" in text
    assert text.endswith(" ".join(error.fix.split()))


def extra_fields(error: errors.BedrockServiceError) -> dict[str, Any]:
    return {
        name: getattr(error, name)
        for name in ("principal", "action", "resource", "policy_type", "policy_arn")
    }


def test_access_fields_are_none_when_the_message_names_nothing() -> None:
    error, _ = fail("AccessDeniedException", "Access denied.")
    assert type(error) is errors.AccessDeniedError
    assert extra_fields(error) == dict.fromkeys(
        ("principal", "action", "resource", "policy_type", "policy_arn")
    )
