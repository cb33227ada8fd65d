"""The error messages Amazon Bedrock sends, as one table: (code, variant) -> message template.

The texts are the ones users meet in practice (collected from public bug reports and AWS documentation), so an
app's error handling can be tested against what it will really see. The fake renders them per request;
the tests of the error classification read the same table, so both stay in step.

Templates use `str.format` fields, filled from the request when the fake answers:
`{principal}` (caller ARN), `{action}` (IAM action of the operation), `{resource}` (ARN of the model),
`{model_id}` (as sent), `{region}`, `{account}`, `{policy_arn}`, `{detail}`.
"""

from __future__ import annotations

from dataclasses import dataclass

from safe_bedrock._service import modeled_statuses, stream_exceptions


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    code: str  # the error code botocore reports, e.g. "AccessDeniedException"
    variant: str  # short name of the cause, unique per code; the first row of a code is its default
    template: str  # str.format template, see the module docstring for the fields


_NOT_AUTHORIZED = "User: {principal} is not authorized to perform: {action} on resource: {resource}"
_NOT_ALLOWED = _NOT_AUTHORIZED + " because no "
_DENIED = _NOT_AUTHORIZED + " with an explicit deny in "
_RETRY_15 = " Your AWS Marketplace subscription for this model cannot be completed at this time. If you recently fixed this issue, try again after 15 minutes."  # noqa: E501
_UNEXPECTED = "The system encountered an unexpected error during processing. Try your request again."

# code -> {variant: template}, the first variant of a code its default; the front door's credentials codes
# are not in the service model.
_TABLE: dict[str, dict[str, str]] = {
    "AccessDeniedException": {
        "implicit_deny": _NOT_ALLOWED + "identity-based policy allows the {action} action",
        # often a region restriction
        "explicit_deny_scp": _DENIED + "a service control policy",
        "explicit_deny_scp_arn": _DENIED + "a service control policy: {policy_arn}",
        "explicit_deny_identity": _DENIED + "an identity-based policy",
        "explicit_deny_session": _DENIED + "a session policy",
        "explicit_deny_boundary": _DENIED + "a permissions boundary",
        "explicit_deny_rcp": _DENIED + "a resource control policy",
        "implicit_deny_scp": _NOT_ALLOWED + "service control policy allows the {action} action",
        "implicit_deny_session": _NOT_ALLOWED + "session policy allows the {action} action",
        "implicit_deny_boundary": _NOT_ALLOWED + "permissions boundary allows the {action} action",
        # or the id was sent to the wrong region
        "model_access_not_enabled": "You don't have access to the model with the specified model ID.",
        "use_case_form": (
            "Model use case details have not been submitted for this account. Fill out the Anthropic use "
            "case details form before using the model. If you have already filled out the form, try again in "
            "15 minutes."
        ),
        # a Marketplace model's first call creates the subscription: it needs aws-marketplace:Subscribe
        "marketplace_subscription": (
            "Model access is denied due to IAM user or service role is not authorized to perform the "
            "required AWS Marketplace actions (aws-marketplace:ViewSubscriptions, aws-marketplace:Subscribe) "
            "to enable access to this model. Refer to the Amazon Bedrock documentation for further details."
            + _RETRY_15
        ),
        "marketplace_payment": (
            "Model access is denied due to INVALID_PAYMENT_INSTRUMENT:A valid payment instrument must be "
            "provided.." + _RETRY_15
        ),
        "account_not_authorized": "Your account is not authorized to invoke this API operation.",
        "invalid_token": "The security token included in the request is invalid.",
        "expired_token": "The security token included in the request is expired",
        "invalid_api_key": "Authentication failed: Please make sure your API Key is valid.",
    },
    "UnrecognizedClientException": {
        "invalid_token": "The security token included in the request is invalid."
    },
    "ExpiredTokenException": {"expired_token": "The security token included in the request is expired"},
    "InvalidSignatureException": {
        "bad_signature": (
            "The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details."
        ),
    },
    "UnknownOperationException": {
        "unknown_operation": "The requested operation is not recognized by the service."
    },
    "ValidationException": {
        "invalid_request": "{detail}",
        "inference_profile_required": (
            "Invocation of model ID {model_id} with on-demand throughput isn\u2019t supported. Retry your "
            "request with the ID or ARN of an inference profile that contains this model."
        ),
        "invalid_model_id": "The provided model identifier is invalid.",
        "on_demand_not_supported": "The provided model doesn't support on-demand throughput.",
        "malformed_input": "Malformed input request: {detail}, please reformat your input and try again.",
        "input_too_long": "Input is too long for requested model.",
        "model_returned_errors": "The model returned the following errors: {detail}",
        "conversation_must_start_with_user": (
            "A conversation must start with a user message. Try again with a conversation that starts with a "
            "user message."
        ),
    },
    "ThrottlingException": {
        "too_many_requests": "Too many requests, please wait before trying again.",
        "too_many_tokens": "Too many tokens, please wait before trying again.",
        "too_many_tokens_per_day": "Too many tokens per day, please wait before trying again.",
    },
    "ResourceNotFoundException": {
        "model_not_found": "Could not resolve the foundation model from the provided model identifier.",
        "end_of_life": (
            "This model version has reached the end of its life. Please refer to the AWS documentation for "
            "more details."
        ),
        "legacy": (
            "Access denied. This Model is marked by provider as Legacy and you have not been actively using "
            "the model in the last 30 days. Please upgrade to an active model on Amazon Bedrock"
        ),
    },
    "ModelNotReadyException": {
        "not_ready": (
            "Model is not ready to serve inference requests. The model might be loading or being updated. "
            "Try your request again later."
        ),
    },
    "ModelTimeoutException": {
        "timeout": "Model has timed out in processing the request. Try your request again."
    },
    "ModelErrorException": {
        "model_error": "The model encountered an error while processing the request. {detail}"
    },
    "ModelStreamErrorException": {"stream_error": _UNEXPECTED},
    "InternalServerException": {"internal": _UNEXPECTED},
    "ServiceUnavailableException": {
        "unavailable": "Bedrock is unable to process your request.",
        "too_many_connections": "Too many connections, please wait before trying again.",
    },
    "ServiceQuotaExceededException": {
        "quota_exceeded": (
            "Your request exceeds the service quota for your account. You can view your quotas at "
            "https://console.aws.amazon.com/servicequotas/. You can resubmit your request later."
        ),
    },
    "ConflictException": {
        "conflict": (
            "The request could not be completed because of a conflict with the current state of the resource."
        ),
    },
}
ERRORS: tuple[ErrorMessage, ...] = tuple(
    ErrorMessage(code, variant, template)
    for code, rows in _TABLE.items()
    for variant, template in rows.items()
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


def find(code: str, variant: str | None = None) -> ErrorMessage:
    """The catalog row for code (and variant; default: the code's first row). ValueError says what exists."""
    valid = codes()
    if code not in valid:
        guesses = [guess for guess in (code[:1].upper() + code[1:], code + "Exception") if guess in valid]
        hint = f" (did you mean {guesses[0]!r}?)" if guesses else ""
        raise ValueError(f"{code!r} is not an error Bedrock sends{hint}; valid codes: {', '.join(valid)}")
    rows = _TABLE.get(code, {"default": code})
    variant = next(iter(rows)) if variant is None else variant
    if variant not in rows:
        raise ValueError(f"{code} has no variant {variant!r}; valid variants: {', '.join(rows)}")
    return ErrorMessage(code, variant, rows[variant])


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
    return template.format_map(_Defaults(fields))
