"""IAM enforcement for the fake Bedrock: one identity-based policy (`PolicyDocument.evaluate`), AWS's denials.

Cross-region inference profiles are checked strictly: the profile ARN and the foundation-model ARN in every
region the profile may route to must be allowed (with bedrock:InferenceProfileArn set to the profile, as IAM
does). AWS checks the destination region actually chosen, which varies per call; checking every route means
a policy that passes the fake cannot fail in production because of routing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from safe_bedrock._ids import ModelKind, parse_model_id, profile_routes
from safe_bedrock._policy import PolicyError
from safe_bedrock._service import action_for
from safe_bedrock.errors import InvalidModelIdError
from safe_bedrock.testing import _messages
from safe_bedrock.testing._wire import DEFAULT_PRINCIPAL

if TYPE_CHECKING:
    from collections.abc import Mapping

    from safe_bedrock._policy import PolicyDocument


# Principals are IAM or STS identities: arn:<partition>:iam|sts::<account>:<name>.
_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:(?:iam|sts)::\d{12}:\S+$")


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


def _checks(
    *, principal: str, model_id: str | None, path_params: Mapping[str, str], region: str
) -> tuple[tuple[str, str | None], ...]:
    """(resource ARN, bedrock:InferenceProfileArn context) pairs IAM evaluates for the request."""
    # The principal (checked by validate_principal) names the partition and account where account-scoped
    # resources (profiles, guardrails) live.
    _, partition, _, _, account, _ = principal.split(":", 5)
    if model_id is not None:
        try:
            ref = parse_model_id(model_id, region=region, partition=partition, account=account)
        except InvalidModelIdError:
            return ()  # not a model IAM could name: the service answers it (ValidationException)
        if ref.kind is ModelKind.INFERENCE_PROFILE:
            try:
                routes = profile_routes(ref)
            except LookupError:
                routes = ()  # a geography nobody knows the destinations of: the profile ARN alone
            return tuple((arn, ref.arn) for arn in (ref.arn, *routes))
        return ((ref.arn, None),)
    guardrail = path_params.get("guardrailIdentifier")
    if guardrail is None:
        return (("*", None),)
    if not guardrail.startswith("arn:"):
        guardrail = f"arn:{partition}:bedrock:{region}:{account}:guardrail/{guardrail}"
    return ((guardrail, None),)


def decide(
    document: PolicyDocument,
    *,
    principal: str = DEFAULT_PRINCIPAL,
    operation: str,
    model_id: str | None,
    path_params: Mapping[str, str] | None = None,
    region: str,
) -> Denial | None:
    """None when the policy allows the call, else the first refused resource with AWS's message."""
    action = action_for(operation)
    checks = _checks(principal=principal, model_id=model_id, path_params=path_params or {}, region=region)
    for resource, through_profile in checks:
        verdict = document.evaluate(action=action, resource=resource, inference_profile_arn=through_profile)
        if not verdict.allowed:
            variant = "explicit_deny_identity" if verdict.explicit_deny else "implicit_deny"
            template = _messages.find("AccessDeniedException", variant).template
            message = _messages.render(template, principal=principal, action=action, resource=resource)
            return Denial(action, resource, verdict.explicit_deny, verdict.matched_sid, message)
    return None
