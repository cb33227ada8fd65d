"""Broad entries are judged by what they cover, not by how many characters they spell.

A wildcard entry must name the provider before its first wildcard ('anthropic.*'), a geography and a
provider for cross-Region profiles ('us.anthropic.*'); ids that name no provider (application profiles,
provisioned, custom and imported models, prompts) must not start with a wildcard. Anything else covers the
models of every provider and needs allow_any=True, from every source. Denies may be as broad as they like.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from safe_bedrock._allowlist import ModelAllowlist
from safe_bedrock._ids import parse_model_id
from safe_bedrock._policy import INVOKE, iam_match
from safe_bedrock.errors import AllowlistError

if TYPE_CHECKING:
    from pathlib import Path

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
ACCOUNT = "123456789012"
ARN = "arn:aws:bedrock:us-east-1"

# (entry, what the problem says): each covers (nearly) every model while spelling some literal characters.
BROAD = [
    ("*0", "every provider"),
    ("*e*", "every provider"),
    ("*-*", "every provider"),
    ("?*", "every provider"),
    ("a*", "every provider"),  # amazon, anthropic, ai21: 'a' is not a provider
    ("anthropic*", "every provider"),  # no dot: 'anthropicx.' would match too
    ("profiles+*0", "every provider"),
    ("arn:aws:bedrock:*::foundation-model/*0", "every provider"),
    (f"{ARN}::foundation-model/*.*", "every provider"),
    ("us.*", "every provider or geography"),
    ("*.anthropic.*", "every provider or geography"),
    ("*.anthropic.claude-3-haiku-20240307-v1:0", "every provider or geography"),
    (f"{ARN}:*:inference-profile/*e*", "every provider or geography"),
    (f"{ARN}:{ACCOUNT}:application-inference-profile/*0", "every application-inference-profile"),
    (f"{ARN}:{ACCOUNT}:provisioned-model/*", "every provisioned-model"),
    (f"{ARN}:{ACCOUNT}:imported-model/?*", "every imported-model"),
    (f"{ARN}:{ACCOUNT}:custom-model/*/abc", "every custom-model"),
    (f"{ARN}:{ACCOUNT}:prompt/*1", "every prompt"),
]

ACCEPTED = [
    HAIKU,
    f"us.{HAIKU}",
    "anthropic.*",
    "anthropic.claude-3*",
    "us.anthropic.*",
    "global.anthropic.claude-sonnet-4*",
    "arn:aws:bedrock:*::foundation-model/anthropic.*",
    "arn:aws:bedrock:*:*:inference-profile/us.anthropic.*",  # wildcards in region and account are fine
    f"profiles+{HAIKU}",
    "profiles+anthropic.claude-3-haiku*",
    f"{ARN}::foundation-model/{HAIKU}",
    f"{ARN}:{ACCOUNT}:application-inference-profile/a1b2*",
]


def _policy_resource(entry: str) -> str:
    """The ARN a policy writes for an entry (policies hold ARNs, not bare ids)."""
    if entry.startswith("arn:"):
        return entry
    head = entry.split(":", maxsplit=1)[0]
    profile = head.count(".") >= 2 or head.split(".")[0] in {"us", "eu", "apac", "global"}
    kind = "inference-profile" if profile else "foundation-model"
    account = "*" if kind == "inference-profile" else ""
    return f"{ARN}:{account}:{kind}/{entry}"


def _from_code(entry: str, allow_any: bool, tmp_path: Path) -> ModelAllowlist:
    return ModelAllowlist([entry], allow_any=allow_any)


def _from_env(entry: str, allow_any: bool, tmp_path: Path) -> ModelAllowlist:
    environ = {"SAFE_BEDROCK_ALLOWED_MODELS": f"{HAIKU}, {entry}"}
    return ModelAllowlist.from_env(environ=environ, allow_any=allow_any)


def _from_toml(entry: str, allow_any: bool, tmp_path: Path) -> ModelAllowlist:
    path = tmp_path / "models.toml"
    path.write_text(f'allow = ["{HAIKU}"]\nstream_only = ["{entry}"]\n')
    return ModelAllowlist.from_file(path, allow_any=allow_any)


def _from_json(entry: str, allow_any: bool, tmp_path: Path) -> ModelAllowlist:
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"invoke_only": [entry]}))
    return ModelAllowlist.from_file(path, allow_any=allow_any)


def _from_policy(entry: str, allow_any: bool, tmp_path: Path) -> ModelAllowlist:
    statement = {"Effect": "Allow", "Action": INVOKE, "Resource": [_policy_resource(entry)]}
    return ModelAllowlist.from_policy(
        {"Version": "2012-10-17", "Statement": [statement]}, allow_any=allow_any
    )


SOURCES = {
    "code": _from_code,
    "env": _from_env,
    "toml": _from_toml,
    "json": _from_json,
    "policy": _from_policy,
}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("entry", "covers"), BROAD, ids=[b[0] for b in BROAD])
def test_an_entry_that_names_no_provider_is_refused_from_every_source(
    tmp_path: Path, source: str, entry: str, covers: str
) -> None:
    if source == "policy" and entry.startswith("profiles+"):
        pytest.skip("a policy has no profiles+ form")
    with pytest.raises(AllowlistError) as caught:
        SOURCES[source](entry, False, tmp_path)
    error = caught.value
    expected = entry if source != "policy" else _policy_resource(entry)
    assert error.entry == expected
    assert f"covers {'models of ' if 'provider' in covers else ''}{covers}" in error.problem
    assert "allow_any=True" in error.fix
    if "provider" in covers:
        assert "'anthropic.*'" in error.fix
    assert expected in str(error)
    SOURCES[source](entry, True, tmp_path)  # the escape hatch, when every model is really intended


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("entry", ACCEPTED)
def test_an_entry_that_pins_a_provider_or_is_exact_is_accepted_from_every_source(
    tmp_path: Path, source: str, entry: str
) -> None:
    if source == "policy" and entry.startswith("profiles+"):
        pytest.skip("a policy has no profiles+ form")
    allowlist = SOURCES[source](entry, False, tmp_path)
    assert allowlist.entries


@pytest.mark.parametrize("entry", [b[0] for b in BROAD if not b[0].startswith("profiles+")])
def test_a_deny_is_never_too_broad(entry: str) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": INVOKE, "Resource": f"{ARN}::foundation-model/{HAIKU}"},
            {"Effect": "Deny", "Action": INVOKE, "Resource": _policy_resource(entry)},
        ],
    }
    allowlist = ModelAllowlist.from_policy(policy).bind(region="us-east-1")
    haiku = parse_model_id(HAIKU, region="us-east-1")
    denied = iam_match(_policy_resource(entry), haiku.arn)
    assert allowlist.decide(haiku, action=INVOKE).allowed is not denied


def test_the_refusal_names_the_entry_why_and_the_fix() -> None:
    with pytest.raises(AllowlistError) as caught:
        ModelAllowlist(["*0"], source="env SAFE_BEDROCK_ALLOWED_MODELS")
    message = str(caught.value)
    assert message.startswith(
        "allowlist entry '*0' (env SAFE_BEDROCK_ALLOWED_MODELS): covers models of every"
    )
    assert "Fix: name the provider (e.g. 'anthropic.*'" in message
    assert "pass allow_any=True" in message
