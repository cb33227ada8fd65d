"""The fix for each cause, in plain words and specific to the call: which action, which ARN, which region.

Sans-I/O: string building over what the call (`CallContext`) and the message (`Diagnosis`) already say. Each
builder is named by its cause in the cause table (`_classify.Cause`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from safe_bedrock._catalog import load
from safe_bedrock._ids import ModelKind, geographies, profile_routes
from safe_bedrock._retry import max_attempts
from safe_bedrock._service import action_for, partition_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from safe_bedrock._classify import Diagnosis
    from safe_bedrock._retry import RetryConfig
    from safe_bedrock._translate import CallContext


# Of a model's profiles that serve the calling region, the one suggested: the narrowest geography first.
_PREFERENCE = ("us-gov", "us", "eu", "apac", "jp", "au", "global")


def suggested_profile_id(model: str, *, region: str) -> str | None:
    """`anthropic.claude-3-7-sonnet-20250219-v1:0` from us-east-1 -> `us.anthropic.claude-3-7-sonnet-...`.

    A profile the model catalog lists for this region; for a model it lists no profile of (newer or older
    than the snapshot), the geography that routes from the region. Else None: the fix says how to list them.
    """
    base = model.rsplit("/", 1)[-1]  # a foundation-model ARN ends with the model id
    if "." not in base:
        return None
    serving = {p.geography for p in load().profiles_of(base) if region in p.regions}
    if not serving:
        serving = {geo for geo, routes in geographies().items() if region in routes}
    ranked = [geo for geo in _PREFERENCE if geo in serving]
    return f"{ranked[0]}.{base}" if ranked else None


def suggested_model_id(call: CallContext, why: Diagnosis) -> str | None:
    """The inference profile to call instead of a model that cannot be invoked on demand."""
    base = why.model_in_message or (call.ref.resource_id if call.ref else None) or call.model_id
    return suggested_profile_id(base, region=call.region) if base else None


def needed_action(call: CallContext, why: Diagnosis) -> str:
    """The IAM action the call needs: the one the denial names, else the operation's."""
    if why.action and why.action.startswith("bedrock:"):
        return why.action
    return action_for(call.operation)


def _model(call: CallContext, why: Diagnosis) -> str | None:
    return call.model_id or (call.ref.raw if call.ref else None) or why.model_in_message


def _is_anthropic(call: CallContext, why: Diagnosis) -> bool:
    return "anthropic" in f"{_model(call, why) or ''} {call.model_arn or ''}".lower()


def _subject(call: CallContext, why: Diagnosis) -> str:
    model = _model(call, why)
    if model and call.model_arn and model != call.model_arn:
        return f"{model} ({call.model_arn})"
    return model or call.model_arn or "this model"


def _is_profile(call: CallContext) -> bool:
    return call.ref is not None and call.ref.kind is ModelKind.INFERENCE_PROFILE


def _partition(call: CallContext) -> str:
    return call.ref.partition if call.ref else partition_of(call.region)


def _routed(call: CallContext) -> tuple[str, ...]:
    if call.ref is None or not _is_profile(call):
        return ()
    try:
        return profile_routes(call.ref)
    except LookupError:  # a geography nobody knows: the fix names the profile alone
        return ()


def _resources(call: CallContext, why: Diagnosis) -> str:
    named = (call.ref.arn, *_routed(call)) if call.ref else ((why.resource,) if why.resource else ())
    return ", ".join(named) if named else "the model's ARN"


def _principal(why: Diagnosis) -> str:
    return why.principal or "the calling role or user"


def _access_page(call: CallContext) -> str:
    region = call.region
    where = f"Bedrock console > Model access in {region}"
    if _partition(call) == "aws" and region:
        page = f"https://{region}.console.aws.amazon.com/bedrock/home?region={region}#/modelaccess"
        return f"{where} ({page})"
    return where


def _routes(call: CallContext) -> str:
    regions = dict.fromkeys(arn.split(":")[3] for arn in _routed(call) if arn.count(":") >= 3)
    if not regions:
        return ""
    names = ", ".join(region or "any commercial region (global profile)" for region in regions)
    return f" The inference profile routes to {names}; access must hold in each of them."


def missing_permission(call: CallContext, why: Diagnosis) -> str:
    policy_type = why.policy_type
    allow = f"Allow {needed_action(call, why)} on {_resources(call, why)}"
    if policy_type == "permissions boundary":
        where = f"Add {allow} to the permissions boundary attached to {_principal(why)}"
    elif policy_type == "session":
        where = (
            f"The session policy passed when {_principal(why)} was assumed must {allow.lower()}; "
            "start a new session with a session policy that includes it (or none)"
        )
    elif policy_type in ("service control", "resource control"):
        where = f"Ask your AWS Organizations administrator to {allow.lower()} in the {policy_type} policy"
    elif policy_type == "resource-based":
        where = f"Add {allow} for {_principal(why)} to the resource-based policy of {_resources(call, why)}"
    else:
        where = f"Attach an identity-based policy to {_principal(why)} that grants {allow}"
    return f"{where} (least-privilege policy in .suggested_policy).{_routes(call)}"


def explicit_deny(call: CallContext, why: Diagnosis) -> str:
    policy_type = why.policy_type or "some"
    named = f" {why.policy_arn}" if why.policy_arn else ""
    target = f"{why.action or needed_action(call, why)} on {why.resource or _resources(call, why)}"
    owner = {
        "service control": "your AWS Organizations administrator must change that SCP",
        "resource control": "your AWS Organizations administrator must change that RCP",
        "identity-based": f"remove or narrow that Deny in the policies attached to {_principal(why)}",
        "permissions boundary": f"change the permissions boundary of {_principal(why)}",
        "session": "start a new role session without that session policy",
        "resource-based": "change the resource-based policy on the resource",
        "VPC endpoint": "change the policy of the VPC endpoint the call goes through",
    }.get(policy_type, "find and change the Deny statement that matches")
    hint = ""
    if _is_profile(call):
        hint = (
            " A Deny limited to certain regions also blocks an inference profile that routes outside them;"
            " use a profile whose regions the policy allows."
        )
    return (
        f"A Deny in the {policy_type} policy{named} matches {target}; adding Allow statements will not help "
        f"because an explicit deny always wins: {owner}.{hint}"
    )


def model_access(call: CallContext, why: Diagnosis) -> str:
    text = (
        f"Enable access to {_subject(call, why)} for this account in {_access_page(call)}; "
        "access is granted per region."
    )
    if _is_anthropic(call, why):
        text += " For Anthropic models also submit the use-case details form (same page) once per account."
    return text + _routes(call)


def profile_required(call: CallContext, why: Diagnosis) -> str:
    suggested = suggested_model_id(call, why)
    if suggested:
        use = f"call it through the inference profile modelId '{suggested}'"
    else:
        use = (
            "call it through an inference profile id or ARN "
            f"(`aws bedrock list-inference-profiles --region {call.region}`)"
        )
    return (
        f"{_subject(call, why)} cannot be invoked on demand by its own id: {use}, and allow "
        f"{needed_action(call, why)} on the profile ARN plus the foundation-model ARN in every region the "
        "profile routes to. If no inference profile contains the model, it needs Provisioned Throughput."
    )


def throttling(call: CallContext, why: Diagnosis) -> str:
    advice = "Lower" if call.attempts else "Retry with backoff or lower"
    return (
        f"{advice} the request and token rate; if it persists, request a higher "
        f"tokens- or requests-per-minute quota for {_subject(call, why)} in {call.region}, or use a "
        "cross-Region inference profile to spread the load."
    )


def not_ready(call: CallContext, why: Diagnosis) -> str:
    again = "" if call.attempts else "; retry shortly"
    return f"{_subject(call, why)} is still being loaded (common for imported models after idle){again}."


def _facts(call: CallContext, why: Diagnosis) -> dict[str, object]:
    return {
        "subject": _subject(call, why),
        "region": call.region,
        "operation": call.operation,
        "principal": _principal(why),
        "action": needed_action(call, why),
        "resources": _resources(call, why),
        "access_page": _access_page(call),
        "partition": _partition(call),
        # A client already retried under its RetryConfig, and says so in front of the fix (`retry_fix`).
        "retry": "" if call.attempts else "retry with backoff; ",
        "events": call.events_received,
    }


def _say(template: str) -> Callable[[CallContext, Diagnosis], str]:
    return lambda call, why: template.format(**_facts(call, why))


use_case_form = _say(
    "Submit the Anthropic use-case details form once for this account: {access_page}, open {subject} and "
    "fill in the form; retry about 15 minutes after submitting."
)

account_not_authorized = _say(
    "This account is not authorized to use {subject} in {region}; open an AWS Support case, access "
    "cannot be granted from IAM."
)

marketplace = _say(
    "{subject} is sold through AWS Marketplace: allow {principal} aws-marketplace:ViewSubscriptions and "
    "aws-marketplace:Subscribe once (or have an administrator enable the model in {access_page}), then "
    "retry after a few minutes."
)

payment = _say(
    "Add a valid payment method in the AWS Billing console (Payment preferences) for this account, then "
    "retry {subject} after a few minutes; IAM changes will not help."
)

operation_not_allowed = _say(
    "Bedrock refuses {operation} for this whole account in {region} ('Operation not allowed'), usually a "
    "new or unverified account: check the payment method in the Billing console and open an AWS Support "
    "case for Bedrock access; IAM changes will not help."
)

geo = _say(
    "The model provider's license does not allow {subject} from the caller's location; call from a "
    "supported country or pick another model. IAM changes will not help."
)

access_denied = _say(
    "Check that {principal} may call {action} on {resources} and that access to {subject} is enabled in "
    "{access_page}."
)

invalid_credentials = _say(
    "The credentials were not recognised: check which key the process uses (AWS_ACCESS_KEY_ID, "
    "AWS_PROFILE, ~/.aws/credentials) and that it belongs to the {partition} partition of {region}; "
    "create new access keys if they were deleted or deactivated."
)

signature_mismatch = _say(
    "The secret access key does not match the access key id (or a proxy altered the request): set the "
    "matching AWS_SECRET_ACCESS_KEY and do not modify signed requests."
)

clock_skew = _say("The system clock is off by more than 5 minutes; synchronise it (NTP) and retry.")

missing_credentials = _say(
    "The request was not signed with credentials: configure them (environment variables, AWS_PROFILE, or "
    "an instance/task role) before creating the client."
)

expired = _say(
    "Refresh the credentials: run `aws sso login` or re-assume the role to get a new session token; in "
    "long-running processes create the client from a profile or role so botocore refreshes them, not "
    "from a copied session token. Retrying with the same token will not help."
)

model_not_found = _say(
    "Bedrock in {region} does not know {subject}: check the spelling against `aws bedrock "
    "list-foundation-models --region {region}` (and `list-inference-profiles`), check the model is "
    "offered in this region, and that an inference profile's prefix (us., eu., apac., global.) fits the "
    "region."
)

retired = _say(
    "{subject} is legacy or past its end of life in {region}: move to an active model (modelLifecycle "
    "ACTIVE in `aws bedrock list-foundation-models --region {region}`)."
)

invalid_request = _say(
    "Bedrock rejected the {operation} request itself: correct the parameters or body named in the "
    "message (sending it again unchanged fails the same way)."
)

unknown_operation = _say(
    "The endpoint does not serve {operation}: point the client at the bedrock-runtime endpoint of "
    "{region} (not the `bedrock` control plane; check endpoint_url) and use a botocore recent enough to "
    "know the operation."
)

quota = _say(
    "A service quota for {subject} in {region} is used up: request an increase in the Service Quotas "
    "console (Amazon Bedrock); retrying will not help until then."
)

daily_quota = _say(
    "The tokens-per-day quota for {subject} in {region} is used up: wait for the daily reset or request "
    "an increase in the Service Quotas console (Amazon Bedrock)."
)

model_error = _say(
    "{subject} failed while processing the request: check the request body against the model's "
    "parameters; retry only if the message says the failure was temporary."
)

timeout = _say(
    "{subject} took too long: {retry}for long answers lower max tokens or use the streaming operation."
)

unavailable = _say(
    "Bedrock in {region} is temporarily unavailable; {retry}check the AWS Health Dashboard if it persists."
)

internal = _say("Bedrock in {region} had an internal error; {retry}report it to AWS Support if it persists.")

stream = _say(
    "{subject} failed after {events} events of the stream; the answer so far is incomplete. Retry the "
    "whole request; a retry starts the answer again from the beginning."
)

transient = _say("Bedrock in {region} could not serve the call right now; {retry}try again later.")

unknown = _say("Read the message for {operation} on {subject} in {region}.")


def credentials(problem: str, *, endpoint_url: str | None, local: bool) -> str:
    """How to provide credentials; for a local endpoint (a fake), that any dummy keys do."""
    ways = (
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary keys), or "
        "AWS_PROFILE naming a profile in ~/.aws/credentials or ~/.aws/config, or run `aws sso login "
        "--profile <name>` for an SSO profile, or run where an instance, task or pod role provides them"
    )
    if problem == "sso":
        ways = (
            f"run `aws sso login` (with the profile the process uses) to refresh the SSO session, or {ways}"
        )
    elif problem == "refresh":
        ways = f"refresh the credentials at their source (its login or credential_process), or {ways}"
    if local:
        return (
            f"{endpoint_url} is a local endpoint (a fake such as `safe-bedrock fake-server`), where any "
            "dummy keys work: AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test (or "
            "aws_access_key_id='test', aws_secret_access_key='test' on the boto3 Session). "
            f"For real AWS, {ways}."
        )
    return f"Provide credentials before creating the client: {ways}."


def retry_fix(config: RetryConfig, *, attempts: int, elapsed_s: float) -> str:
    """The sentence that says how a retryable error was retried, and which `RetryConfig` setting to change."""
    timeout = config._durations[0]
    limit = max_attempts(config)
    if limit == 1:
        return (
            "Retries are off for this client (RetryConfig.attempts=1): pass retry=RetryConfig(attempts=3) "
            "to retry with backoff."
        )
    tries = f"safe-bedrock tried {attempts} times over {elapsed_s:.1f} s"
    if attempts < limit:
        return (
            f"{tries} and stopped at RetryConfig.timeout={timeout:g} s: raise `timeout` (and `attempts`) "
            "in the client's retry=RetryConfig(...) to keep trying longer."
        )
    return (
        f"{tries}, its limit (RetryConfig.attempts={limit}): raise `attempts` (and `timeout`, "
        f"now {timeout:g} s) in the client's retry=RetryConfig(...) to keep trying longer."
    )
