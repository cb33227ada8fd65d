"""The model catalog in the allowlist: an entry that names no known model warns (a typo?) with the closest
ids, is never suggested in a refusal, and still applies; known ids, profiles and patterns are quiet."""

from __future__ import annotations

import warnings

import pytest
from botocore.config import Config

from safe_bedrock import ModelAllowlist, ModelNotAllowedError, SafeBedrockClient
from safe_bedrock.errors import UnknownModelWarning
from safe_bedrock.testing import FakeBedrock

NO_RETRIES = Config(retries={"total_max_attempts": 1})

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Hi"}]}]


@pytest.mark.parametrize(
    "entries",
    [
        [HAIKU],
        [f"us.{HAIKU}", f"global.{HAIKU}"],
        ["anthropic.*", "us.meta.llama3-*"],
        [f"profiles+{HAIKU}"],
        [f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"],
        ["us.anthropic.claude-3-5-sonnet*"],  # the profile of a retired model: known, not a typo
        [
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
        ],  # not catalogued
    ],
)
def test_entries_that_name_known_models_are_quiet(entries: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ModelAllowlist(entries)


def test_a_typo_warns_at_the_users_line_with_the_closest_ids() -> None:
    with pytest.warns(UnknownModelWarning, match=f"closest: {HAIKU}") as caught:
        ModelAllowlist(["anthropic.claude-3-haiku-20240307-v1:9"])
    assert caught[0].filename == __file__
    assert "safe-bedrock catalog update" in str(caught[0].message)


def test_a_pattern_that_matches_no_known_model_warns() -> None:
    with pytest.warns(UnknownModelWarning, match="'anthropic.claude-9\\*'"):
        ModelAllowlist(["anthropic.claude-9*"])


def test_an_unknown_entry_still_applies_and_is_never_suggested() -> None:
    with FakeBedrock(models=["acme.house-model-v1:0"]) as fake:
        with pytest.warns(UnknownModelWarning):
            client = SafeBedrockClient(allow=["acme.house-model-v1:0"], client=fake.client(config=NO_RETRIES))
        assert client.converse(modelId="acme.house-model-v1:0", messages=MESSAGES)["output"]
        with pytest.raises(ModelNotAllowedError) as refused:
            client.converse(modelId="acme.house-model-v1:1", messages=MESSAGES)
        assert refused.value.closest == ()
        assert len(fake.requests) == 1


def test_a_pattern_over_dotted_versions_names_models_not_profiles() -> None:
    allowlist = ModelAllowlist(["deepseek.v3.*", "zai.glm-4.*"])
    assert allowlist.allows("deepseek.v3.2", region="us-east-1")
    assert allowlist.allows("zai.glm-4.7-flash", region="us-east-1")
    assert not allowlist.allows("us.deepseek.v3.2", region="us-east-1")


def test_a_test_added_models_family_holds_for_its_profiles_too() -> None:
    import json

    with FakeBedrock() as fake:
        fake.add_model("acme.llm-v1:0", family="mistral")
        client = fake.client(config=NO_RETRIES)
        for model_id in ("acme.llm-v1:0", "us.acme.llm-v1:0"):
            body = json.loads(client.invoke_model(modelId=model_id, body=b'{"prompt": "hi"}')["body"].read())
            assert "outputs" in body, model_id  # Mistral's answer shape
