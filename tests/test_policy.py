"""IAM policy documents: wildcards, evaluation tables, loud refusals, least-privilege output."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from safe_bedrock._ids import parse_model_id, profile_routes
from safe_bedrock._policy import (
    INVOKE,
    INVOKE_STREAM,
    PROFILE_ARN_KEY,
    PolicyDocument,
    iam_match,
    iam_pattern,
    least_privilege_policy,
)
from safe_bedrock._service import action_for
from safe_bedrock.errors import PolicyError, SafeBedrockError

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
FM = f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"
OPUS = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-opus-20240229-v1:0"
PROFILE = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{HAIKU}"


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("arn:aws:bedrock:*::foundation-model/*", FM, True),
        ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.*", FM, True),
        ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku*", FM, True),  # crosses ':'
        ("arn:aws:bedrock:us-east-?::foundation-model/" + HAIKU, FM, True),
        ("arn:aws:bedrock:us-east-??::foundation-model/" + HAIKU, FM, False),
        ("arn:aws:bedrock:us-east-1::foundation-model/ANTHROPIC.*", FM, False),  # ARNs are case-sensitive
        ("arn:aws:bedrock:*:*:inference-profile/*", PROFILE, True),
        (
            "arn:aws:bedrock:*:*:inference-profile/*",
            PROFILE.replace("inference", "application-inference"),
            False,
        ),
        ("*", FM, True),
        (FM, FM, True),
        (FM + "x", FM, False),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/a.b[c]",
            "arn:aws:bedrock:us-east-1::foundation-model/a.b[c]",
            True,
        ),
    ],
)
def test_iam_wildcards(pattern: str, value: str, expected: bool) -> None:
    assert iam_match(pattern, value) is expected
    regex = iam_pattern(pattern)
    # Anchored at both ends: every method answers for the whole value.
    for method in (regex.match, regex.fullmatch, regex.search):
        assert (method(value) is not None) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("a.b", "axb", False),  # '.' is literal
        ("a+b", "a+b", True),
        ("a\\*", "a\\xyz", True),  # a backslash is literal and does not escape the '*'
        ("a\\?", "a\\x", True),
        ("(a|b)", "a", False),
        ("a*", "a\nb", True),  # '*' is any run of characters
        ("abc", "xabcx", False),
        ("*c", "abcd", False),
    ],
)
def test_iam_pattern_treats_every_other_character_literally(pattern: str, value: str, expected: bool) -> None:
    regex = iam_pattern(pattern)
    assert (regex.search(value) is not None) is expected
    assert iam_match(pattern, value) is expected


def test_iam_pattern_folds_case_only_when_asked_as_for_actions() -> None:
    assert iam_pattern("bedrock:Invoke*", fold=True).match("BEDROCK:INVOKEMODEL")
    assert not iam_pattern("bedrock:Invoke*").match("BEDROCK:INVOKEMODEL")


def test_iam_patterns_join_into_one_alternation_that_names_the_branch() -> None:
    patterns = ["anthropic.*", "meta.llama?-*", "amazon.nova-pro-v1:0"]
    joined = re.compile("|".join(f"{iam_pattern(p).pattern}()" for p in patterns), re.DOTALL)
    for value, branch in [("meta.llama3-x", 2), ("amazon.nova-pro-v1:0", 3), ("anthropic.x", 1)]:
        found = joined.match(value)
        assert found is not None
        assert found.lastindex == branch
    assert joined.match("amazon.nova-pro-v1:0x") is None
    assert joined.match("xanthropic.x") is None


def test_the_fake_matches_wildcards_with_the_one_translation() -> None:
    from safe_bedrock.testing import _control_plane, _script

    assert _script.iam_pattern is _control_plane.iam_pattern is iam_pattern


@pytest.mark.parametrize(
    ("operation", "action"),
    [
        ("InvokeModel", "bedrock:InvokeModel"),
        ("Converse", "bedrock:InvokeModel"),
        ("InvokeModelWithResponseStream", "bedrock:InvokeModelWithResponseStream"),
        ("ConverseStream", "bedrock:InvokeModelWithResponseStream"),
        ("InvokeModelWithBidirectionalStream", "bedrock:InvokeModelWithBidirectionalStream"),
        ("CountTokens", "bedrock:CountTokens"),
        ("ApplyGuardrail", "bedrock:ApplyGuardrail"),
        ("StartAsyncInvoke", "bedrock:StartAsyncInvoke"),
    ],
)
def test_operations_map_to_the_iam_actions_that_authorize_them(operation: str, action: str) -> None:
    assert action_for(operation) == action


def policy(*statements: dict[str, Any]) -> PolicyDocument:
    return PolicyDocument.from_json({"Version": "2012-10-17", "Statement": list(statements)})


ALLOW_HAIKU = {"Sid": "Haiku", "Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": FM}
ALLOW_ANTHROPIC = {
    "Sid": "Anthropic",
    "Effect": "Allow",
    "Action": "bedrock:Invoke*",
    "Resource": "arn:aws:bedrock:*::foundation-model/anthropic.*",
}
DENY_OPUS = {"Sid": "NoOpus", "Effect": "Deny", "Action": "bedrock:*", "Resource": OPUS}


@pytest.mark.parametrize(
    ("statements", "action", "resource", "allowed", "explicit", "sid"),
    [
        ([], INVOKE, FM, False, False, None),  # default deny
        ([ALLOW_HAIKU], INVOKE, FM, True, False, "Haiku"),
        ([ALLOW_HAIKU], "BEDROCK:invokemodel", FM, True, False, "Haiku"),  # actions are case-insensitive
        ([ALLOW_HAIKU], INVOKE_STREAM, FM, False, False, None),
        ([ALLOW_HAIKU], INVOKE, OPUS, False, False, None),
        ([ALLOW_ANTHROPIC], INVOKE_STREAM, OPUS, True, False, "Anthropic"),
        ([ALLOW_ANTHROPIC, DENY_OPUS], INVOKE, OPUS, False, True, "NoOpus"),  # explicit deny wins
        ([DENY_OPUS, ALLOW_ANTHROPIC], INVOKE, OPUS, False, True, "NoOpus"),  # in any order
        ([ALLOW_ANTHROPIC, DENY_OPUS], INVOKE, FM, True, False, "Anthropic"),
        (
            [{"Effect": "Allow", "NotAction": "bedrock:InvokeModelWithResponseStream", "Resource": FM}],
            INVOKE,
            FM,
            True,
            False,
            None,
        ),
        (
            [{"Effect": "Allow", "NotAction": "bedrock:InvokeModelWithResponseStream", "Resource": FM}],
            INVOKE_STREAM,
            FM,
            False,
            False,
            None,
        ),
        (
            [{"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"}, {**DENY_OPUS, "Resource": "*"}],
            INVOKE,
            FM,
            False,
            True,
            "NoOpus",
        ),
        (
            [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Effect": "Deny", "Action": "*", "NotResource": FM},
            ],
            INVOKE,
            FM,
            True,
            False,
            None,
        ),
        (
            [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Effect": "Deny", "Action": "*", "NotResource": FM},
            ],
            INVOKE,
            OPUS,
            False,
            True,
            None,
        ),
    ],
)
def test_evaluation_table(  # noqa: PLR0917 - one parameter per column of the table
    statements: list[dict[str, Any]],
    action: str,
    resource: str,
    allowed: bool,
    explicit: bool,
    sid: str | None,
) -> None:
    verdict = policy(*statements).evaluate(action=action, resource=resource)
    assert (verdict.allowed, verdict.explicit_deny, verdict.matched_sid) == (allowed, explicit, sid)


def test_a_single_statement_object_and_json_text_and_bytes_are_accepted() -> None:
    text = json.dumps({"Version": "2012-10-17", "Statement": ALLOW_HAIKU})
    for source in (text, text.encode()):
        assert PolicyDocument.from_json(source).evaluate(action=INVOKE, resource=FM).allowed


def test_a_statement_conditioned_on_the_inference_profile_applies_only_through_that_profile() -> None:
    document = policy(
        {
            **ALLOW_HAIKU,
            "Condition": {
                "StringLike": {PROFILE_ARN_KEY: "arn:aws:bedrock:us-east-1:*:inference-profile/us.*"}
            },
        }
    )
    assert not document.evaluate(action=INVOKE, resource=FM).allowed
    assert document.evaluate(action=INVOKE, resource=FM, inference_profile_arn=PROFILE).allowed
    other = PROFILE.replace("/us.", "/eu.")
    assert not document.evaluate(action=INVOKE, resource=FM, inference_profile_arn=other).allowed
    assert document.allowed_resources(INVOKE) == ()  # never allowed when called directly


def test_string_equals_compares_the_profile_exactly() -> None:
    document = policy({**ALLOW_HAIKU, "Condition": {"StringEquals": {PROFILE_ARN_KEY: [PROFILE]}}})
    assert document.evaluate(action=INVOKE, resource=FM, inference_profile_arn=PROFILE).allowed
    assert not document.evaluate(action=INVOKE, resource=FM, inference_profile_arn=PROFILE[:-1] + "*").allowed


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ({**ALLOW_HAIKU, "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}}, "Condition"),
        ({**ALLOW_HAIKU, "Condition": {"Bool": {PROFILE_ARN_KEY: "true"}}}, "Condition"),
        ({**ALLOW_HAIKU, "Principal": {"AWS": "*"}}, "Principal"),
        ({**ALLOW_HAIKU, "NotPrincipal": {"AWS": "*"}}, "NotPrincipal"),
        ({**ALLOW_HAIKU, "Effect": "allow"}, "Effect"),
        ({"Effect": "Allow", "Resource": FM}, "exactly one of Action"),
        ({**ALLOW_HAIKU, "NotAction": "x:y"}, "exactly one of Action"),
        ({"Effect": "Allow", "Action": INVOKE}, "exactly one of Resource"),
        ({**ALLOW_HAIKU, "Resource": []}, "non-empty list"),
        ({**ALLOW_HAIKU, "Resource": [FM, 3]}, "not a non-empty string"),
        ({**ALLOW_HAIKU, "Resource": "foundation-model/x"}, "not an ARN"),
        ({**ALLOW_HAIKU, "Action": "InvokeModel"}, "service:Action"),
        ({**ALLOW_HAIKU, "Extra": 1}, "unknown key"),
        ({**ALLOW_HAIKU, "Sid": 5}, "Sid"),
    ],
)
def test_unsupported_or_malformed_statements_are_refused_naming_the_statement_and_source(
    statement: dict[str, Any], problem: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        PolicyDocument.from_json(
            {"Version": "2012-10-17", "Statement": [ALLOW_HAIKU, statement]}, source="app.json"
        )
    error = caught.value
    assert problem in str(error)
    assert "app.json" in str(error)
    assert "statement 1" in str(error)
    assert error.source == "app.json"
    assert isinstance(error, SafeBedrockError)
    assert isinstance(error, ValueError)


def nested(depth: int) -> str:
    return '{"Version": "2012-10-17", "Statement": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("{", "not valid JSON"),
        (b"\xff\xfe", "UTF-8"),
        ("[]", "JSON object"),
        ('{"Version": "2012-10-17"}', "no Statement"),
        ('{"Version": "2020-01-01", "Statement": []}', "Version"),
        ('{"Statement": 5}', "Statement is an object or a list"),
        ('{"Statement": [5]}', "a statement is a JSON object"),
        ('{"Statement": [], "Extra": 1}', "unknown top-level"),
        (nested(40), "nested too deeply"),
        (nested(100_000), "nested too deeply"),
        ('{"Statement": []' + " " * (1 << 20) + "}", "limit"),
    ],
)
def test_malformed_huge_or_deeply_nested_documents_are_refused(document: str | bytes, problem: str) -> None:
    with pytest.raises(PolicyError, match=problem) as caught:
        PolicyDocument.from_json(document, source="policy.json")
    assert "policy.json" in str(caught.value)


def test_not_resource_cannot_be_read_as_a_list_of_resources() -> None:
    document = policy({"Effect": "Allow", "Action": INVOKE, "NotResource": OPUS})
    with pytest.raises(PolicyError, match="NotResource"):
        document.allowed_resources(INVOKE)
    assert document.allowed_resources(INVOKE_STREAM) == ()  # the statement does not apply to streams


def test_allowed_and_denied_resources_per_action() -> None:
    document = policy(ALLOW_HAIKU, ALLOW_ANTHROPIC, DENY_OPUS)
    assert document.allowed_resources(INVOKE) == (FM, ALLOW_ANTHROPIC["Resource"])
    assert document.allowed_resources(INVOKE_STREAM) == (ALLOW_ANTHROPIC["Resource"],)
    assert document.denied_resources(INVOKE) == (OPUS,)
    assert document.denied_resources("bedrock:ListFoundationModels") == (OPUS,)


# -- least privilege ----------------------------------------------------------------------------------------


def statements_of(document: dict[str, object]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    assert isinstance(statements, list)
    return statements


def test_least_privilege_for_a_foundation_model_is_its_exact_arn() -> None:
    ref = parse_model_id(HAIKU, region="us-east-1")
    document = least_privilege_policy([ref], actions=[INVOKE])
    assert document == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "InvokeFoundationModels", "Effect": "Allow", "Action": INVOKE, "Resource": [FM]}
        ],
    }


def test_least_privilege_for_a_profile_allows_the_profile_and_its_routes_only_through_it() -> None:
    ref = parse_model_id(f"us.{HAIKU}", region="us-east-1")
    document = least_privilege_policy([ref], actions=[INVOKE, INVOKE_STREAM])
    parsed = PolicyDocument.from_json(document)
    profile = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{HAIKU}"
    assert parsed.evaluate(action=INVOKE, resource=profile).allowed
    for route in profile_routes(ref):
        assert parsed.evaluate(action=INVOKE_STREAM, resource=route, inference_profile_arn=profile).allowed
        assert not parsed.evaluate(action=INVOKE_STREAM, resource=route).allowed  # not directly
    for statement in statements_of(document):
        assert statement["Resource"] != "*"
        assert "*" not in statement["Resource"]


def test_least_privilege_for_a_global_profile_names_the_region_less_model_arn() -> None:
    ref = parse_model_id(f"global.{HAIKU}", region="eu-west-1", account="123456789012")
    document = least_privilege_policy([ref], actions=[INVOKE])
    resources = [r for s in statements_of(document) for r in s["Resource"]]
    assert f"arn:aws:bedrock:::foundation-model/{HAIKU}" in resources
    assert ref.arn in resources


def test_least_privilege_fills_a_known_account_into_bare_profiles() -> None:
    ref = parse_model_id(f"us.{HAIKU}", region="us-east-1")
    document = least_privilege_policy([ref], actions=[INVOKE], account="123456789012")
    assert "*" not in json.dumps(document)


def test_least_privilege_is_stable_and_sorted() -> None:
    ids = [f"eu.{HAIKU}", HAIKU, "amazon.nova-pro-v1:0", f"us.{HAIKU}"]
    refs = [parse_model_id(i, region="eu-west-1") for i in ids]
    first = least_privilege_policy(refs, actions=[INVOKE_STREAM, INVOKE])
    second = least_privilege_policy(list(reversed(refs)), actions=[INVOKE, INVOKE_STREAM, INVOKE])
    assert first == second
    for statement in statements_of(first):
        assert statement["Resource"] == sorted(statement["Resource"])
        assert statement["Sid"]


def test_least_privilege_refuses_what_it_cannot_write_exactly() -> None:
    ref = parse_model_id(HAIKU, region="us-east-1")
    with pytest.raises(PolicyError, match="no actions"):
        least_privilege_policy([ref], actions=[])
    with pytest.raises(PolicyError, match="exact"):
        least_privilege_policy([ref], actions=["bedrock:*"])
    with pytest.raises(PolicyError, match="no models"):
        least_privilege_policy([], actions=[INVOKE])
    with pytest.raises(PolicyError, match="'ca'"):
        least_privilege_policy([parse_model_id(f"ca.{HAIKU}", region="ca-central-1")], actions=[INVOKE])
