"""The fix for each cause, in plain words and specific to the call: which action, which ARN, which region.

Sans-I/O: everything here is string building over what the message and the call context already say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from safe_bedrock._classify import Cause

if TYPE_CHECKING:
    from collections.abc import Callable

    from safe_bedrock._classify import Diagnosis

__all__ = ["FixFacts", "fix_for"]


@dataclass(frozen=True, slots=True)
class FixFacts:
    """What one failed call is about, gathered once by the translator."""

    diagnosis: Diagnosis
    operation: str
    region: str
    partition: str
    model: str | None  # what the caller passed
    model_arn: str | None
    action: str  # the IAM action the call needs (from the message when it names one)
    resources: tuple[str, ...]  # the ARNs a least-privilege policy for this call names
    route_regions: tuple[str, ...]  # for an inference profile: the regions it routes to ("" = any)
    is_profile: bool
    suggested_model_id: str | None
    events_received: int
    mid_stream: bool


def _subject(facts: FixFacts) -> str:
    if facts.model and facts.model_arn and facts.model != facts.model_arn:
        return f"{facts.model} ({facts.model_arn})"
    return facts.model or facts.model_arn or "this model"


def _resources(facts: FixFacts) -> str:
    named = facts.resources or ((facts.diagnosis.resource,) if facts.diagnosis.resource else ())
    return ", ".join(named) if named else "the model's ARN"


def _principal(facts: FixFacts) -> str:
    return facts.diagnosis.principal or "the calling role or user"


def _access_page(facts: FixFacts) -> str:
    where = f"Bedrock console > Model access in {facts.region}"
    if facts.partition == "aws" and facts.region:
        page = (
            f"https://{facts.region}.console.aws.amazon.com/bedrock/home?region={facts.region}#/modelaccess"
        )
        return f"{where} ({page})"
    return where


def _routes(facts: FixFacts) -> str:
    if not facts.is_profile or not facts.route_regions:
        return ""
    names = ", ".join(region or "any commercial region (global profile)" for region in facts.route_regions)
    return f" The inference profile routes to {names}; access must hold in each of them."


def _is_anthropic(facts: FixFacts) -> bool:
    return "anthropic" in f"{facts.model or ''} {facts.model_arn or ''}".lower()


def _missing_permission(facts: FixFacts) -> str:
    policy_type = facts.diagnosis.policy_type
    allow = f"Allow {facts.action} on {_resources(facts)}"
    if policy_type == "permissions boundary":
        where = f"Add {allow} to the permissions boundary attached to {_principal(facts)}"
    elif policy_type == "session":
        where = (
            f"The session policy passed when {_principal(facts)} was assumed must {allow.lower()}; "
            "start a new session with a session policy that includes it (or none)"
        )
    elif policy_type in ("service control", "resource control"):
        where = f"Ask your AWS Organizations administrator to {allow.lower()} in the {policy_type} policy"
    elif policy_type == "resource-based":
        where = f"Add {allow} for {_principal(facts)} to the resource-based policy of {_resources(facts)}"
    else:
        where = f"Attach an identity-based policy to {_principal(facts)} that grants {allow}"
    return f"{where} (least-privilege policy in .suggested_policy).{_routes(facts)}"


def _explicit_deny(facts: FixFacts) -> str:
    diagnosis = facts.diagnosis
    policy_type = diagnosis.policy_type or "some"
    named = f" {diagnosis.policy_arn}" if diagnosis.policy_arn else ""
    target = f"{diagnosis.action or facts.action} on {diagnosis.resource or _resources(facts)}"
    owner = {
        "service control": "your AWS Organizations administrator must change that SCP",
        "resource control": "your AWS Organizations administrator must change that RCP",
        "identity-based": f"remove or narrow that Deny in the policies attached to {_principal(facts)}",
        "permissions boundary": f"change the permissions boundary of {_principal(facts)}",
        "session": "start a new role session without that session policy",
        "resource-based": "change the resource-based policy on the resource",
        "VPC endpoint": "change the policy of the VPC endpoint the call goes through",
    }.get(policy_type, "find and change the Deny statement that matches")
    hint = ""
    if facts.is_profile:
        hint = (
            " A Deny limited to certain regions also blocks an inference profile that routes outside them;"
            " use a profile whose regions the policy allows."
        )
    return (
        f"A Deny in the {policy_type} policy{named} matches {target}; adding Allow statements will not help "
        f"because an explicit deny always wins: {owner}.{hint}"
    )


def _model_access(facts: FixFacts) -> str:
    text = (
        f"Enable access to {_subject(facts)} for this account in {_access_page(facts)}; "
        "access is granted per region."
    )
    if _is_anthropic(facts):
        text += " For Anthropic models also submit the use-case details form (same page) once per account."
    return text + _routes(facts)


def _use_case_form(facts: FixFacts) -> str:
    return (
        f"Submit the Anthropic use-case details form once for this account: {_access_page(facts)}, "
        f"open {_subject(facts)} and fill in the form; retry about 15 minutes after submitting."
    )


def _account_not_authorized(facts: FixFacts) -> str:
    return (
        f"This account is not authorized to use {_subject(facts)} in {facts.region}; "
        "open an AWS Support case, access cannot be granted from IAM."
    )


def _marketplace(facts: FixFacts) -> str:
    return (
        f"{_subject(facts)} is sold through AWS Marketplace: allow {_principal(facts)} "
        "aws-marketplace:ViewSubscriptions and aws-marketplace:Subscribe once (or have an administrator "
        f"enable the model in {_access_page(facts)}), then retry after a few minutes."
    )


def _payment(facts: FixFacts) -> str:
    return (
        "Add a valid payment method in the AWS Billing console (Payment preferences) for this account, "
        f"then retry {_subject(facts)} after a few minutes; IAM changes will not help."
    )


def _operation_not_allowed(facts: FixFacts) -> str:
    return (
        f"Bedrock refuses {facts.operation} for this whole account in {facts.region} ('Operation not "
        "allowed'), usually a new or unverified account: check the payment method in the Billing console "
        "and open an AWS Support case for Bedrock access; IAM changes will not help."
    )


def _geo(facts: FixFacts) -> str:
    return (
        f"The model provider's license does not allow {_subject(facts)} from the caller's location; "
        "call from a supported country or pick another model. IAM changes will not help."
    )


def _access_denied(facts: FixFacts) -> str:
    return (
        f"Check that {_principal(facts)} may call {facts.action} on {_resources(facts)} and that access to "
        f"{_subject(facts)} is enabled in {_access_page(facts)}."
    )


def _invalid_credentials(facts: FixFacts) -> str:
    return (
        "The credentials were not recognised: check which key the process uses (AWS_ACCESS_KEY_ID, "
        f"AWS_PROFILE, ~/.aws/credentials) and that it belongs to the {facts.partition} partition of "
        f"{facts.region}; create new access keys if they were deleted or deactivated."
    )


def _signature_mismatch(_facts: FixFacts) -> str:
    return (
        "The secret access key does not match the access key id (or a proxy altered the request): "
        "set the matching AWS_SECRET_ACCESS_KEY and do not modify signed requests."
    )


def _clock_skew(_facts: FixFacts) -> str:
    return "The system clock is off by more than 5 minutes; synchronise it (NTP) and retry."


def _missing_credentials(_facts: FixFacts) -> str:
    return (
        "The request was not signed with credentials: configure them (environment variables, AWS_PROFILE, "
        "or an instance/task role) before creating the client."
    )


def _expired(_facts: FixFacts) -> str:
    return (
        "Refresh the credentials: run `aws sso login` or re-assume the role to get a new session token; "
        "in long-running processes create the client from a profile or role so botocore refreshes them, "
        "not from a copied session token. Retrying with the same token will not help."
    )


def _model_not_found(facts: FixFacts) -> str:
    return (
        f"Bedrock in {facts.region} does not know {_subject(facts)}: check the spelling against "
        f"`aws bedrock list-foundation-models --region {facts.region}` (and `list-inference-profiles`), "
        "check the model is offered in this region, and that an inference profile's prefix "
        "(us., eu., apac., global.) fits the region."
    )


def _retired(facts: FixFacts) -> str:
    return (
        f"{_subject(facts)} is legacy or past its end of life in {facts.region}: move to an active model "
        f"(modelLifecycle ACTIVE in `aws bedrock list-foundation-models --region {facts.region}`)."
    )


def _profile_required(facts: FixFacts) -> str:
    if facts.suggested_model_id:
        use = f"call it through the inference profile modelId '{facts.suggested_model_id}'"
    else:
        use = (
            "call it through an inference profile id or ARN "
            f"(`aws bedrock list-inference-profiles --region {facts.region}`)"
        )
    return (
        f"{_subject(facts)} cannot be invoked on demand by its own id: {use}, and allow {facts.action} "
        "on the profile ARN plus the foundation-model ARN in every region the profile routes to. "
        "If no inference profile contains the model, it needs Provisioned Throughput."
    )


def _invalid_request(facts: FixFacts) -> str:
    return (
        f"Bedrock rejected the {facts.operation} request itself: correct the parameters or body named in "
        "the message (sending it again unchanged fails the same way)."
    )


def _unknown_operation(facts: FixFacts) -> str:
    return (
        f"The endpoint does not serve {facts.operation}: point the client at the bedrock-runtime endpoint "
        f"of {facts.region} (not the `bedrock` control plane; check endpoint_url) and use a botocore recent "
        "enough to know the operation."
    )


def _quota(facts: FixFacts) -> str:
    return (
        f"A service quota for {_subject(facts)} in {facts.region} is used up: request an increase in the "
        "Service Quotas console (Amazon Bedrock); retrying will not help until then."
    )


def _daily_quota(facts: FixFacts) -> str:
    return (
        f"The tokens-per-day quota for {_subject(facts)} in {facts.region} is used up: wait for the daily "
        "reset or request an increase in the Service Quotas console (Amazon Bedrock)."
    )


def _model_error(facts: FixFacts) -> str:
    return (
        f"{_subject(facts)} failed while processing the request: check the request body against the "
        "model's parameters; retry only if the message says the failure was temporary."
    )


def _throttling(facts: FixFacts) -> str:
    return (
        "Retry with backoff or lower the request and token rate; if it persists, request a higher "
        f"tokens- or requests-per-minute quota for {_subject(facts)} in {facts.region}, or use a "
        "cross-Region inference profile to spread the load."
    )


def _not_ready(facts: FixFacts) -> str:
    return f"{_subject(facts)} is still being loaded (common for imported models after idle); retry shortly."


def _timeout(facts: FixFacts) -> str:
    return (
        f"{_subject(facts)} took too long: retry, and for long answers lower max tokens or use the "
        "streaming operation."
    )


def _unavailable(facts: FixFacts) -> str:
    return f"Bedrock in {facts.region} is temporarily unavailable; retry with backoff."


def _internal(facts: FixFacts) -> str:
    return f"Bedrock in {facts.region} had an internal error; retry with backoff."


def _stream(facts: FixFacts) -> str:
    return (
        f"{_subject(facts)} failed after {facts.events_received} events of the stream; the answer so far is "
        "incomplete. Retry the whole request; a retry starts the answer again from the beginning."
    )


def _transient(facts: FixFacts) -> str:
    return f"Bedrock in {facts.region} could not serve the call right now; retry with backoff."


def _unknown(facts: FixFacts) -> str:
    return f"Read the message for {facts.operation} on {_subject(facts)} in {facts.region}."


_FIXES: dict[Cause, Callable[[FixFacts], str]] = {
    Cause.MISSING_PERMISSION: _missing_permission,
    Cause.EXPLICIT_DENY: _explicit_deny,
    Cause.MODEL_ACCESS: _model_access,
    Cause.USE_CASE_FORM: _use_case_form,
    Cause.ACCOUNT_NOT_AUTHORIZED: _account_not_authorized,
    Cause.MARKETPLACE_PERMISSION: _marketplace,
    Cause.PAYMENT_INSTRUMENT: _payment,
    Cause.OPERATION_NOT_ALLOWED: _operation_not_allowed,
    Cause.GEO_RESTRICTED: _geo,
    Cause.ACCESS_DENIED: _access_denied,
    Cause.INVALID_CREDENTIALS: _invalid_credentials,
    Cause.SIGNATURE_MISMATCH: _signature_mismatch,
    Cause.CLOCK_SKEW: _clock_skew,
    Cause.MISSING_CREDENTIALS: _missing_credentials,
    Cause.EXPIRED_CREDENTIALS: _expired,
    Cause.MODEL_NOT_FOUND: _model_not_found,
    Cause.MODEL_RETIRED: _retired,
    Cause.PROFILE_REQUIRED: _profile_required,
    Cause.INVALID_REQUEST: _invalid_request,
    Cause.UNKNOWN_OPERATION: _unknown_operation,
    Cause.QUOTA: _quota,
    Cause.DAILY_QUOTA: _daily_quota,
    Cause.MODEL_ERROR: _model_error,
    Cause.THROTTLING: _throttling,
    Cause.MODEL_NOT_READY: _not_ready,
    Cause.MODEL_TIMEOUT: _timeout,
    Cause.SERVICE_UNAVAILABLE: _unavailable,
    Cause.INTERNAL: _internal,
    Cause.MODEL_STREAM: _stream,
    Cause.TRANSIENT: _transient,
    Cause.UNKNOWN: _unknown,
}


def fix_for(facts: FixFacts) -> str:
    return _FIXES[facts.diagnosis.cause](facts)
