"""ModelAllowlist's public face: `allows`, signatures without private parameters, docstrings, where its
errors live, and an empty allowlist's warning pointing at the user's own line from every entry point.
"""

from __future__ import annotations

import inspect
import linecache
import pickle
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

import safe_bedrock
from safe_bedrock import SafeBedrockClient, guard
from safe_bedrock._allowlist import Decision, ModelAllowlist
from safe_bedrock._ids import parse_model_id
from safe_bedrock._policy import INVOKE, INVOKE_STREAM, iam_match
from safe_bedrock.errors import AllowlistError, EmptyAllowlistWarning, PolicyError
from safe_bedrock.testing import FakeBedrock
from tests.clienthelpers import NO_BOTOCORE_RETRIES

# Synthetic ids test matching semantics; UnknownModelWarning has its own tests (test_allowlist_catalog.py).
pytestmark = pytest.mark.filterwarnings("ignore::safe_bedrock.errors.UnknownModelWarning")

if TYPE_CHECKING:
    import warnings
    from collections.abc import Callable
    from pathlib import Path

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
OPUS = "anthropic.claude-3-opus-20240229-v1:0"
ACCOUNT = "123456789012"


# -- allows: a predicate for checking a user's choice before calling ----------------------------------------


def test_allows_answers_for_ids_profiles_and_arns_in_the_clients_region() -> None:
    allowlist = ModelAllowlist([HAIKU, "us.anthropic.claude-3-5-sonnet*", "meta.llama3-*"])
    assert allowlist.allows(HAIKU, region="us-east-1")
    assert allowlist.allows(HAIKU, region="eu-west-1")  # bare entries resolve in the region asked about
    assert allowlist.allows(f"arn:aws:bedrock:eu-west-1::foundation-model/{HAIKU}", region="eu-west-1")
    assert not allowlist.allows(f"arn:aws:bedrock:eu-west-1::foundation-model/{HAIKU}", region="us-east-1")
    assert allowlist.allows("us.anthropic.claude-3-5-sonnet-20240620-v1:0", region="us-east-1")
    assert allowlist.allows("meta.llama3-1-70b-instruct-v1:0", region="us-east-1")
    assert not allowlist.allows(OPUS, region="us-east-1")
    assert not allowlist.allows(f"us.{HAIKU}", region="us-east-1")  # a profile routes elsewhere


def test_allows_follows_the_action_and_an_allowlists_own_region() -> None:
    allowlist = ModelAllowlist([], invoke_only=[HAIKU], stream_only=[OPUS], region="us-east-1")
    assert allowlist.allows(HAIKU, region="us-east-1")
    assert not allowlist.allows(HAIKU, region="us-east-1", action=INVOKE_STREAM)
    assert allowlist.allows(OPUS, region="us-east-1", action=INVOKE_STREAM)
    assert not allowlist.allows(OPUS, region="us-east-1")
    assert not allowlist.allows(HAIKU, region="eu-west-1")  # its own region wins, as in a client


@pytest.mark.parametrize(
    "model_id",
    [
        "anthropic.claude-3-haiku-20240307-v1%3A0",
        f" {HAIKU}",
        f"{HAIKU}\n",
        f"{HAIKU}/../x",
        "",
        None,
        HAIKU.encode(),
        42,
        "\u0430nthropic.claude-3-haiku-20240307-v1:0",
    ],
)
def test_allows_says_no_to_an_id_the_client_would_refuse_instead_of_raising(model_id: Any) -> None:
    allowlist = ModelAllowlist(["*"], allow_any=True)
    assert allowlist.allows(model_id, region="us-east-1") is False


def test_allows_raises_for_a_region_that_is_not_one() -> None:
    with pytest.raises(ValueError, match="not an AWS region"):
        ModelAllowlist([HAIKU]).allows(HAIKU, region="Virginia")


@settings(max_examples=200, deadline=None)
@given(
    model_id=st.sampled_from(
        [HAIKU, OPUS, f"us.{HAIKU}", f"eu.{OPUS}", f"arn:aws:bedrock:us-west-2::foundation-model/{HAIKU}"]
    ),
    region=st.sampled_from(["us-east-1", "us-west-2", "eu-west-1"]),
    action=st.sampled_from([INVOKE, INVOKE_STREAM, "bedrock:Converse"]),
)
def test_allows_is_what_decide_says(model_id: str, region: str, action: str) -> None:
    allowlist = ModelAllowlist([HAIKU, f"eu.{OPUS}"], stream_only=["profiles+anthropic.claude-3-opus*"])
    expected = allowlist.bind(region=region).decide(parse_model_id(model_id, region=region), action=action)
    assert allowlist.allows(model_id, region=region, action=action) is expected.allowed


# -- which entry allowed a call --------------------------------------------------------------------------


def test_the_first_covering_entry_written_is_the_one_named() -> None:
    allowlist = ModelAllowlist(["anthropic.claude-3-*", "anthropic.*", HAIKU]).bind(region="us-east-1")
    assert allowlist.decide(parse_model_id(HAIKU, region="us-east-1"), action=INVOKE).matched == HAIKU
    sonnet = parse_model_id("anthropic.claude-3-sonnet-20240229-v1:0", region="us-east-1")
    assert allowlist.decide(sonnet, action=INVOKE).matched == "anthropic.claude-3-*"
    legacy = parse_model_id("anthropic.claude-v2", region="us-east-1")
    assert allowlist.decide(legacy, action=INVOKE).matched == "anthropic.*"


def _valid(entry: str) -> bool:
    try:
        ModelAllowlist([entry])
    except AllowlistError:
        return False
    return True


ENTRIES = st.lists(st.text(alphabet="ab-*?", min_size=1, max_size=5), min_size=1, max_size=12, unique=True)


@settings(max_examples=300, deadline=None)
@given(tails=ENTRIES, tail=st.text(alphabet="ab-", min_size=1, max_size=4))
def test_the_entry_named_for_an_allowed_call_covers_it_exact_first_then_in_order(
    tails: list[str], tail: str
) -> None:
    entries = [entry for entry in (f"anthropic.{t}" for t in tails) if _valid(entry)]
    assume(entries)
    allowlist = ModelAllowlist(entries).bind(region="us-east-1")
    target = parse_model_id(f"anthropic.{tail}", region="us-east-1")
    decision = allowlist.decide(target, action=INVOKE)
    covering = [
        e for e in entries if iam_match(f"arn:aws:bedrock:us-east-1::foundation-model/{e}", target.arn)
    ]
    covering.sort(key=lambda entry: "*" in entry or "?" in entry)  # stable: exact ones first, in order
    event(f"covered by {min(len(covering), 2)}")
    assert decision.allowed is bool(covering)
    assert decision.matched == (covering[0] if covering else None)


# -- the public surface ----------------------------------------------------------------------------------

PUBLIC_METHODS = ("__init__", "from_env", "from_file", "from_policy", "bind", "decide", "allows")


@pytest.mark.parametrize("name", PUBLIC_METHODS)
def test_public_signatures_have_no_private_parameters_and_every_method_a_docstring(name: str) -> None:
    method = getattr(ModelAllowlist, name)
    assert not [p for p in inspect.signature(method).parameters if p.startswith("_")]
    assert (method.__doc__ or "").strip(), name


def test_every_public_method_is_listed_above_and_decisions_are_documented() -> None:
    public = {name for name, _ in inspect.getmembers(ModelAllowlist, callable) if not name.startswith("_")}
    assert public == set(PUBLIC_METHODS) - {"__init__"}
    assert "Added in version 0.2.0" in (ModelAllowlist.allows.__doc__ or "")
    assert (Decision.__doc__ or "").strip()


@pytest.mark.parametrize(
    ("name", "old_home"),
    [
        ("AllowlistError", "safe_bedrock._allowlist"),
        ("EmptyAllowlistWarning", "safe_bedrock._allowlist"),
        ("PolicyError", "safe_bedrock._policy"),
    ],
)
def test_allowlist_errors_live_in_the_errors_module_and_are_importable_where_they_were(
    name: str, old_home: str
) -> None:
    klass = getattr(safe_bedrock.errors, name)
    assert klass.__module__ == "safe_bedrock.errors"
    assert getattr(safe_bedrock, name) is klass
    assert getattr(__import__(old_home, fromlist=[name]), name) is klass


def test_allowlist_and_policy_errors_pickle_with_their_fields() -> None:
    with pytest.raises(AllowlistError) as caught:
        ModelAllowlist(["*0"], source="file models.toml")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is AllowlistError
    assert (copy.entry, copy.source, copy.problem, copy.fix, str(copy)) == (
        "*0",
        "file models.toml",
        caught.value.problem,
        caught.value.fix,
        str(caught.value),
    )
    with pytest.raises(PolicyError) as refused:
        ModelAllowlist.from_policy(
            '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": "*"}}'
        )
    policy_copy = pickle.loads(pickle.dumps(refused.value))
    assert type(policy_copy) is PolicyError
    error = refused.value
    assert (policy_copy.source, policy_copy.problem, policy_copy.statement, str(policy_copy)) == (
        error.source,
        error.problem,
        error.statement,
        str(error),
    )


# -- an empty allowlist warns at the user's line, from every entry point ---------------------------------


def _the_line_of(record: list[warnings.WarningMessage]) -> str:
    assert len(record) == 1, [str(w.message) for w in record]
    assert record[0].filename == __file__
    return linecache.getline(__file__, record[0].lineno).strip()


def test_an_empty_allowlist_in_code_warns_at_the_line_that_built_it() -> None:
    with pytest.warns(EmptyAllowlistWarning) as record:
        ModelAllowlist([])
    assert _the_line_of(record.list) == "ModelAllowlist([])"


def test_a_blank_variable_warns_at_the_line_that_read_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFE_BEDROCK_ALLOWED_MODELS", " , ")
    with pytest.warns(EmptyAllowlistWarning, match="env SAFE_BEDROCK_ALLOWED_MODELS") as record:
        ModelAllowlist.from_env()
    assert _the_line_of(record.list) == "ModelAllowlist.from_env()"


def test_an_empty_file_or_policy_warns_at_the_line_that_read_it(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text("allow = []\n")
    with pytest.warns(EmptyAllowlistWarning) as record:
        ModelAllowlist.from_file(path)
    assert _the_line_of(record.list) == "ModelAllowlist.from_file(path)"
    with pytest.warns(EmptyAllowlistWarning) as record:
        ModelAllowlist.from_policy({"Version": "2012-10-17", "Statement": []})
    assert (
        _the_line_of(record.list) == 'ModelAllowlist.from_policy({"Version": "2012-10-17", "Statement": []})'
    )


def test_a_client_with_allow_empty_warns_at_the_line_that_built_it() -> None:
    with FakeBedrock() as fake:
        raw = fake.client(config=NO_BOTOCORE_RETRIES)
        with pytest.warns(EmptyAllowlistWarning) as record:
            SafeBedrockClient(allow=[], client=raw)
    assert _the_line_of(record.list) == "SafeBedrockClient(allow=[], client=raw)"


@pytest.mark.parametrize(
    "target",
    [
        lambda: boto3.client("bedrock-runtime", region_name="us-east-1"),
        lambda: boto3.Session(region_name="us-east-1"),
    ],
    ids=["client", "session"],
)
def test_guard_with_allow_empty_warns_at_the_line_that_called_it(target: Callable[[], Any]) -> None:
    built = target()
    with pytest.warns(EmptyAllowlistWarning) as record:
        guard(built, allow=[])
    assert _the_line_of(record.list) == "guard(built, allow=[])"


def test_deciding_on_ids_from_many_regions_keeps_a_bounded_number_of_bindings() -> None:
    # An unbound allowlist binds to the region an ARN names; untrusted ARNs must not grow it without end.
    allowlist = ModelAllowlist(["anthropic.*"])
    for index in range(200):
        region = "us-" + "".join(chr(ord("a") + int(digit)) for digit in f"{index:03}") + "-1"
        ref = parse_model_id(f"arn:aws:bedrock:{region}::foundation-model/anthropic.x-v1:0", region=region)
        assert allowlist.decide(ref, action="bedrock:InvokeModel").allowed

    assert len(allowlist._by_region) <= 64
