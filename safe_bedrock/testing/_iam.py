"""IAM enforcement for the fake Bedrock: identity-based policy evaluation with AWS's denial messages.

The fake evaluates one identity-based policy for one principal, the way IAM does for a single policy:
an explicit Deny wins, otherwise an Allow must match, otherwise the call is implicitly denied. The
decision itself is `PolicyDocument.evaluate` (shared with the allowlist); this module picks the action
and the resource ARN(s) a request needs and words the AccessDeniedException exactly as AWS does, so the
code under test sees the real message shape.

Cross-region inference profiles are checked strictly: the profile ARN and the foundation-model ARN in
every region the profile may route to must be allowed (with the bedrock:InferenceProfileArn condition
key set to the profile, as IAM does). AWS checks the destination region actually chosen, which varies
per call; checking every route means a policy that passes the fake cannot fail in production because of
routing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from safe_bedrock._ids import ModelKind, parse_model_id, profile_routes
from safe_bedrock._policy import PolicyError
from safe_bedrock._service import action_for
from safe_bedrock.errors import InvalidModelIdError
from safe_bedrock.testing import _messages as _catalog
from safe_bedrock.testing._wire import DEFAULT_ACCOUNT, DEFAULT_PRINCIPAL

if TYPE_CHECKING:
    from collections.abc import Mapping

    from safe_bedrock._policy import PolicyDocument
    from safe_bedrock.testing._wire import FakeRequest

__all__ = [
    "DEFAULT_PRINCIPAL",
    "Denial",
    "check",
    "decide",
    "validate_policy_arn",
    "validate_principal",
]

# Principals are IAM or STS identities: arn:<partition>:iam|sts::<account>:<name>.
_PRINCIPAL = re.compile(r"^arn:(?P<partition>aws[a-z-]*):(?:iam|sts)::(?P<account>\d{12}):\S+$")
_POLICY_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(?:\d{12}|aws):policy/\S+$")


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a request is refused: the action and resource IAM checked, and AWS's message for it."""

    action: str
    resource: str
    explicit: bool
    matched_sid: str | None
    message: str


def validate_principal(principal: str) -> None:
    """Raise `PolicyError` unless `principal` is an IAM or STS principal ARN (it is named in denials)."""
    if _PRINCIPAL.match(principal) is None:
        raise PolicyError(
            f"set_policy(): principal {principal!r} is not an IAM/STS principal ARN; pass one like "
            f"{DEFAULT_PRINCIPAL!r}"
        )


def validate_policy_arn(policy_arn: str) -> None:
    """Raise `PolicyError` unless `policy_arn` is an IAM policy ARN (named in explicit-deny messages)."""
    if _POLICY_ARN.match(policy_arn) is None:
        raise PolicyError(
            f"set_policy(): policy_arn {policy_arn!r} is not an IAM policy ARN; pass one like "
            "'arn:aws:iam::123456789012:policy/BedrockApp' or None"
        )


def _scope(principal: str) -> tuple[str, str]:
    # The principal's partition and account are where account-scoped resources (profiles, guardrails) live.
    match = _PRINCIPAL.match(principal)
    if match is None:
        return "aws", DEFAULT_ACCOUNT
    return match["partition"], match["account"]


def _checks(
    *, principal: str, model_id: str | None, path_params: Mapping[str, str], region: str
) -> tuple[tuple[str, str | None], ...] | None:
    """(resource ARN, bedrock:InferenceProfileArn context) pairs IAM evaluates for the request."""
    partition, account = _scope(principal)
    if model_id is not None:
        try:
            ref = parse_model_id(model_id, region=region, partition=partition, account=account)
        except InvalidModelIdError:
            return None  # not a model IAM could name: the service answers it (ValidationException)
        if ref.kind is ModelKind.INFERENCE_PROFILE:
            try:
                routes = profile_routes(ref)
            except LookupError:
                routes = ()  # a geography nobody knows the destinations of: the profile ARN alone
            return tuple((arn, ref.arn) for arn in (ref.arn, *routes))
        return ((ref.arn, None),)
    guardrail = path_params.get("guardrailIdentifier")
    if guardrail is not None:
        if not guardrail.startswith("arn:"):
            guardrail = f"arn:{partition}:bedrock:{region}:{account}:guardrail/{guardrail}"
        return ((guardrail, None),)
    return (("*", None),)


def decide(
    document: PolicyDocument,
    *,
    principal: str = DEFAULT_PRINCIPAL,
    operation: str,
    model_id: str | None,
    path_params: Mapping[str, str] | None = None,
    region: str,
    policy_arn: str | None = None,
) -> Denial | None:
    """None when the policy allows the call, else the first refused resource with AWS's message."""
    checks = _checks(principal=principal, model_id=model_id, path_params=path_params or {}, region=region)
    if checks is None:
        return None
    action = action_for(operation)
    for resource, through_profile in checks:
        verdict = document.evaluate(action=action, resource=resource, inference_profile_arn=through_profile)
        if verdict.allowed:
            continue
        variant = "explicit_deny_identity" if verdict.explicit_deny else "implicit_deny"
        template = _catalog.find("AccessDeniedException", variant).template
        message = _catalog.render(template, principal=principal, action=action, resource=resource)
        if verdict.explicit_deny and policy_arn is not None:
            message += f": {policy_arn}"
        return Denial(
            action=action,
            resource=resource,
            explicit=verdict.explicit_deny,
            matched_sid=verdict.matched_sid,
            message=message,
        )
    return None


def check(
    policy: PolicyDocument, *, principal: str, request: FakeRequest, policy_arn: str | None = None
) -> str | None:
    """The seam `FakeBedrockCore.handle` calls: None when allowed, else the AccessDeniedException message."""
    denial = decide(
        policy,
        principal=principal,
        operation=request.operation,
        model_id=request.model_id,
        path_params=request.path_params,
        region=request.region,
        policy_arn=policy_arn,
    )
    return None if denial is None else denial.message
