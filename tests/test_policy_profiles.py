"""from_policy decides a cross-Region profile call as IAM does: on the profile ARN and on every routed ARN.

IAM authorizes a call through a system inference profile on the profile ARN and on the foundation model in
each region the request may be routed to (the region-less ARN too for ``global.``), with
bedrock:InferenceProfileArn set to the profile. An allowlist read from a policy must never be wider: the
property test at the end sends what the allowlist lets out to a FakeBedrock enforcing the same policy and
counts AccessDenied answers on the wire.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from safe_bedrock import ModelNotAllowedError, SafeBedrockClient
from safe_bedrock._allowlist import ModelAllowlist
from safe_bedrock._ids import ModelKind, geographies, parse_model_id, profile_routes
from safe_bedrock._policy import INVOKE, INVOKE_STREAM, PROFILE_ARN_KEY, least_privilege_policy
from safe_bedrock.errors import AllowlistError, PolicyError
from safe_bedrock.testing import FakeBedrock

# Synthetic ids test matching semantics; UnknownModelWarning has its own tests (test_allowlist_catalog.py).
pytestmark = pytest.mark.filterwarnings("ignore::safe_bedrock.errors.UnknownModelWarning")

LLAMA = "meta.llama3-1-70b-instruct-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET4 = "anthropic.claude-sonnet-4-20250514-v1:0"
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "111122223333"
REGION = "us-east-1"


def ref(model_id: str, region: str = REGION) -> Any:
    return parse_model_id(model_id, region=region)


def decide(policy: dict[str, Any], model_id: str, action: str = INVOKE) -> Any:
    allowlist = ModelAllowlist.from_policy(policy).bind(region=REGION)
    return allowlist.decide(ref(model_id), action=action)


def iam(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def least_privilege(*model_ids: str, actions: tuple[str, ...] = (INVOKE, INVOKE_STREAM)) -> dict[str, Any]:
    return least_privilege_policy([ref(m) for m in model_ids], actions=actions)


def deny(resource: str, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": "bedrock:*", "Resource": resource, **extra}


def test_a_least_privilege_policy_allows_its_profiles() -> None:
    policy = least_privilege(f"us.{LLAMA}", f"global.{SONNET4}")
    assert decide(policy, f"us.{LLAMA}").allowed
    assert decide(policy, f"global.{SONNET4}", INVOKE_STREAM).allowed


@pytest.mark.parametrize("profile", [f"us.{LLAMA}", f"global.{LLAMA}"])
def test_a_deny_on_the_foundation_models_refuses_the_profiles_that_route_to_them(profile: str) -> None:
    policy = least_privilege(profile)
    policy["Statement"].append(deny("arn:aws:bedrock:*::foundation-model/meta.*"))
    decision = decide(policy, profile)
    assert not decision.allowed
    assert "explicit Deny" in decision.reason
    first_routed = profile_routes(parse_model_id(profile, region=REGION))[0]
    assert first_routed in decision.reason
    assert "narrow that Deny" in decision.reason


def test_a_deny_in_one_routed_region_refuses_the_profile_but_not_the_model_here() -> None:
    policy = least_privilege(f"us.{LLAMA}", LLAMA)
    west = f"arn:aws:bedrock:us-west-2::foundation-model/{LLAMA}"
    policy["Statement"].append({**deny(west), "Sid": "NoOregon"})
    decision = decide(policy, f"us.{LLAMA}")
    assert not decision.allowed
    assert west in decision.reason
    assert "'NoOregon'" in decision.reason
    assert decide(policy, LLAMA).allowed  # the direct call stays in us-east-1


def test_a_conditional_deny_counts_for_profile_calls() -> None:
    policy = least_privilege(f"us.{LLAMA}")
    policy["Statement"].append(
        deny(
            "arn:aws:bedrock:*::foundation-model/*",
            Condition={"ArnLike": {PROFILE_ARN_KEY: "arn:aws:bedrock:*:*:inference-profile/us.*"}},
        )
    )
    assert not decide(policy, f"us.{LLAMA}").allowed


def test_a_deny_for_streaming_only_leaves_invoking_allowed() -> None:
    policy = least_privilege(f"us.{LLAMA}")
    policy["Statement"].append(
        {
            "Effect": "Deny",
            "Action": INVOKE_STREAM,
            "Resource": f"arn:aws:bedrock:us-east-2::foundation-model/{LLAMA}",
        }
    )
    assert decide(policy, f"us.{LLAMA}", INVOKE).allowed
    assert not decide(policy, f"us.{LLAMA}", INVOKE_STREAM).allowed


def test_every_routed_model_must_be_allowed_and_the_refusal_says_which_and_how() -> None:
    profile = f"arn:aws:bedrock:{REGION}:*:inference-profile/us.{LLAMA}"
    policy = iam(
        {
            "Effect": "Allow",
            "Action": INVOKE,
            "Resource": [profile, f"arn:aws:bedrock:us-east-*::foundation-model/{LLAMA}"],
        }
    )
    decision = decide(policy, f"us.{LLAMA}")
    assert not decision.allowed
    # The first routed region (sorted) that us-east-* does not cover.
    region = sorted(r for r in geographies()["us"] if not r.startswith("us-east-"))[0]
    missing = f"arn:aws:bedrock:{region}::foundation-model/{LLAMA}"
    assert f"does not allow bedrock:InvokeModel on {missing}" in decision.reason
    assert f"bedrock:InferenceProfileArn {profile}" in decision.reason
    assert f"safe-bedrock policy us.{LLAMA}" in decision.reason


def test_an_allow_conditioned_on_another_profile_does_not_count() -> None:
    policy = least_privilege(f"us.{LLAMA}")
    routed = policy["Statement"][-1]
    routed["Condition"] = {"ArnLike": {PROFILE_ARN_KEY: f"arn:aws:bedrock:*:*:inference-profile/eu.{LLAMA}"}}
    assert not decide(policy, f"us.{LLAMA}").allowed


def test_a_global_profile_needs_the_region_less_arn() -> None:
    profile = f"arn:aws:bedrock:{REGION}:*:inference-profile/global.{SONNET4}"
    regional = f"arn:aws:bedrock:?*::foundation-model/{SONNET4}"  # every region, but not the empty one
    policy = iam({"Effect": "Allow", "Action": INVOKE, "Resource": [profile, regional]})
    decision = decide(policy, f"global.{SONNET4}")
    assert not decision.allowed
    assert f"arn:aws:bedrock:::foundation-model/{SONNET4}" in decision.reason


def test_an_allow_naming_an_account_is_not_assumed_to_be_the_callers() -> None:
    named = json.loads(
        json.dumps(least_privilege(f"us.{LLAMA}")).replace(
            ":*:inference-profile", f":{ACCOUNT}:inference-profile"
        )
    )
    decision = decide(named, f"us.{LLAMA}")
    assert not decision.allowed
    assert "named account" in decision.reason
    assert f"arn:aws:bedrock:{REGION}:*:inference-profile/us.{LLAMA}" in decision.reason
    # Called by its full ARN, the account is known: IAM checks exactly that ARN.
    assert decide(named, f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/us.{LLAMA}").allowed
    other = decide(named, f"arn:aws:bedrock:{REGION}:{OTHER_ACCOUNT}:inference-profile/us.{LLAMA}")
    assert not other.allowed
    assert "another account" in other.reason


def test_a_condition_naming_an_account_is_not_assumed_to_be_the_callers() -> None:
    policy = least_privilege(f"us.{LLAMA}")
    routed = policy["Statement"][-1]
    routed["Condition"] = {"ArnLike": {PROFILE_ARN_KEY: f"arn:aws:bedrock:*:{ACCOUNT}:inference-profile/*"}}
    assert not decide(policy, f"us.{LLAMA}").allowed


def test_a_deny_naming_any_account_is_assumed_to_apply() -> None:
    policy = least_privilege(f"us.{LLAMA}")
    policy["Statement"].append(deny(f"arn:aws:bedrock:*:{OTHER_ACCOUNT}:inference-profile/us.*"))
    assert not decide(policy, f"us.{LLAMA}").allowed
    conditional = least_privilege(f"us.{LLAMA}")
    conditional["Statement"].append(
        deny(
            "arn:aws:bedrock:*::foundation-model/*",
            Condition={
                "StringEquals": {
                    PROFILE_ARN_KEY: f"arn:aws:bedrock:{REGION}:{OTHER_ACCOUNT}:inference-profile/us.{LLAMA}"
                }
            },
        )
    )
    assert not decide(conditional, f"us.{LLAMA}").allowed


def test_a_profile_of_a_geography_with_unknown_routes_is_refused() -> None:
    policy = iam(
        {
            "Effect": "Allow",
            "Action": INVOKE,
            "Resource": [
                "arn:aws:bedrock:*:*:inference-profile/ca.meta.*",
                "arn:aws:bedrock:*::foundation-model/meta.*",
            ],
        }
    )
    decision = decide(policy, f"ca.{LLAMA}")
    assert not decision.allowed
    assert "unknown destination regions" in decision.reason


def test_plain_allowlists_keep_their_meaning_for_profiles() -> None:
    # No policy, nothing to route-check: a listed profile is allowed, as before.
    allowlist = ModelAllowlist([f"us.{LLAMA}"]).bind(region=REGION)
    assert allowlist.decide(ref(f"us.{LLAMA}"), action=INVOKE).allowed


# --- the property: what the allowlist lets out, the fake's IAM evaluation allows ------------------------

MODELS = [HAIKU, LLAMA, SONNET4, "amazon.nova-pro-v1:0"]
GEOS = ["us", "eu", "apac", "global"]
FM_IDS = [*MODELS, "anthropic.*", "meta.*", "anthropic.claude-3-haiku*", "amazon.nova-*", "*"]
PROFILE_IDS = [
    *(f"{geo}.{model}" for geo in GEOS for model in (HAIKU, LLAMA)),
    "us.anthropic.*",
    "global.anthropic.*",
    "eu.meta.*",
    "us.meta.llama3-1-*",
    "*",
]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "*", "us-*", "?*", ""]
ACCOUNTS = ["*", ACCOUNT, OTHER_ACCOUNT, "", "????????????"]
ACTIONS = [INVOKE, INVOKE_STREAM, "bedrock:InvokeModel*", "bedrock:*", "*"]
PROFILES = [f"{geo}.{model}" for geo in GEOS for model in MODELS]
PROBES = [*MODELS, *PROFILES, f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/us.{LLAMA}"]

fm_arns = st.builds(
    "arn:aws:bedrock:{}:{}:foundation-model/{}".format,
    st.sampled_from(REGIONS),
    st.sampled_from(["", "", "*"]),
    st.sampled_from(FM_IDS),
)
profile_arns = st.builds(
    "arn:aws:bedrock:{}:{}:inference-profile/{}".format,
    st.sampled_from(REGIONS),
    st.sampled_from(ACCOUNTS),
    st.sampled_from(PROFILE_IDS),
)
resources = st.one_of(fm_arns, profile_arns, st.just("*"))


def _with_account(arn: str, account: str) -> str:
    parts = arn.split(":", 5)
    parts[4] = account
    return ":".join(parts)


def _action(draw: st.DrawFn) -> object:
    return draw(
        st.one_of(st.sampled_from(ACTIONS), st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=2))
    )


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"])),
        "Action": _action(draw),
        "Resource": draw(st.lists(resources, min_size=1, max_size=3)),
    }
    if draw(st.booleans()):
        operator = draw(st.sampled_from(["ArnLike", "StringLike", "ArnEquals", "StringEquals"]))
        values = draw(st.lists(profile_arns, min_size=1, max_size=2))
        statement["Condition"] = {operator: {PROFILE_ARN_KEY: values}}
    return statement


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    """Random statements, plus (often) a least-privilege policy for some profiles, perturbed.

    Purely random policies rarely allow a profile and every region it routes to; perturbing one that does
    (accounts rewritten, Denies aimed at the profile or one of its routes) is where mistakes would show.
    """
    found = [draw(statements()) for _ in range(draw(st.integers(0, 3)))]
    if draw(st.integers(0, 3)):
        seeds = draw(st.lists(st.sampled_from(PROFILES), min_size=1, max_size=3))
        refs = [ref(seed) for seed in seeds]
        seeded: Any = least_privilege_policy(refs, actions=[INVOKE, INVOKE_STREAM])
        for statement in seeded["Statement"]:
            # Name some account for the profile ARNs, in the resource or in the condition.
            if draw(st.integers(0, 2)) == 0:
                account = draw(st.sampled_from(ACCOUNTS))
                profile = ":inference-profile/"
                statement["Resource"] = [
                    _with_account(r, account) if profile in r else r for r in statement["Resource"]
                ]
                for block in statement.get("Condition", {}).values():
                    block[PROFILE_ARN_KEY] = [_with_account(v, account) for v in block[PROFILE_ARN_KEY]]
            found.append(statement)
        for _ in range(draw(st.integers(0, 2))):  # Denies aimed at one seed: its profile ARN or a route
            target = draw(st.sampled_from(refs))
            account = draw(st.sampled_from(ACCOUNTS))
            profile_arn = f"arn:aws:bedrock:{REGION}:{account}:inference-profile/{target.resource_id}"
            resource = draw(st.sampled_from([profile_arn, *profile_routes(target)]))
            denied: dict[str, Any] = {"Effect": "Deny", "Action": _action(draw), "Resource": resource}
            if draw(st.booleans()):
                operator = draw(st.sampled_from(["ArnLike", "StringEquals"]))
                denied["Condition"] = {operator: {PROFILE_ARN_KEY: profile_arn}}
            found.append(denied)
    return iam(*draw(st.permutations(found)))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


def _wire_answers(client: Any) -> list[tuple[str, int, str]]:
    """(operation, HTTP status, error code) of every response the fake sent back to this client."""
    answers: list[tuple[str, int, str]] = []

    def record(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        code = parsed.get("Error", {}).get("Code", "") if isinstance(parsed, dict) else ""
        answers.append((model.name, http_response.status_code, code))

    client.meta.events.register("after-call.bedrock-runtime", record)
    return answers


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(policy=policies(), allow_any=st.booleans(), account=st.sampled_from([ACCOUNT, OTHER_ACCOUNT]))
def test_no_call_the_policy_allowlist_lets_out_is_denied_by_the_fakes_iam(
    fake: FakeBedrock, policy: dict[str, Any], allow_any: bool, account: str
) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an allowlist that allows nothing warns; it is a valid answer
            allowlist = ModelAllowlist.from_policy(policy, allow_any=allow_any)
    except (AllowlistError, PolicyError):
        event("refused at construction")
        return
    fake.reset()
    fake.set_policy(policy, principal=f"arn:aws:sts::{account}:assumed-role/app/session")
    raw = fake.client(region_name=REGION, config=Config(retries={"total_max_attempts": 1}))
    answers = _wire_answers(raw)
    client = SafeBedrockClient(allow=allowlist, client=raw)
    let_out = 0
    for model_id in PROBES:
        for stream in (False, True):
            messages: Any = [{"role": "user", "content": [{"text": "hi"}]}]
            try:
                if stream:
                    response = client.converse_stream(modelId=model_id, messages=messages)
                    list(response["stream"])
                else:
                    client.converse(modelId=model_id, messages=messages)
            except ModelNotAllowedError:
                continue  # refused at the door: nothing may reach the fake
            except Exception:  # noqa: BLE001 - any other answer was sent; the wire log below judges it
                sent_error = True
            else:
                sent_error = False
            let_out += 1
            if ref(model_id).kind is ModelKind.INFERENCE_PROFILE:
                event("a profile call was let out" + (" (and answered with an error)" if sent_error else ""))
    denied = [answer for answer in answers if answer[2] == "AccessDeniedException"]
    assert not denied, (denied, json.dumps(policy))
    assert len(fake.requests) == let_out == len(answers)


def test_a_profile_refused_by_a_routed_deny_sends_nothing_and_the_error_says_what_to_change() -> None:
    profile = f"us.{LLAMA}"
    policy = least_privilege(profile)
    policy["Statement"].append(deny("arn:aws:bedrock:*::foundation-model/meta.*"))
    with FakeBedrock() as fake:
        client = SafeBedrockClient(
            allow=ModelAllowlist.from_policy(policy),
            client=fake.client(config=Config(retries={"total_max_attempts": 1})),
        )
        with pytest.raises(ModelNotAllowedError) as caught:
            client.converse(modelId=profile, messages=[{"role": "user", "content": [{"text": "hi"}]}])

        assert fake.requests == []
    error = caught.value
    assert "explicit Deny" in error.message
    assert "add `" not in error.fix  # the profile is in the policy already: adding it changes nothing
    assert "narrow that Deny" in error.fix
