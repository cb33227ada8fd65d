"""ModelAllowlist: deny by default, IAM wildcards on canonical ARNs, per-operation sets, every source."""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from safe_bedrock._allowlist import ModelAllowlist
from safe_bedrock._ids import ModelKind, ModelRef, geographies, parse_model_id
from safe_bedrock._policy import INVOKE, INVOKE_BIDI_STREAM, INVOKE_STREAM, least_privilege_policy
from safe_bedrock.errors import (
    AllowlistError,
    EmptyAllowlistWarning,
    InvalidModelIdError,
    PolicyError,
    SafeBedrockError,
)

# Synthetic ids test matching semantics; UnknownModelWarning has its own tests (test_allowlist_catalog.py).
pytestmark = pytest.mark.filterwarnings("ignore::safe_bedrock.errors.UnknownModelWarning")

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
OPUS = "anthropic.claude-3-opus-20240229-v1:0"
ACCOUNT = "123456789012"
APP = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/a1b2c3d4e5f6"


def ref(model_id: str, region: str = "us-east-1") -> ModelRef:
    return parse_model_id(model_id, region=region)


def allows(allowlist: ModelAllowlist, model_id: str, action: str = INVOKE, region: str = "us-east-1") -> bool:
    return allowlist.bind(region=region).decide(ref(model_id, region), action=action).allowed


def test_an_exact_entry_allows_that_model_and_nothing_else() -> None:
    allowlist = ModelAllowlist([HAIKU])
    assert allows(allowlist, HAIKU)
    assert allows(allowlist, f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}")
    assert not allows(allowlist, OPUS)
    assert not allows(allowlist, HAIKU.replace("v1:0", "v1:1"))


def test_bare_entries_resolve_in_the_clients_region() -> None:
    allowlist = ModelAllowlist([HAIKU])
    assert allows(allowlist, HAIKU, region="eu-west-1")
    assert (
        not allowlist.bind(region="eu-west-1")
        .decide(ref(f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"), action=INVOKE)
        .allowed
    )


def test_an_allowlist_with_a_region_keeps_it() -> None:
    allowlist = ModelAllowlist([HAIKU], region="us-east-1")
    assert allowlist.bind(region="eu-west-1") is allowlist
    assert not allowlist.decide(ref(HAIKU, "eu-west-1"), action=INVOKE).allowed
    assert allowlist.decide(ref(HAIKU), action=INVOKE).allowed


def test_bind_is_cached() -> None:
    allowlist = ModelAllowlist([HAIKU])
    assert allowlist.bind(region="us-east-1") is allowlist.bind(region="us-east-1", partition="aws")


def test_an_unbound_allowlist_resolves_bare_entries_in_the_ids_region() -> None:
    assert ModelAllowlist([HAIKU]).decide(ref(HAIKU, "ap-south-1"), action=INVOKE).allowed


@pytest.mark.parametrize(
    ("entry", "model_id", "allowed"),
    [
        ("anthropic.*", HAIKU, True),
        ("anthropic.claude-3-haiku*", HAIKU, True),  # a trailing * crosses ':'
        ("anthropic.claude-3-haiku-20240307-v?:0", HAIKU, True),
        ("anthropic.claude-3-haiku*", OPUS, False),
        ("arn:aws:bedrock:*::foundation-model/anthropic.claude-3-haiku*", HAIKU, True),
        ("arn:aws:bedrock:eu-*::foundation-model/anthropic.*", HAIKU, False),
        ("us.anthropic.*", f"us.{HAIKU}", True),
        ("us.anthropic.*", f"eu.{HAIKU}", False),
        ("eu.anthropic.claude-3-haiku*", f"eu.{HAIKU}", True),
        ("eu.anthropic.claude-3-haiku*", HAIKU, False),
        (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/*", f"us.{HAIKU}", False),  # every profile
        (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.anthropic.*", APP, False),  # not app ones
        (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/a1b2*", APP, True),
        (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/a1b2*", f"us.{HAIKU}", False),
    ],
)
def test_wildcard_entries_follow_iam_semantics_on_canonical_arns(
    entry: str, model_id: str, allowed: bool
) -> None:
    if entry.endswith("inference-profile/*"):
        with pytest.raises(AllowlistError, match="every provider or geography"):
            ModelAllowlist([entry])
        return
    assert allows(ModelAllowlist([entry]), model_id) is allowed


def test_a_profile_entry_matches_the_bare_id_and_any_accounts_profile_arn() -> None:
    allowlist = ModelAllowlist([f"us.{HAIKU}"])
    assert allows(allowlist, f"us.{HAIKU}")
    assert allows(allowlist, f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{HAIKU}")
    assert allows(allowlist, f"arn:aws:bedrock:us-east-1:210987654321:inference-profile/us.{HAIKU}")
    assert not allows(allowlist, f"arn:aws:bedrock:us-west-2:{ACCOUNT}:inference-profile/us.{HAIKU}")
    by_arn = ModelAllowlist([f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{HAIKU}"])
    assert allows(by_arn, f"us.{HAIKU}")


def test_allowing_a_model_does_not_allow_profiles_that_route_it_elsewhere() -> None:
    allowlist = ModelAllowlist([HAIKU])
    decision = allowlist.bind(region="us-east-1").decide(ref(f"us.{HAIKU}"), action=INVOKE)
    assert not decision.allowed
    assert decision.entry_to_add == f"us.{HAIKU}"
    assert "cross-Region" in decision.reason
    assert not allows(allowlist, f"global.{HAIKU}")


@pytest.mark.parametrize(
    ("region", "callable_geographies"),
    [("us-east-1", {"us"}), ("eu-west-1", {"eu"}), ("ap-northeast-1", {"apac", "jp"}), ("sa-east-1", set())],
)
def test_profiles_plus_allows_a_model_and_the_profiles_a_client_in_its_region_can_call(
    region: str, callable_geographies: set[str]
) -> None:
    # A client calls the profiles of its own region: the geographies that route from it, and global.
    allowed = {*callable_geographies, "global"}
    for entry in (f"profiles+{HAIKU}", "profiles+anthropic.claude-3-haiku*"):
        allowlist = ModelAllowlist([entry])
        assert allows(allowlist, HAIKU, region=region)
        for geo in ("us", "us-gov", "eu", "apac", "jp", "au", "global"):
            assert allows(allowlist, f"{geo}.{HAIKU}", region=region) is (geo in allowed), (entry, geo)
        assert not allows(allowlist, OPUS, region=region)
        assert not allows(allowlist, f"global.{OPUS}", region=region)
    with pytest.raises(AllowlistError, match="foundation-model id"):
        ModelAllowlist([f"profiles+us.{HAIKU}"])


@pytest.mark.parametrize(
    ("entry", "covers_haiku"),
    [
        ("*", True),
        ("*.*", True),
        ("?*", True),
        ("*0", True),
        ("*e*", True),
        ("*-*", True),
        ("profiles+*0", True),
        ("arn:aws:bedrock:*::foundation-model/*0", True),
        ("arn:aws:bedrock:*", True),
        ("arn:*", True),
        ("arn:aws:bedrock:us-east-1::*", True),
        ("arn:aws:bedrock:us-east-1::foundation-model/*", True),
        ("arn:aws:bedrock:*::foundation-model/*", True),
        (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/*", False),
        ("arn:aws:bedrock:us-east-1::*-model/x", False),
        ("arn:aws:*:us-east-1::foundation-model/x", False),
    ],
)
def test_entries_that_allow_every_model_of_a_kind_are_refused_unless_asked_for(
    entry: str, covers_haiku: bool
) -> None:
    with pytest.raises(AllowlistError) as caught:
        ModelAllowlist([entry])
    assert "allow_any=True" in caught.value.fix
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, SafeBedrockError)
    assert caught.value.entry == entry
    assert allows(ModelAllowlist([entry], allow_any=True), HAIKU) is covers_haiku


def test_allow_any_allows_everything_only_when_asked() -> None:
    allowlist = ModelAllowlist(["*"], allow_any=True)
    assert allows(allowlist, APP)
    assert allows(allowlist, f"global.{HAIKU}")
    assert "allow_any=True" in repr(allowlist)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("Anthropic.claude-v2", "lower case"),
        (" anthropic.claude-v2", "whitespace"),
        ("anthropic.claude-v2%3A0", "URL-encoded"),
        ("arn:aws:bedrock:us-east-1::model/x", "not a resource Bedrock invokes"),
        ("arn:aws:bedrock:cn-north-1::foundation-model/a.bc", "partition"),
        ("anthropic.clau\u0434e*", "bare pattern"),
        ("anthropic..*", "bare pattern"),
        ("arn:aws:bedrock:us-east-1::foundation-model/a b*", "whitespace"),
        ("arn:aws:bedrock:us-east-1::foundation-model/a;b*", "characters"),
        ("", "empty"),
    ],
)
def test_malformed_entries_are_refused_naming_the_entry_and_source(entry: str, problem: str) -> None:
    with pytest.raises(AllowlistError) as caught:
        ModelAllowlist([entry], source="file /etc/models.toml")
    assert problem in caught.value.problem
    assert "file /etc/models.toml" in str(caught.value)


def test_entries_are_strings_and_not_one_string() -> None:
    with pytest.raises(TypeError, match="not one string"):
        ModelAllowlist(HAIKU)
    with pytest.raises(AllowlistError, match="strings"):
        ModelAllowlist([3])  # type: ignore[list-item]


def test_an_empty_allowlist_refuses_everything_and_warns_at_the_callers_line() -> None:
    with pytest.warns(EmptyAllowlistWarning, match="empty") as record:
        allowlist = ModelAllowlist([])
    assert record[0].filename == __file__
    assert not allows(allowlist, HAIKU)
    with pytest.warns(EmptyAllowlistWarning) as record:
        ModelAllowlist.from_env(environ={})
    assert record[0].filename == __file__


def test_entries_may_be_for_invoking_only_or_for_streaming_only() -> None:
    allowlist = ModelAllowlist([HAIKU], invoke_only=[SONNET], stream_only=[OPUS])
    assert allows(allowlist, HAIKU, INVOKE)
    assert allows(allowlist, HAIKU, INVOKE_STREAM)
    assert allows(allowlist, SONNET, INVOKE)
    assert not allows(allowlist, SONNET, INVOKE_STREAM)
    assert not allows(allowlist, SONNET, INVOKE_BIDI_STREAM)
    assert allows(allowlist, SONNET, "bedrock:CountTokens")
    assert allows(allowlist, OPUS, INVOKE_STREAM)
    assert not allows(allowlist, OPUS, INVOKE)
    decision = allowlist.bind(region="us-east-1").decide(ref(SONNET), action=INVOKE_STREAM)
    assert "invoking only" in decision.reason
    assert allowlist.entries == (HAIKU, SONNET, OPUS)


def test_stream_entries_replace_the_entries_for_streams() -> None:
    allowlist = ModelAllowlist([HAIKU, SONNET], stream_entries=[SONNET])
    assert allows(allowlist, HAIKU, INVOKE)
    assert not allows(allowlist, HAIKU, INVOKE_STREAM)
    assert allows(allowlist, SONNET, INVOKE_STREAM)


def test_a_refusal_names_the_closest_entries_and_the_exact_entry_to_add() -> None:
    allowlist = ModelAllowlist([HAIKU, SONNET, "amazon.nova-pro-v1:0", APP]).bind(region="us-east-1")
    decision = allowlist.decide(ref("anthropic.claude-3-haiku-20240307-v2:0"), action=INVOKE)
    assert not decision.allowed
    assert decision.matched is None
    assert decision.closest[0] == HAIKU
    assert decision.entry_to_add == "anthropic.claude-3-haiku-20240307-v2:0"
    other_region = allowlist.decide(
        ref(f"arn:aws:bedrock:eu-west-1::foundation-model/{HAIKU}"), action=INVOKE
    )
    assert other_region.entry_to_add == f"arn:aws:bedrock:eu-west-1::foundation-model/{HAIKU}"
    app = allowlist.decide(ref(APP.replace("a1b2", "ffff")), action=INVOKE)
    assert app.closest == (APP,)
    assert app.entry_to_add == APP.replace("a1b2", "ffff")


def test_entry_to_add_is_an_entry_that_allows_the_call() -> None:
    base = ModelAllowlist([SONNET]).bind(region="us-east-1")
    for model_id in (HAIKU, f"us.{HAIKU}", APP, f"arn:aws:bedrock:eu-west-1::foundation-model/{HAIKU}"):
        decision = base.decide(ref(model_id), action=INVOKE)
        fixed = ModelAllowlist([SONNET, decision.entry_to_add]).bind(region="us-east-1")
        assert fixed.decide(ref(model_id), action=INVOKE).allowed, model_id


def test_repr_is_readable() -> None:
    allowlist = ModelAllowlist(
        [f"m{i}.model-v1:0" for i in range(8)], source="env SAFE_BEDROCK_ALLOWED_MODELS"
    )
    text = repr(allowlist)
    assert text.startswith("ModelAllowlist(['m0.model-v1:0'")
    assert "and 3 more" in text
    assert "env SAFE_BEDROCK_ALLOWED_MODELS" in text


# -- sources ------------------------------------------------------------------------------------------------


def test_from_env_splits_on_commas_and_trims() -> None:
    allowlist = ModelAllowlist.from_env(environ={"SAFE_BEDROCK_ALLOWED_MODELS": f" {HAIKU} ,us.{SONNET},, "})
    assert allowlist.entries == (HAIKU, f"us.{SONNET}")
    assert allowlist.source == "env SAFE_BEDROCK_ALLOWED_MODELS"
    assert allows(allowlist, f"us.{SONNET}")


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_MODELS", HAIKU)
    allowlist = ModelAllowlist.from_env(var="MY_MODELS")
    assert allowlist.source == "env MY_MODELS"
    assert allows(allowlist, HAIKU)


def test_from_env_errors_name_the_variable() -> None:
    with pytest.raises(AllowlistError, match="env SAFE_BEDROCK_ALLOWED_MODELS"):
        ModelAllowlist.from_env(environ={"SAFE_BEDROCK_ALLOWED_MODELS": "*"})


def test_from_file_reads_toml(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(f'allow = ["{HAIKU}"]\ninvoke_only = ["{SONNET}"]\nstream_only = ["{OPUS}"]\n')
    allowlist = ModelAllowlist.from_file(path)
    assert allowlist.source == f"file {path}"
    assert allows(allowlist, HAIKU, INVOKE_STREAM)
    assert not allows(allowlist, SONNET, INVOKE_STREAM)
    assert not allows(allowlist, OPUS, INVOKE)


def test_from_file_reads_json_and_a_tool_table(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"allow": [HAIKU]}))
    assert allows(ModelAllowlist.from_file(path), HAIKU)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f'[project]\nname = "x"\n\n[tool.safe-bedrock]\nallow = ["{SONNET}"]\n')
    assert allows(ModelAllowlist.from_file(pyproject), SONNET)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("m.toml", "allow = [", "invalid TOML"),
        ("m.json", "{", "not valid JSON"),
        ("m.json", "[]", "top level"),
        ("m.toml", 'allowed = ["x.y"]', "unknown key"),
        ("m.toml", 'allow = "anthropic.claude-v2"', "list of strings"),
        ("m.yaml", "allow: []", "unknown file type"),
        ("m.toml", 'allow = ["*"]', "every model"),
    ],
)
def test_from_file_errors_name_the_file_and_the_problem(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(AllowlistError, match=problem) as caught:
        ModelAllowlist.from_file(path)
    assert str(path) in str(caught.value)


def test_from_file_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AllowlistError, match="cannot read"):
        ModelAllowlist.from_file(tmp_path / "missing.toml")


def iam(*statements: dict[str, object]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_from_policy_allows_what_the_policy_allows_for_each_invoking_action_minus_denies() -> None:
    document = iam(
        {
            "Effect": "Allow",
            "Action": "bedrock:InvokeModel*",
            "Resource": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.*",
        },
        {"Effect": "Allow", "Action": "bedrock:InvokeModel", "Resource": APP},
        {"Effect": "Deny", "Action": "bedrock:*", "Resource": f"arn:aws:bedrock:*::foundation-model/{OPUS}"},
        {"Effect": "Allow", "Action": "bedrock:ListFoundationModels", "Resource": "*"},
    )
    allowlist = ModelAllowlist.from_policy(document)
    assert allowlist.source == "policy <mapping>"
    assert allows(allowlist, HAIKU, INVOKE_STREAM)
    assert allows(allowlist, APP, INVOKE)
    assert not allows(allowlist, APP, INVOKE_STREAM)
    assert not allows(allowlist, OPUS, INVOKE)
    decision = allowlist.decide(ref(OPUS), action=INVOKE)
    assert "Deny" in decision.reason
    assert not allows(allowlist, f"us.{HAIKU}")


def test_from_policy_reads_a_file_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(iam({"Effect": "Allow", "Action": INVOKE, "Resource": "*"})))
    with pytest.raises(AllowlistError, match="every model") as caught:
        ModelAllowlist.from_policy(path)
    assert f"policy {path}" in str(caught.value)
    assert allows(ModelAllowlist.from_policy(path, allow_any=True), HAIKU)
    path.write_text(json.dumps(iam({"Effect": "Allow", "Action": INVOKE, "Resource": "*", "Principal": "*"})))
    with pytest.raises(PolicyError, match="Principal"):
        ModelAllowlist.from_policy(str(path))


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": INVOKE, "NotResource": f"arn:aws:bedrock:*::foundation-model/{OPUS}"},
        {"Effect": "Deny", "Action": INVOKE, "NotResource": f"arn:aws:bedrock:*::foundation-model/{HAIKU}"},
        {
            "Effect": "Allow",
            "Action": INVOKE,
            "Resource": f"arn:aws:bedrock:*::foundation-model/{HAIKU}",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
    ],
)
def test_from_policy_refuses_constructs_it_cannot_read_exactly(statement: dict[str, object]) -> None:
    with pytest.raises(PolicyError):
        ModelAllowlist.from_policy(json.dumps(iam(statement)))


def test_from_policy_treats_a_conditional_deny_as_a_deny() -> None:
    document = iam(
        {
            "Effect": "Allow",
            "Action": INVOKE,
            "Resource": f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}",
        },
        {
            "Effect": "Deny",
            "Action": INVOKE,
            "Resource": f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}",
            "Condition": {"StringLike": {"bedrock:InferenceProfileArn": "*"}},
        },
    )
    assert not allows(ModelAllowlist.from_policy(document), HAIKU)


def test_an_empty_policy_allowlist_warns_at_the_callers_line() -> None:
    with pytest.warns(EmptyAllowlistWarning) as record:
        ModelAllowlist.from_policy(iam())
    assert record[0].filename == __file__


# -- properties ---------------------------------------------------------------------------------------------

MODELS = [
    HAIKU,
    SONNET,
    OPUS,
    "amazon.nova-pro-v1:0",
    "meta.llama3-1-70b-instruct-v1:0",
    "cohere.command-r-v1:0",
]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"]
GEOS = ["us", "eu", "apac", "global", "jp", "us-gov"]


@st.composite
def known_ids(draw: st.DrawFn) -> str:
    model = draw(st.sampled_from(MODELS))
    shape = draw(st.integers(0, 4))
    if shape == 0:
        return model
    if shape == 1:
        return f"{draw(st.sampled_from(GEOS))}.{model}"
    region = draw(st.sampled_from(REGIONS))
    if shape == 2:
        return f"arn:aws:bedrock:{region}::foundation-model/{model}"
    account = draw(st.sampled_from([ACCOUNT, "210987654321"]))
    if shape == 3:
        return f"arn:aws:bedrock:{region}:{account}:inference-profile/{draw(st.sampled_from(GEOS))}.{model}"
    app = draw(st.sampled_from(["a1b2c3d4e5f6", "ffffffffffff"]))
    return f"arn:aws:bedrock:{region}:{account}:application-inference-profile/{app}"


CONFUSABLES = {
    "a": "\u0430",
    "e": "\u0435",
    "o": "\u043e",
    "c": "\u0441",
    "p": "\u0440",
    ".": "\uff0e",
    "-": "\u2010",
}


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """Ids close to allowed entries: case changes, look-alikes, encodings, traversal, whitespace, swaps."""
    base = draw(known_ids())
    mutation = draw(st.integers(0, 11))
    index = draw(st.integers(0, max(0, len(base) - 1)))
    if mutation == 0:
        return base.upper()
    if mutation == 1:
        return base[:index] + base[index:].swapcase()
    if mutation == 2:
        char = base[index]
        return base[:index] + CONFUSABLES.get(char, "\u200b") + base[index + 1 :]
    if mutation == 3:
        return base.replace(":", "%3A").replace("/", "%2F")
    if mutation == 4:
        return base[:index] + "/../" + base[index:]
    if mutation == 5:
        return draw(st.sampled_from([" ", "\t", "\n", "\x00"])) + base
    if mutation == 6:
        return base + draw(st.sampled_from([" ", "\n", "\r\n", "%00"]))
    if mutation == 7:
        return base.replace("arn:aws:", "arn:aws-cn:").replace("arn:aws:", "arn:aws-us-gov:")
    if mutation == 8:
        return base.replace("us-east-1", "us-east-2").replace(ACCOUNT, "999999999999")
    if mutation == 9:
        return draw(st.sampled_from(GEOS)) + "." + base
    if mutation == 10:
        return base[:index] + base[index + 1 :]
    return base + draw(st.sampled_from(["0", "-x", ":1", "*"]))


ENTRY_POOL = [
    HAIKU,
    f"us.{SONNET}",
    "amazon.nova-*",
    "eu.meta.llama3-1-*",
    f"profiles+{OPUS}",
    f"arn:aws:bedrock:us-west-2::foundation-model/{SONNET}",
    f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:inference-profile/eu.{HAIKU}",
    f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/a1b2c3d4e5f6",
    "arn:aws:bedrock:*::foundation-model/cohere.command-r*",
]


def naive_allows(entries: Iterable[str], target: ModelRef, region: str) -> bool:
    """A slow, independent reading of the entry syntax: does any entry cover the target?"""
    from safe_bedrock._ids import match_key
    from safe_bedrock._policy import iam_match

    key = match_key(target)
    for entry in entries:
        patterns: list[tuple[str, ModelKind]] = []
        if entry.startswith("profiles+"):
            model = entry.removeprefix("profiles+")
            patterns.append(
                (f"arn:aws:bedrock:{region}::foundation-model/{model}", ModelKind.FOUNDATION_MODEL)
            )
            # The profiles a client in the region can call: geographies that route from it, and global.
            geos = [geo for geo, to in geographies().items() if region in to or geo == "global"]
            patterns.extend(
                (f"arn:aws:bedrock:{region}::inference-profile/{geo}.{model}", ModelKind.INFERENCE_PROFILE)
                for geo in geos
            )
        elif entry.startswith("arn:"):
            parts = entry.split(":", 5)
            if "inference-profile/" in parts[5] and not parts[5].startswith("application"):
                parts[4] = ""
                kind = ModelKind.INFERENCE_PROFILE
            elif parts[5].startswith("foundation-model/"):
                kind = ModelKind.FOUNDATION_MODEL
            else:
                kind = ModelKind.APPLICATION_INFERENCE_PROFILE
            patterns.append((":".join(parts), kind))
        else:
            is_profile = entry.split(":")[0].count(".") >= 2
            kind = ModelKind.INFERENCE_PROFILE if is_profile else ModelKind.FOUNDATION_MODEL
            patterns.append((f"arn:aws:bedrock:{region}::{kind.value}/{entry}", kind))
        if any(kind is target.kind and iam_match(pattern, key) for pattern, kind in patterns):
            return True
    return False


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.lists(st.sampled_from(ENTRY_POOL), min_size=1, max_size=6, unique=True),
    model_id=st.one_of(known_ids(), near_misses()),
    region=st.sampled_from(REGIONS),
    stream=st.booleans(),
)
def test_no_id_outside_the_allowlist_is_ever_allowed(
    entries: list[str], model_id: str, region: str, stream: bool
) -> None:
    try:
        target = parse_model_id(model_id, region=region)
    except InvalidModelIdError:
        return  # refused before any decision: nothing is sent
    assert target.raw.isascii()
    allowlist = ModelAllowlist(entries).bind(region=region)
    decision = allowlist.decide(target, action=INVOKE_STREAM if stream else INVOKE)
    assert decision.allowed is naive_allows(entries, target, region)
    if decision.allowed:
        assert decision.matched in entries
    else:
        assert decision.entry_to_add
        fixed = ModelAllowlist([*entries, decision.entry_to_add]).bind(region=region)
        assert fixed.decide(target, action=INVOKE).allowed


@settings(max_examples=100, deadline=None)
@given(
    ids=st.lists(known_ids(), min_size=1, max_size=6),
    probes=st.lists(known_ids(), min_size=1, max_size=10),
    region=st.sampled_from(REGIONS),
    stream=st.booleans(),
)
def test_a_least_privilege_policy_read_back_allows_exactly_the_same_models(
    ids: list[str], probes: list[str], region: str, stream: bool
) -> None:
    refs = [parse_model_id(i, region=region) for i in ids]
    actions = [INVOKE_STREAM] if stream else [INVOKE]
    original = ModelAllowlist(ids).bind(region=region)
    round_trip = ModelAllowlist.from_policy(least_privilege_policy(refs, actions=actions)).bind(region=region)
    for probe in [*ids, *probes]:
        target = parse_model_id(probe, region=region)
        assume(target.region)
        expected = original.decide(target, action=actions[0]).allowed
        if target.kind is ModelKind.INFERENCE_PROFILE:
            # The policy names the profile in one account, or in any ('*') for a bare id: IAM matches the
            # caller's account, which a bare id does not name, so only a '*' allows it.
            expected = expected and any(
                (r.resource_id == target.resource_id and r.region == target.region and not r.account)
                or r.arn == target.arn
                for r in refs
            )
        assert round_trip.decide(target, action=actions[0]).allowed is expected, probe
        other = INVOKE if stream else INVOKE_STREAM
        assert not round_trip.decide(target, action=other).allowed


def test_many_entries_decide_the_same_as_few() -> None:
    filler = [f"amazon.filler-{i:05d}-v1:0" for i in range(3000)] + [
        f"meta.family-{i:04d}*" for i in range(500)
    ]
    allowlist = ModelAllowlist([*filler, HAIKU, "us.anthropic.claude-3-5*"]).bind(region="us-east-1")
    assert allowlist.decide(ref(HAIKU), action=INVOKE).matched == HAIKU
    assert allowlist.decide(ref(f"us.{SONNET}"), action=INVOKE).matched == "us.anthropic.claude-3-5*"
    assert allowlist.decide(ref("meta.family-0042-x-v1:0"), action=INVOKE).matched == "meta.family-0042*"
    assert not allowlist.decide(ref("meta.family-x-v1:0"), action=INVOKE).allowed
    assert not allowlist.decide(ref(OPUS), action=INVOKE).allowed


def test_an_empty_allowlist_warns_once_when_built_and_not_again_when_bound_or_deciding() -> None:
    with pytest.warns(EmptyAllowlistWarning) as record:
        allowlist = ModelAllowlist([])
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for region in ("us-east-1", "eu-west-1"):
            bound = allowlist.bind(region=region)
            assert not bound.decide(ref(HAIKU, region), action=INVOKE).allowed
        assert not allowlist.decide(ref(HAIKU), action=INVOKE_STREAM).allowed


def test_deciding_keeps_no_state_the_same_call_gets_an_equal_decision() -> None:
    allowlist = ModelAllowlist([HAIKU, "meta.llama3-*"]).bind(region="us-east-1")
    for model_id in (OPUS, HAIKU, "meta.llama3-1-70b-instruct-v1:0"):
        first = allowlist.decide(ref(model_id), action=INVOKE)
        assert allowlist.decide(ref(model_id), action=INVOKE) == first
