"""IAM enforcement decisions of the fake: which action and ARN a call needs, and AWS's exact messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safe_bedrock._ids import parse_model_id
from safe_bedrock._policy import PolicyDocument, PolicyError, least_privilege_policy
from safe_bedrock.testing._iam import DEFAULT_PRINCIPAL, decide, validate_principal

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
HAIKU_ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"
TITAN_ARN = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-express-v1"
INVOKE = "bedrock:InvokeModel"
STREAM = "bedrock:InvokeModelWithResponseStream"


def policy(*statements: dict[str, object]) -> PolicyDocument:
    return PolicyDocument.from_json({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: object, resource: object, **extra: object) -> dict[str, object]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_allowed_call_gives_no_denial() -> None:
    doc = policy(allow(INVOKE, HAIKU_ARN))
    assert decide(doc, operation="InvokeModel", model_id=HAIKU, region="us-east-1") is None


def test_implicit_deny_message_is_aws_shape() -> None:
    doc = policy(allow(INVOKE, TITAN_ARN))
    denial = decide(doc, operation="InvokeModel", model_id=HAIKU, region="us-east-1")
    assert denial is not None
    assert not denial.explicit
    assert denial.message == (
        f"User: {DEFAULT_PRINCIPAL} is not authorized to perform: bedrock:InvokeModel on resource: "
        f"{HAIKU_ARN} because no identity-based policy allows the bedrock:InvokeModel action"
    )


def test_explicit_deny_wins_over_allow_and_names_sid() -> None:
    doc = policy(
        allow("bedrock:*", "*"), {"Sid": "NoHaiku", "Effect": "Deny", "Action": INVOKE, "Resource": HAIKU_ARN}
    )
    denial = decide(doc, operation="InvokeModel", model_id=HAIKU, region="us-east-1")
    assert denial is not None
    assert denial.explicit
    assert denial.matched_sid == "NoHaiku"
    assert denial.message == (
        f"User: {DEFAULT_PRINCIPAL} is not authorized to perform: bedrock:InvokeModel on resource: "
        f"{HAIKU_ARN} with an explicit deny in an identity-based policy"
    )


@pytest.mark.parametrize(
    ("operation", "action"),
    [
        ("InvokeModel", INVOKE),
        ("Converse", INVOKE),
        ("InvokeModelWithResponseStream", STREAM),
        ("ConverseStream", STREAM),
    ],
)
def test_each_operation_needs_the_action_aws_checks(operation: str, action: str) -> None:
    only_this = policy(allow(action, HAIKU_ARN))
    assert decide(only_this, operation=operation, model_id=HAIKU, region="us-east-1") is None
    other = STREAM if action == INVOKE else INVOKE
    only_other = policy(allow(other, HAIKU_ARN))
    denial = decide(only_other, operation=operation, model_id=HAIKU, region="us-east-1")
    assert denial is not None
    assert denial.action == action
    assert f"because no identity-based policy allows the {action} action" in denial.message


def test_not_action_allows_everything_but_the_listed_actions() -> None:
    doc = policy({"Effect": "Allow", "NotAction": STREAM, "Resource": "*"})
    assert decide(doc, operation="Converse", model_id=HAIKU, region="us-east-1") is None
    assert decide(doc, operation="ConverseStream", model_id=HAIKU, region="us-east-1") is not None


def test_not_resource_in_deny_protects_everything_else() -> None:
    doc = policy(
        allow("bedrock:*", "*"),
        {"Effect": "Deny", "Action": "bedrock:*", "NotResource": HAIKU_ARN},
    )
    assert decide(doc, operation="InvokeModel", model_id=HAIKU, region="us-east-1") is None
    denial = decide(doc, operation="InvokeModel", model_id="amazon.titan-text-express-v1", region="us-east-1")
    assert denial is not None
    assert denial.explicit
    assert denial.resource == TITAN_ARN


def test_wildcard_resources_match_with_iam_semantics() -> None:
    doc = policy(allow(INVOKE, "arn:aws:bedrock:*::foundation-model/anthropic.*"))
    assert decide(doc, operation="InvokeModel", model_id=HAIKU, region="eu-west-1") is None
    assert decide(doc, operation="InvokeModel", model_id="amazon.titan-text-express-v1", region="us-east-1")


def test_resource_arn_uses_the_request_region() -> None:
    doc = policy(allow(INVOKE, HAIKU_ARN))
    denial = decide(doc, operation="InvokeModel", model_id=HAIKU, region="eu-west-1")
    assert denial is not None
    assert denial.resource == f"arn:aws:bedrock:eu-west-1::foundation-model/{HAIKU}"


def test_inference_profile_needs_profile_and_every_routed_model() -> None:
    profile = f"us.{HAIKU}"
    profile_arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{profile}"
    only_profile = policy(allow(INVOKE, profile_arn))
    denial = decide(only_profile, operation="InvokeModel", model_id=profile, region="us-east-1")
    assert denial is not None
    assert denial.resource.endswith(f"::foundation-model/{HAIKU}")
    ref = parse_model_id(profile, region="us-east-1", account="123456789012")
    least = PolicyDocument.from_json(least_privilege_policy([ref], actions=[INVOKE], account="123456789012"))
    assert decide(least, operation="InvokeModel", model_id=profile, region="us-east-1") is None
    # The routed-model statement only applies through the profile: calling a routed model directly is denied.
    direct = decide(least, operation="InvokeModel", model_id=HAIKU, region="us-west-2")
    assert direct is not None


def test_guardrail_resource_is_the_guardrail_arn() -> None:
    doc = policy(allow("bedrock:ApplyGuardrail", "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1"))
    params = {"guardrailIdentifier": "gr1", "guardrailVersion": "1"}
    assert (
        decide(doc, operation="ApplyGuardrail", model_id=None, path_params=params, region="us-east-1") is None
    )
    params = {"guardrailIdentifier": "gr2", "guardrailVersion": "1"}
    denial = decide(doc, operation="ApplyGuardrail", model_id=None, path_params=params, region="us-east-1")
    assert denial is not None
    assert denial.resource == "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr2"


def test_principal_account_scopes_profile_arns() -> None:
    principal = "arn:aws:iam::111122223333:user/alice"
    doc = policy(allow(INVOKE, "arn:aws:bedrock:us-east-1:123456789012:inference-profile/*"))
    denial = decide(
        doc, principal=principal, operation="InvokeModel", model_id=f"us.{HAIKU}", region="us-east-1"
    )
    assert denial is not None
    assert denial.message.startswith(f"User: {principal} is not authorized")
    assert ":111122223333:inference-profile/" in denial.resource


def test_malformed_model_id_is_left_to_the_service() -> None:
    doc = policy(allow(INVOKE, HAIKU_ARN))
    assert decide(doc, operation="InvokeModel", model_id="not a model id!", region="us-east-1") is None


def test_condition_blocks_are_refused_when_the_policy_is_read() -> None:
    with pytest.raises(PolicyError, match="Condition"):
        policy(allow(INVOKE, "*", Condition={"StringEquals": {"aws:RequestedRegion": "us-east-1"}}))


@pytest.mark.parametrize("principal", ["alice", "arn:aws:s3:::bucket", "arn:aws:iam::12:user/x"])
def test_principal_must_be_an_iam_arn(principal: str) -> None:
    with pytest.raises(PolicyError, match="principal"):
        validate_principal(principal)


_MODELS = st.sampled_from(
    [HAIKU, "amazon.titan-text-express-v1", "meta.llama3-8b-instruct-v1:0", "amazon.nova-lite-v1:0"]
)
_PATTERNS = st.sampled_from(
    [
        "*",
        HAIKU_ARN,
        "arn:aws:bedrock:*::foundation-model/*",
        "arn:aws:bedrock:us-east-1::foundation-model/a*",
    ]
)
_ACTIONS = st.sampled_from([INVOKE, STREAM, "bedrock:Invoke*", "bedrock:*"])


@settings(max_examples=150, deadline=None)
@given(
    model=_MODELS,
    operation=st.sampled_from(["InvokeModel", "Converse", "InvokeModelWithResponseStream", "ConverseStream"]),
    statements=st.lists(
        st.tuples(st.sampled_from(["Allow", "Deny"]), _ACTIONS, _PATTERNS, st.booleans()),
        min_size=1,
        max_size=4,
    ),
)
def test_decision_agrees_with_policy_evaluation_and_message_names_arn(
    model: str, operation: str, statements: list[tuple[str, str, str, bool]]
) -> None:
    doc = policy(
        *(
            {"Effect": effect, "Action": action, ("NotResource" if negate else "Resource"): pattern}
            for effect, action, pattern, negate in statements
        )
    )
    arn = f"arn:aws:bedrock:us-east-1::foundation-model/{model}"
    action = STREAM if operation.endswith("Stream") else INVOKE
    verdict = doc.evaluate(action=action, resource=arn)
    denial = decide(doc, operation=operation, model_id=model, region="us-east-1")
    assert (denial is None) == verdict.allowed
    if denial is not None:
        assert denial.explicit == verdict.explicit_deny
        assert denial.message.startswith(
            f"User: {DEFAULT_PRINCIPAL} is not authorized to perform: {action} on resource: {arn} "
        )
