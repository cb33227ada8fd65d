"""The error messages Amazon Bedrock sends, as one table: (code, variant) -> message template.

The texts are the ones users meet in practice (collected from public bug reports and AWS documentation), so an
app's error handling can be tested against what it will really see. The fake renders them per request;
the error classification in `safe_bedrock._translate` reads the same table, so both stay in step.

Templates use `str.format` fields, filled from the request when the fake answers:
`{principal}` (caller ARN), `{action}` (IAM action of the operation), `{resource}` (ARN of the model),
`{model_id}` (as sent), `{region}`, `{account}`, `{policy_arn}`, `{detail}`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from safe_bedrock._service import modeled_statuses, stream_exceptions

__all__ = [
    "ERRORS",
    "ErrorMessage",
    "codes",
    "find",
    "http_status",
    "render",
    "stream_exception_name",
    "variants",
]


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    code: str  # the error code botocore reports, e.g. "AccessDeniedException"
    variant: str  # short name of the cause, unique per code; the first row of a code is its default
    template: str  # str.format template, see the module docstring for the fields
    cause: str  # one line for humans: when Bedrock sends this


_NOT_AUTHORIZED = "User: {principal} is not authorized to perform: {action} on resource: {resource}"
_RETRY_15 = " Your AWS Marketplace subscription for this model cannot be completed at this time. If you recently fixed this issue, try again after 15 minutes."  # noqa: E501
_UNEXPECTED = "The system encountered an unexpected error during processing. Try your request again."

ERRORS: tuple[ErrorMessage, ...] = (
    # --- AccessDeniedException (403) ------------------------------------------------------------------
    ErrorMessage(
        "AccessDeniedException",
        "implicit_deny",
        _NOT_AUTHORIZED + " because no identity-based policy allows the {action} action",
        "no statement in the caller's identity policies allows the action on this resource",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "explicit_deny_scp",
        _NOT_AUTHORIZED + " with an explicit deny in a service control policy",
        "an organization service control policy denies the action (often a region restriction)",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "explicit_deny_scp_arn",
        _NOT_AUTHORIZED + " with an explicit deny in a service control policy: {policy_arn}",
        "as explicit_deny_scp, in the newer form that names the policy",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "explicit_deny_identity",
        _NOT_AUTHORIZED + " with an explicit deny in an identity-based policy",
        "a Deny statement in the caller's identity policies matches",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "explicit_deny_session",
        _NOT_AUTHORIZED + " with an explicit deny in a session policy",
        "the session policy passed when assuming the role denies the action",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "explicit_deny_boundary",
        _NOT_AUTHORIZED + " with an explicit deny in a permissions boundary",
        "the role's permissions boundary denies the action",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "explicit_deny_rcp",
        _NOT_AUTHORIZED + " with an explicit deny in a resource control policy",
        "an organization resource control policy denies the action",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "implicit_deny_scp",
        _NOT_AUTHORIZED + " because no service control policy allows the {action} action",
        "the organization's service control policies allow-list does not include the action",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "implicit_deny_session",
        _NOT_AUTHORIZED + " because no session policy allows the {action} action",
        "the session policy passed when assuming the role does not allow the action",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "implicit_deny_boundary",
        _NOT_AUTHORIZED + " because no permissions boundary allows the {action} action",
        "the role's permissions boundary does not allow the action",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "model_access_not_enabled",
        "You don't have access to the model with the specified model ID.",
        "model access was not granted for this account in this region (or the id is in the wrong region)",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "use_case_form",
        "Model use case details have not been submitted for this account. Fill out the Anthropic use case"
        " details form before using the model. If you have already filled out the form, try again in 15"
        " minutes.",
        "Anthropic models need the one-time use case form before first use",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "marketplace_subscription",
        "Model access is denied due to IAM user or service role is not authorized to perform the required"
        " AWS Marketplace actions (aws-marketplace:ViewSubscriptions, aws-marketplace:Subscribe) to enable"
        " access to this model. Refer to the Amazon Bedrock documentation for further details." + _RETRY_15,
        "the first call of a Marketplace model needs aws-marketplace:Subscribe to create the subscription",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "marketplace_payment",
        "Model access is denied due to INVALID_PAYMENT_INSTRUMENT:A valid payment instrument must be"
        " provided.." + _RETRY_15,
        "the account has no valid payment method for a Marketplace model subscription",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "account_not_authorized",
        "Your account is not authorized to invoke this API operation.",
        "the account may not call this operation at all (new or restricted account)",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "invalid_token",
        "The security token included in the request is invalid.",
        "the credentials are wrong or belong to no account",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "expired_token",
        "The security token included in the request is expired",
        "temporary credentials ran out; refresh them",
    ),
    ErrorMessage(
        "AccessDeniedException",
        "invalid_api_key",
        "Authentication failed: Please make sure your API Key is valid.",
        "the Bedrock API key (bearer token) is wrong, revoked or expired",
    ),
    # --- credentials errors sent by the AWS front door, not in the service model --------------------
    ErrorMessage(
        "UnrecognizedClientException",
        "invalid_token",
        "The security token included in the request is invalid.",
        "the access key id is unknown",
    ),
    ErrorMessage(
        "ExpiredTokenException",
        "expired_token",
        "The security token included in the request is expired",
        "temporary credentials ran out; refresh them",
    ),
    ErrorMessage(
        "InvalidSignatureException",
        "bad_signature",
        "The request signature we calculated does not match the signature you provided. Check your AWS"
        " Secret Access Key and signing method. Consult the service documentation for details.",
        "the secret key does not match the access key, or the request was changed after signing",
    ),
    ErrorMessage(
        "UnknownOperationException",
        "unknown_operation",
        "The requested operation is not recognized by the service.",
        "no Bedrock runtime operation has this method and path",
    ),
    # --- ValidationException (400) --------------------------------------------------------------------
    ErrorMessage(
        "ValidationException",
        "invalid_request",
        "{detail}",
        "the request does not have the shape the operation or model expects",
    ),
    ErrorMessage(
        "ValidationException",
        "inference_profile_required",
        "Invocation of model ID {model_id} with on-demand throughput isn\u2019t supported. Retry your request"
        " with the ID or ARN of an inference profile that contains this model.",
        "the model is served only through an inference profile (e.g. us.<model id>)",
    ),
    ErrorMessage(
        "ValidationException",
        "invalid_model_id",
        "The provided model identifier is invalid.",
        "the model id is malformed or names no model",
    ),
    ErrorMessage(
        "ValidationException",
        "on_demand_not_supported",
        "The provided model doesn't support on-demand throughput.",
        "the model needs provisioned throughput",
    ),
    ErrorMessage(
        "ValidationException",
        "malformed_input",
        "Malformed input request: {detail}, please reformat your input and try again.",
        "the InvokeModel body does not match the model's request schema",
    ),
    ErrorMessage(
        "ValidationException",
        "input_too_long",
        "Input is too long for requested model.",
        "the prompt is longer than the model's context window",
    ),
    ErrorMessage(
        "ValidationException",
        "model_returned_errors",
        "The model returned the following errors: {detail}",
        "the provider's own validation refused the request",
    ),
    ErrorMessage(
        "ValidationException",
        "conversation_must_start_with_user",
        "A conversation must start with a user message. Try again with a conversation that starts with a"
        " user message.",
        "Converse messages must begin with a user turn",
    ),
    # --- ThrottlingException (429) --------------------------------------------------------------------
    ErrorMessage(
        "ThrottlingException",
        "too_many_requests",
        "Too many requests, please wait before trying again.",
        "requests per minute quota exceeded",
    ),
    ErrorMessage(
        "ThrottlingException",
        "too_many_tokens",
        "Too many tokens, please wait before trying again.",
        "tokens per minute quota exceeded",
    ),
    ErrorMessage(
        "ThrottlingException",
        "too_many_tokens_per_day",
        "Too many tokens per day, please wait before trying again.",
        "tokens per day quota exceeded",
    ),
    # --- the rest, one default each, extra variants where users meet them -----------------------------
    ErrorMessage(
        "ResourceNotFoundException",
        "model_not_found",
        "Could not resolve the foundation model from the provided model identifier.",
        "no model with this id exists in this region",
    ),
    ErrorMessage(
        "ResourceNotFoundException",
        "end_of_life",
        "This model version has reached the end of its life. Please refer to the AWS documentation for more"
        " details.",
        "the model was retired",
    ),
    ErrorMessage(
        "ResourceNotFoundException",
        "legacy",
        "Access denied. This Model is marked by provider as Legacy and you have not been actively using the"
        " model in the last 30 days. Please upgrade to an active model on Amazon Bedrock",
        "the model is legacy and this account has not used it recently",
    ),
    ErrorMessage(
        "ModelNotReadyException",
        "not_ready",
        "Model is not ready to serve inference requests. The model might be loading or being updated. Try"
        " your request again later.",
        "an imported or on-demand custom model is still being loaded",
    ),
    ErrorMessage(
        "ModelTimeoutException",
        "timeout",
        "Model has timed out in processing the request. Try your request again.",
        "the model took too long to answer",
    ),
    ErrorMessage(
        "ModelErrorException",
        "model_error",
        "The model encountered an error while processing the request. {detail}",
        "the model itself failed on this input",
    ),
    ErrorMessage("ModelStreamErrorException", "stream_error", _UNEXPECTED, "the model failed mid-stream"),
    ErrorMessage("InternalServerException", "internal", _UNEXPECTED, "an internal failure in Bedrock"),
    ErrorMessage(
        "ServiceUnavailableException",
        "unavailable",
        "Bedrock is unable to process your request.",
        "Bedrock is overloaded or the model has no capacity right now",
    ),
    ErrorMessage(
        "ServiceUnavailableException",
        "too_many_connections",
        "Too many connections, please wait before trying again.",
        "too many concurrent connections",
    ),
    ErrorMessage(
        "ServiceQuotaExceededException",
        "quota_exceeded",
        "Your request exceeds the service quota for your account. You can view your quotas at"
        " https://console.aws.amazon.com/servicequotas/. You can resubmit your request later.",
        "a service quota (not a rate) is exhausted",
    ),
    ErrorMessage(
        "ConflictException",
        "conflict",
        "The request could not be completed because of a conflict with the current state of the resource.",
        "a conflicting request (e.g. the same async invocation token) is in progress",
    ),
)

# Codes the AWS front door sends for every service (not in bedrock-runtime's model): status by hand.
_FRONT_DOOR_STATUS = {
    "UnrecognizedClientException": 403,
    "ExpiredTokenException": 403,
    "InvalidSignatureException": 403,
    "UnknownOperationException": 404,
}


def http_status(code: str) -> int:
    """HTTP status for an error code: from the service model's error shapes, else the AWS front door's."""
    return modeled_statuses().get(code) or _FRONT_DOOR_STATUS.get(code, 400)


def codes() -> tuple[str, ...]:
    """Every error code the fake can send: the service model's error shapes plus the front-door ones."""
    return tuple(sorted(set(modeled_statuses()) | set(_FRONT_DOOR_STATUS)))


def variants(code: str) -> tuple[str, ...]:
    return tuple(row.variant for row in ERRORS if row.code == code)


def find(code: str, variant: str | None = None) -> ErrorMessage:
    """The catalog row for code (and variant; default: the code's first row). ValueError says what exists."""
    valid = codes()
    if code not in valid:
        guesses = [guess for guess in (code[:1].upper() + code[1:], code + "Exception") if guess in valid]
        hint = f" (did you mean {guesses[0]!r}?)" if guesses else ""
        raise ValueError(f"{code!r} is not an error Bedrock sends{hint}; valid codes: {', '.join(valid)}")
    rows = [row for row in ERRORS if row.code == code]
    if variant is None:
        return rows[0] if rows else ErrorMessage(code, "default", code, "")
    for row in rows:
        if row.variant == variant:
            return row
    names = ", ".join(row.variant for row in rows) or "(none)"
    raise ValueError(f"{code} has no variant {variant!r}; valid variants: {names}")


def stream_exception_name(code: str) -> str:
    """The lowerCamel :exception-type of a mid-stream error given as "ThrottlingException" or member name."""
    table = stream_exceptions()
    if code in table:
        return code
    for member, shape_name in table.items():
        if shape_name == code:
            return member
    valid = ", ".join(f"{shape} ({member})" for member, shape in sorted(table.items()))
    raise ValueError(f"{code!r} cannot be sent mid-stream by Bedrock; valid mid-stream errors: {valid}")


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, **fields: str) -> str:
    """Fill a template; unknown or missing fields stay as written rather than failing."""
    return string.Formatter().vformat(template, (), _Defaults(fields))
