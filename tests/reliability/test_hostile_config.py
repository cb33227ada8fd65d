"""Hostile allowlist files and IAM policy documents: a clear error naming the file and the problem, or an
allowlist that allows no more than the document says. Never a partial allowlist that allows more.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safe_bedrock import AllowlistError, ModelAllowlist, PolicyError
from safe_bedrock._ids import parse_model_id
from safe_bedrock._policy import INVOKE, INVOKE_STREAM
from tests.reliability.relhelpers import scaled

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
HAIKU_ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"
LLAMA = "meta.llama3-8b-instruct-v1:0"

# --- allowlist files -----------------------------------------------------------------------------------

FILES: list[tuple[str, str | bytes, str]] = [
    # (file name, content, a word the error must contain)
    ("deep.json", "[" * 100_000 + "]" * 100_000, "JSON"),
    ("deep-in-key.json", '{"allow": ' + "[" * 5_000 + "]" * 5_000 + "}", "JSON"),
    ("deep.toml", "allow = " + "[" * 5_000 + "]" * 5_000, "TOML"),
    ("huge.json", json.dumps({"allow": [HAIKU] * 200_000}), "MiB"),
    ("one-huge-entry.json", json.dumps({"allow": ["a" * 3_000_000]}), "MiB"),
    ("one-bad-entry-among-good.json", json.dumps({"allow": [HAIKU, 3, LLAMA]}), "list of strings"),
    ("nested-list.json", json.dumps({"allow": [[HAIKU]]}), "list of strings"),
    ("object-entry.json", json.dumps({"allow": [{"model": HAIKU}]}), "list of strings"),
    ("one-string.json", json.dumps({"allow": HAIKU}), "list of strings"),
    ("unsupported-key.toml", f'allow = ["{HAIKU}"]\nallow_any = true\n', "allow_any"),
    ("typo.toml", f'alow = ["{HAIKU}"]\n', "alow"),
    ("unclosed.toml", 'allow = ["a"\n', "TOML"),
    ("binary.json", b"\xff\xfe\x00\x01garbage", "UTF-8"),
    ("nul-in-entry.toml", f'allow = ["{HAIKU}\\u0000"]', "control character"),
    ("star.json", json.dumps({"allow": ["*"]}), "every model"),
    (
        "every-foundation-model.json",
        json.dumps({"allow": ["arn:aws:bedrock:*::foundation-model/*"]}),
        "every",
    ),
    ("star-after-good.toml", f'allow = ["{HAIKU}", "*"]', "every model"),
    ("traversal.json", json.dumps({"allow": [f"{HAIKU}/../x"]}), "traversal"),
    ("confusable.json", json.dumps({"allow": ["\u0430nthropic.claude-3-haiku-20240307-v1:0"]}), "non-ASCII"),
    ("empty.json", "", "JSON"),
    ("not-a-table.json", json.dumps([HAIKU]), "top level"),
    ("stream-only-star.toml", f'allow = ["{HAIKU}"]\nstream_only = ["*"]', "every model"),
    ("star-zero.json", json.dumps({"allow": [HAIKU, "*0"]}), "every provider"),
    ("star-e-star.toml", 'invoke_only = ["*e*"]', "every provider"),
    ("every-geography.toml", 'allow = ["*.anthropic.*"]', "every provider or geography"),
]


@pytest.mark.parametrize(("name", "content", "problem"), FILES, ids=[f[0] for f in FILES])
def test_a_hostile_allowlist_file_is_refused_naming_the_file_and_the_problem(
    tmp_path: Path, name: str, content: str | bytes, problem: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(AllowlistError) as caught:
        ModelAllowlist.from_file(path)
    message = str(caught.value)
    assert str(path) in message
    assert problem in message
    assert "Fix" in message or "fix" in message
    assert len(message) < 2_000  # says what is wrong; does not echo the document


def test_an_allowlist_file_that_is_missing_is_named(tmp_path: Path) -> None:
    with pytest.raises(AllowlistError, match=re.escape(str(tmp_path / "nope.toml"))):
        ModelAllowlist.from_file(tmp_path / "nope.toml")


# --- policy documents -------------------------------------------------------------------------------------


def _doc(**statement: object) -> dict[str, object]:
    base: dict[str, object] = {"Effect": "Allow", "Action": INVOKE, "Resource": HAIKU_ARN}
    base.update(statement)
    return {"Version": "2012-10-17", "Statement": [base]}


POLICIES: list[tuple[str, object, type[Exception], str]] = [
    (
        "condition on another key",
        _doc(Condition={"StringEquals": {"aws:RequestedRegion": "x"}}),
        PolicyError,
        "Condition",
    ),
    ("principal", _doc(Principal="*"), PolicyError, "Principal"),
    (
        "not-resource",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": INVOKE, "NotResource": HAIKU_ARN}],
        },
        PolicyError,
        "NotResource",
    ),
    ("effect in lower case", _doc(Effect="allow"), PolicyError, "Effect"),
    ("statement is a string", {"Version": "2012-10-17", "Statement": "x"}, PolicyError, "Statement"),
    ("resource is a number", _doc(Resource=5), PolicyError, "Resource"),
    ("resource list with a number", _doc(Resource=[HAIKU_ARN, 5]), PolicyError, "Resource"),
    ("empty resource list", _doc(Resource=[]), PolicyError, "Resource"),
    ("unknown key", _doc(Foo="bar"), PolicyError, "Foo"),
    ("sid is a number", _doc(Sid=5), PolicyError, "Sid"),
    ("deeply nested", "{" + '"a":{' * 3_000 + "}" * 3_001, PolicyError, "nested"),
    (
        "huge",
        json.dumps({"Version": "2012-10-17", "Statement": [_doc()["Statement"][0]] * 60_000}),
        PolicyError,
        "limit",
    ),  # type: ignore[index]
    ("resource star", _doc(Resource="*"), AllowlistError, "every model"),
    (
        "every foundation model",
        _doc(Resource="arn:aws:bedrock:*::foundation-model/*"),
        AllowlistError,
        "every",
    ),
    (
        "every model ending in 0",
        _doc(Resource="arn:aws:bedrock:*::foundation-model/*0"),
        AllowlistError,
        "every provider",
    ),
    (
        "every profile with an e",
        _doc(Resource="arn:aws:bedrock:*:*:inference-profile/*e*"),
        AllowlistError,
        "every provider or geography",
    ),
    (
        "policy variable",
        _doc(Resource="arn:aws:bedrock:us-east-1::foundation-model/${aws:username}"),
        AllowlistError,
        "characters no ARN has",
    ),
]


@pytest.mark.parametrize(("name", "document", "error", "problem"), POLICIES, ids=[p[0] for p in POLICIES])
def test_a_hostile_policy_is_refused_naming_the_problem(
    tmp_path: Path, name: str, document: object, error: type[Exception], problem: str
) -> None:
    path = tmp_path / "policy.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(error) as caught:
        ModelAllowlist.from_policy(path)
    message = str(caught.value)
    assert str(path) in message, name
    assert problem in message
    assert len(message) < 2_000


def test_a_policy_statement_with_a_duplicate_key_is_refused_rather_than_read_as_its_last_value() -> None:
    text = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Effect": "Allow", '
        f'"Action": "{INVOKE}", "Resource": "{HAIKU_ARN}"}}]}}'
    )
    with pytest.raises(PolicyError, match="duplicate"):
        ModelAllowlist.from_policy(text)


def test_an_allowlist_file_with_a_duplicate_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(f'{{"allow": ["{HAIKU}"], "allow": ["{LLAMA}"]}}')
    with pytest.raises(AllowlistError, match="duplicate"):
        ModelAllowlist.from_file(path)


# --- never more than the document allows: random policies against an independent oracle ------------------

MODELS = [
    HAIKU,
    LLAMA,
    "anthropic.claude-3-opus-20240229-v1:0",
    "amazon.nova-pro-v1:0",
    "meta.llama3-70b-instruct-v1:0",
]
REGIONS = ["us-east-1", "us-west-2"]
CANDIDATES = [f"arn:aws:bedrock:{region}::foundation-model/{model}" for region in REGIONS for model in MODELS]
RESOURCES = st.one_of(
    st.sampled_from(CANDIDATES),
    st.tuples(st.sampled_from(CANDIDATES), st.integers(min_value=50, max_value=70)).map(
        lambda p: p[0][: p[1]] + "*"
    ),
    st.sampled_from(
        [
            "arn:aws:bedrock:*::foundation-model/anthropic.*",
            "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-?b-instruct-v1:0",
            "arn:aws:bedrock:us-west-2::foundation-model/*",
            "arn:aws:bedrock:us-?ast-1::foundation-model/amazon.*",
        ]
    ),
)
ACTIONS = st.sampled_from(
    [
        INVOKE,
        INVOKE_STREAM,
        "bedrock:Invoke*",
        "bedrock:*",
        "*",
        "bedrock:Converse",
        "s3:GetObject",
        "BEDROCK:INVOKEMODEL",
    ]
)
STATEMENTS = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow", "Allow", "Deny"]),
        "Action": st.one_of(ACTIONS, st.lists(ACTIONS, min_size=1, max_size=3)),
        "Resource": st.one_of(RESOURCES, st.lists(RESOURCES, min_size=1, max_size=3)),
    }
)


def _iam(pattern: str, value: str, *, case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _as_list(value: object) -> list[str]:
    return [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]


def _oracle(statements: list[dict[str, Any]], *, action: str, arn: str) -> bool:
    """IAM evaluation, written here from the IAM documentation: explicit deny wins, default deny."""

    def matches(statement: dict[str, Any]) -> bool:
        return any(_iam(a, action, case=False) for a in _as_list(statement["Action"])) and any(
            _iam(r, arn, case=True) for r in _as_list(statement["Resource"])
        )

    if any(s["Effect"] == "Deny" and matches(s) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and matches(s) for s in statements)


@settings(max_examples=scaled(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements=st.lists(STATEMENTS, min_size=1, max_size=5))
def test_an_allowlist_read_from_a_policy_never_allows_what_the_policy_does_not(
    statements: list[dict[str, Any]],
) -> None:
    document = {"Version": "2012-10-17", "Statement": statements}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty result warns; that is the expected answer here
        try:
            allowlist = ModelAllowlist.from_policy(document, allow_any=False)
        except (AllowlistError, PolicyError):
            return  # refused loudly: nothing allowed at all
    for arn in CANDIDATES:
        ref = parse_model_id(arn, region="us-east-1")
        for action in (INVOKE, INVOKE_STREAM):
            if allowlist.decide(ref, action=action).allowed:
                assert _oracle(statements, action=action, arn=arn), (action, arn, statements)
