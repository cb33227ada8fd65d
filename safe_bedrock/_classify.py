"""Which cause a Bedrock error is, read from its code and message, and the one table of what follows from
each cause (sans-I/O).

Bedrock reuses a few codes for many causes (`AccessDeniedException` alone covers missing permissions,
explicit denies, model access, Marketplace subscriptions, ...), so the message decides where it names the
cause, the code otherwise, and the HTTP status only for codes nobody knows. Searches run over a bounded
prefix of the message, so a hostile or huge message costs linear time in that prefix at most.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from safe_bedrock import _fixes, errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from safe_bedrock._translate import CallContext


# AWS messages are short; anything past this is not needed to find the cause and only costs time.
MAX_MESSAGE_SCAN = 4096


@enum.unique
class Cause(enum.Enum):
    """Each reason a call fails: the typed error, the log category (`error_category` in the call's event),
    the fix builder (`_fixes`); retryable is what the class says (a TransientError)."""

    def __init__(
        self,
        error_class: type[errors.BedrockServiceError],
        category: str,
        fix: Callable[[CallContext, Diagnosis], str],
    ) -> None:
        self.error_class, self.category, self.fix = error_class, category, fix

    @property
    def retryable(self) -> bool:
        return issubclass(self.error_class, errors.TransientError)

    MISSING_PERMISSION = (errors.MissingPermissionError, "access", _fixes.missing_permission)
    EXPLICIT_DENY = (errors.ExplicitDenyError, "access", _fixes.explicit_deny)
    MODEL_ACCESS = (errors.ModelAccessNotEnabledError, "access", _fixes.model_access)
    USE_CASE_FORM = (errors.ModelAccessNotEnabledError, "access", _fixes.use_case_form)
    ACCOUNT_NOT_AUTHORIZED = (errors.ModelAccessNotEnabledError, "access", _fixes.account_not_authorized)
    MARKETPLACE_PERMISSION = (errors.MarketplaceSubscriptionError, "access", _fixes.marketplace)
    PAYMENT_INSTRUMENT = (errors.MarketplaceSubscriptionError, "access", _fixes.payment)
    OPERATION_NOT_ALLOWED = (errors.AccessDeniedError, "access", _fixes.operation_not_allowed)
    GEO_RESTRICTED = (errors.AccessDeniedError, "access", _fixes.geo)
    ACCESS_DENIED = (errors.AccessDeniedError, "access", _fixes.access_denied)
    INVALID_CREDENTIALS = (errors.InvalidCredentialsError, "access", _fixes.invalid_credentials)
    SIGNATURE_MISMATCH = (errors.InvalidCredentialsError, "access", _fixes.signature_mismatch)
    CLOCK_SKEW = (errors.InvalidCredentialsError, "access", _fixes.clock_skew)
    MISSING_CREDENTIALS = (errors.InvalidCredentialsError, "access", _fixes.missing_credentials)
    EXPIRED_CREDENTIALS = (errors.ExpiredCredentialsError, "access", _fixes.expired)
    MODEL_NOT_FOUND = (errors.ModelNotFoundError, "not_found", _fixes.model_not_found)
    MODEL_RETIRED = (errors.ModelRetiredError, "not_found", _fixes.retired)
    PROFILE_REQUIRED = (errors.InferenceProfileRequiredError, "invalid_request", _fixes.profile_required)
    INVALID_REQUEST = (errors.InvalidRequestError, "invalid_request", _fixes.invalid_request)
    UNKNOWN_OPERATION = (errors.InvalidRequestError, "invalid_request", _fixes.unknown_operation)
    QUOTA = (errors.QuotaExceededError, "quota", _fixes.quota)
    DAILY_QUOTA = (errors.QuotaExceededError, "quota", _fixes.daily_quota)
    MODEL_ERROR = (errors.ModelError, "model", _fixes.model_error)
    THROTTLING = (errors.ThrottlingError, "transient", _fixes.throttling)
    MODEL_NOT_READY = (errors.ModelNotReadyError, "transient", _fixes.not_ready)
    MODEL_TIMEOUT = (errors.ModelTimeoutError, "transient", _fixes.timeout)
    SERVICE_UNAVAILABLE = (errors.ServiceUnavailableError, "transient", _fixes.unavailable)
    INTERNAL = (errors.InternalServerError, "transient", _fixes.internal)
    MODEL_STREAM = (errors.ModelStreamError, "transient", _fixes.stream)
    TRANSIENT = (errors.TransientError, "transient", _fixes.transient)
    UNKNOWN = (errors.BedrockServiceError, "service", _fixes.unknown)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """What the code and message say: the cause, and whatever the message names."""

    cause: Cause
    principal: str | None = None
    action: str | None = None
    resource: str | None = None
    policy_type: str | None = None
    policy_arn: str | None = None
    model_in_message: str | None = None  # "Invocation of model ID <x> with on-demand throughput ..."

    @property
    def error_class(self) -> type[errors.BedrockServiceError]:
        return self.cause.error_class


# Codes decided by the code alone (a throttling code only asks whether the quota is per day). Keys are
# normalised (see normalize_code).
_BY_CODE: dict[str, Cause] = {
    **dict.fromkeys(
        (
            "throttling",
            "throttled",
            "toomanyrequests",
            "requestlimitexceeded",
            "slowdown",
            "ratelimitexceeded",
        ),
        Cause.THROTTLING,
    ),
    "servicequotaexceeded": Cause.QUOTA,
    "modelerror": Cause.MODEL_ERROR,
    "modelnotready": Cause.MODEL_NOT_READY,
    "modeltimeout": Cause.MODEL_TIMEOUT,
    "modelstreamerror": Cause.MODEL_STREAM,
    "serviceunavailable": Cause.SERVICE_UNAVAILABLE,
    **dict.fromkeys(("internalserver", "internalfailure", "internalerror"), Cause.INTERNAL),
    "expiredtoken": Cause.EXPIRED_CREDENTIALS,
    **dict.fromkeys(
        ("unrecognizedclient", "invalidclienttokenid", "invalidaccesskeyid"), Cause.INVALID_CREDENTIALS
    ),
    "signaturedoesnotmatch": Cause.SIGNATURE_MISMATCH,
    **dict.fromkeys(("missingauthenticationtoken", "incompletesignature"), Cause.MISSING_CREDENTIALS),
    "requestexpired": Cause.CLOCK_SKEW,
    "unknownoperation": Cause.UNKNOWN_OPERATION,
}

# Codes whose cause the message decides, with the cause used when no message pattern matches.
_BY_MESSAGE_DEFAULT: dict[str, Cause] = {
    "accessdenied": Cause.ACCESS_DENIED,
    "validation": Cause.INVALID_REQUEST,
    "resourcenotfound": Cause.MODEL_NOT_FOUND,
    "invalidsignature": Cause.SIGNATURE_MISMATCH,
    "notauthorized": Cause.ACCESS_DENIED,
    "unauthorized": Cause.ACCESS_DENIED,
    "forbidden": Cause.ACCESS_DENIED,
}

_FLAGS = re.IGNORECASE
_APOSTROPHE = "['\u2019]"  # AWS messages use both ' and the typographic apostrophe

# Message rules, most specific first; the first match is the cause.
_RULES: tuple[tuple[re.Pattern[str], Cause], ...] = tuple(
    (re.compile(pattern, _FLAGS), cause)
    for cause, pattern in {
        Cause.MODEL_RETIRED: (
            r"end of (?:its )?life|end-of-life|marked (?:by provider )?as legacy|legacy model"
        ),
        Cause.PROFILE_REQUIRED: (
            rf"on-demand throughput isn{_APOSTROPHE}t supported"
            rf"|doesn{_APOSTROPHE}t support on-demand throughput|does not support on-demand throughput"
            r"|id or arn of an inference profile"
        ),
        Cause.PAYMENT_INSTRUMENT: r"invalid_payment_instrument|valid payment instrument",
        Cause.MARKETPLACE_PERMISSION: r"aws-marketplace:|aws marketplace",
        Cause.USE_CASE_FORM: r"use case details|use case form|filled out the request form",
        Cause.EXPIRED_CREDENTIALS: (
            r"security token included in the request is expired|token (?:has )?expired"
            r"|credentials? (?:have|has) expired|expiredtoken"
        ),
        Cause.CLOCK_SKEW: r"signature expired|signature not yet current",
        Cause.SIGNATURE_MISMATCH: r"signature we calculated does not match",
        Cause.MISSING_CREDENTIALS: (
            r"missing authentication token|authorization header requires|request must contain"
        ),
        Cause.INVALID_CREDENTIALS: (
            r"security token included in the request is invalid|access key id you provided does not exist"
            r"|invalid security token|unrecognized ?client|api key is (?:not )?(?:valid|invalid)"
        ),
        Cause.EXPLICIT_DENY: r"with an explicit deny",
        Cause.MISSING_PERMISSION: r"not authorized to perform",
        Cause.MODEL_ACCESS: (
            rf"(?:don{_APOSTROPHE}t|do not) have access to the model"
            r"|not authorized to invoke this api operation"
            r"|model access (?:is )?(?:not enabled|denied|has not been granted)"
        ),
        Cause.ACCOUNT_NOT_AUTHORIZED: r"account is not authorized to access this model",
        Cause.GEO_RESTRICTED: r"not allowed from unsupported (?:countries|regions|locations)",
        Cause.OPERATION_NOT_ALLOWED: r"^\W*operation not allowed\W*$",
        Cause.UNKNOWN_OPERATION: r"operation is not recognized by the service",
        Cause.MODEL_NOT_FOUND: (
            r"model identifier is invalid|could not resolve the foundation model|model not found"
            r"|no such model|model (?:id )?(?:\S+ )?(?:does not exist|is not supported in this region)"
            r"|not available in this region|at 'modelid' failed to satisfy"
        ),
    }.items()
)

_PER_DAY = re.compile(r"per day|daily", _FLAGS)

# Fields an IAM denial names. AWS's documented form:
#   User: <principal> is not authorized to perform: <action> on resource: <resource>
#   (because no <type> policy allows the <action> action | with an explicit deny in a <type> policy[: <arn>])
_NOT_AUTHORIZED = re.compile(r"\s+is not authorized to perform:", _FLAGS)
_ACTION = re.compile(r"not authorized to perform:\s*([A-Za-z0-9-]+:[A-Za-z0-9*]+)", _FLAGS)
_RESOURCE = re.compile(r"\bon resource:?\s*([^\s]+)", _FLAGS)
_POLICY_TYPES = (
    r"identity-based policy|resource-based policy|service control policy|resource control policy"
    r"|session policy|permissions boundary(?: policy)?|vpc endpoint policy"
)
_EXPLICIT = re.compile(
    rf"with an explicit deny in (?:an?|the)\s+({_POLICY_TYPES})(?::\s*(arn:[^\s,;]+))?", _FLAGS
)
_IMPLICIT = re.compile(rf"because no\s+({_POLICY_TYPES})\s+allows", _FLAGS)
_MARKETPLACE_ACTION = re.compile(r"(aws-marketplace:[A-Za-z*]+)", _FLAGS)
_ON_DEMAND_MODEL = re.compile(r"invocation of model id\s+(\S+?)\s+with on-demand", _FLAGS)

_TRAILING = ".,;:)\"'"


def normalize_code(code: object) -> str:
    """`ThrottlingException`, `throttlingException`, `Throttling`, `x#ThrottlingException:http://...` all
    normalise to `throttling`."""
    text = code if isinstance(code, str) else ""
    text = text.strip()
    if "#" in text:
        text = text.rsplit("#", 1)[1]
    text = text.split(":", 1)[0].lower()
    if text.endswith("exception"):
        text = text[: -len("exception")]
    return text


def _clean(value: str | None) -> str | None:
    return (value or "").rstrip(_TRAILING) or None


def _policy_type(phrase: str) -> str:  # "vpc endpoint policy" -> "VPC endpoint"
    return phrase.lower().removesuffix(" policy").replace("vpc", "VPC")


def _cause(key: str, text: str, http_status: int | None) -> Cause:
    if _BY_CODE.get(key) is Cause.THROTTLING and _PER_DAY.search(text):
        # A per-day token quota does not come back with backoff; it is a quota, whatever the code says.
        return Cause.DAILY_QUOTA
    # The code alone, else the message (most specific rule first), else what the code usually means, else
    # the status: for codes nobody knows, 429 and 5xx are worth a retry.
    return (
        _BY_CODE.get(key)
        or next((cause for pattern, cause in _RULES if pattern.search(text)), None)
        or _BY_MESSAGE_DEFAULT.get(key)
        or (
            Cause.TRANSIENT
            if http_status is not None and (http_status == 429 or http_status >= 500)
            else None
        )
        or Cause.UNKNOWN
    )


def classify(code: object, message: object, *, http_status: int | None = None) -> Diagnosis:
    """The cause of a Bedrock error and the fields its message names; never raises."""
    key = normalize_code(code)
    text = message[:MAX_MESSAGE_SCAN] if isinstance(message, str) else ""
    if http_status is None and key.isascii() and key.isdigit():  # not "²", which int() refuses
        # botocore uses the status as the code when the service sent none.
        http_status = int(key)
    cause = _cause(key, text, http_status)
    if issubclass(cause.error_class, errors.AccessDeniedError):
        return _access_diagnosis(cause, text)
    on_demand = _ON_DEMAND_MODEL.search(text) if cause is Cause.PROFILE_REQUIRED else None
    return Diagnosis(cause, model_in_message=_clean(on_demand.group(1)) if on_demand else None)


def _access_diagnosis(cause: Cause, text: str) -> Diagnosis:
    # The principal is the word before "is not authorized"; found by hand because a regex for "the token
    # before X" backtracks quadratically on long unbroken text.
    denied = _NOT_AUTHORIZED.search(text)
    before = text[: denied.start()].split() if denied else []
    principal = before[-1] if before else None
    action = _ACTION.search(text) or _MARKETPLACE_ACTION.search(text)
    resource = _RESOURCE.search(text)
    policy = _EXPLICIT.search(text) or _IMPLICIT.search(text)
    return Diagnosis(
        cause=cause,
        principal=_clean(principal),
        action=_clean(action.group(1)) if action else None,
        resource=_clean(resource.group(1)) if resource else None,
        policy_type=_policy_type(policy.group(1)) if policy else None,
        policy_arn=_clean(policy.group(2)) if policy and policy.re is _EXPLICIT else None,
    )
