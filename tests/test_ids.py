"""Model identifiers: every kind Bedrock accepts parses to a canonical ARN; everything else is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safe_bedrock._ids import (
    ModelKind,
    base_model_id,
    geographies,
    geography,
    match_key,
    parse_model_id,
    profile_routes,
)
from safe_bedrock._service import max_model_id_length, partition_of
from safe_bedrock.errors import InvalidModelIdError, SafeBedrockError

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
ACCOUNT = "123456789012"


@pytest.mark.parametrize(
    ("model_id", "kind", "region", "account", "resource_id", "arn"),
    [
        (
            HAIKU,
            ModelKind.FOUNDATION_MODEL,
            "us-east-1",
            "",
            HAIKU,
            f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}",
        ),
        (
            f"arn:aws:bedrock:eu-west-1::foundation-model/{HAIKU}",
            ModelKind.FOUNDATION_MODEL,
            "eu-west-1",
            "",
            HAIKU,
            f"arn:aws:bedrock:eu-west-1::foundation-model/{HAIKU}",
        ),
        (
            f"arn:aws:bedrock:::foundation-model/{HAIKU}",
            ModelKind.FOUNDATION_MODEL,
            "",
            "",
            HAIKU,
            f"arn:aws:bedrock:::foundation-model/{HAIKU}",
        ),
        (
            f"us.{HAIKU}",
            ModelKind.INFERENCE_PROFILE,
            "us-east-1",
            "",
            f"us.{HAIKU}",
            f"arn:aws:bedrock:us-east-1::inference-profile/us.{HAIKU}",
        ),
        (
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/global.{HAIKU}",
            ModelKind.INFERENCE_PROFILE,
            "us-east-1",
            ACCOUNT,
            f"global.{HAIKU}",
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/global.{HAIKU}",
        ),
        (
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/a1b2c3d4e5f6",
            ModelKind.APPLICATION_INFERENCE_PROFILE,
            "us-east-1",
            ACCOUNT,
            "a1b2c3d4e5f6",
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/a1b2c3d4e5f6",
        ),
        (
            f"arn:aws:bedrock:us-west-2:{ACCOUNT}:provisioned-model/a1b2c3d4e5f6",
            ModelKind.PROVISIONED_MODEL,
            "us-west-2",
            ACCOUNT,
            "a1b2c3d4e5f6",
            f"arn:aws:bedrock:us-west-2:{ACCOUNT}:provisioned-model/a1b2c3d4e5f6",
        ),
        (
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:custom-model/amazon.titan-text-express-v1/a1b2c3d4e5f6",
            ModelKind.CUSTOM_MODEL,
            "us-east-1",
            ACCOUNT,
            "amazon.titan-text-express-v1/a1b2c3d4e5f6",
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:custom-model/amazon.titan-text-express-v1/a1b2c3d4e5f6",
        ),
        (
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:custom-model-deployment/a1b2c3d4e5f6",
            ModelKind.CUSTOM_MODEL_DEPLOYMENT,
            "us-east-1",
            ACCOUNT,
            "a1b2c3d4e5f6",
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:custom-model-deployment/a1b2c3d4e5f6",
        ),
        (
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:imported-model/a1b2c3d4e5f6",
            ModelKind.IMPORTED_MODEL,
            "us-east-1",
            ACCOUNT,
            "a1b2c3d4e5f6",
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:imported-model/a1b2c3d4e5f6",
        ),
        (
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:prompt/PROMPT1234",
            ModelKind.PROMPT,
            "us-east-1",
            ACCOUNT,
            "PROMPT1234",
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:prompt/PROMPT1234",
        ),
        (
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:prompt/PROMPT1234:3",
            ModelKind.PROMPT,
            "us-east-1",
            ACCOUNT,
            "PROMPT1234:3",
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:prompt/PROMPT1234:3",
        ),
        (
            f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/my-endpoint-1",
            ModelKind.SAGEMAKER_ENDPOINT,
            "us-east-1",
            ACCOUNT,
            "my-endpoint-1",
            f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/my-endpoint-1",
        ),
    ],
)
def test_every_kind_bedrock_invokes_parses_to_its_canonical_arn(  # noqa: PLR0917 - one per column
    model_id: str, kind: ModelKind, region: str, account: str, resource_id: str, arn: str
) -> None:
    ref = parse_model_id(model_id, region="us-east-1")
    assert ref.raw == model_id
    assert ref.kind is kind
    assert ref.partition == "aws"
    assert ref.region == region
    assert ref.account == account
    assert ref.resource_id == resource_id
    assert ref.arn == arn
    assert str(ref) == arn


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("us-east-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
        ("eu-isoe-west-1", "aws-iso-e"),
    ],
)
def test_bare_ids_resolve_in_the_region_and_its_partition(region: str, partition: str) -> None:
    assert partition_of(region) == partition
    ref = parse_model_id(HAIKU, region=region)
    assert ref.arn == f"arn:{partition}:bedrock:{region}::foundation-model/{HAIKU}"


@pytest.mark.parametrize("prefix", ["us", "eu", "apac", "global", "us-gov", "jp", "au", "ca"])
def test_any_geography_prefix_makes_a_system_inference_profile(prefix: str) -> None:
    ref = parse_model_id(f"{prefix}.{HAIKU}", region="us-east-1")
    assert ref.kind is ModelKind.INFERENCE_PROFILE
    assert geography(ref) == prefix
    assert base_model_id(ref) == HAIKU


def test_a_bare_profile_id_takes_the_account_when_the_client_knows_it() -> None:
    ref = parse_model_id(f"us.{HAIKU}", region="us-east-1", account=ACCOUNT)
    assert ref.arn == f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{HAIKU}"


def test_system_profiles_match_without_their_account() -> None:
    bare = parse_model_id(f"us.{HAIKU}", region="us-east-1")
    full = parse_model_id(
        f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{HAIKU}", region="us-east-1"
    )
    assert match_key(bare) == match_key(full) == bare.arn
    app = parse_model_id(
        f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/a1b2c3d4e5f6", region="us-east-1"
    )
    assert match_key(app) == app.arn  # application profiles belong to one account: it stays


def test_arn_partitions_beyond_the_well_known_ones_parse() -> None:
    ref = parse_model_id(
        f"arn:aws-us-gov:bedrock:us-gov-west-1::foundation-model/{HAIKU}", region="us-east-1"
    )
    assert ref.partition == "aws-us-gov"
    assert ref.region == "us-gov-west-1"


@pytest.mark.parametrize(
    ("model_id", "problem"),
    [
        (None, "missing"),
        (b"anthropic.claude-v2", "bytes"),
        (42, "int"),
        (["anthropic.claude-v2"], "list"),
        ("", "empty"),
        ("   ", "whitespace"),
        (" anthropic.claude-v2", "whitespace"),
        ("anthropic.claude-v2\n", "control character"),
        ("anthropic.claude\x00-v2", "control character"),
        ("anthropic. claude-v2", "whitespace"),
        ("anthropic.claude-v2%3A0", "URL-encoded"),
        ("arn%3Aaws%3Abedrock", "URL-encoded"),
        ("anthropic%2Fclaude", "URL-encoded"),
        ("../anthropic.claude-v2", "traversal"),
        ("anthropic.claude-v2/../x", "traversal"),
        ("foo bar/../x", "whitespace"),
        ("anthropic/claude-v2", "not an ARN"),
        ("\u0430nthropic.claude-v2", "CYRILLIC SMALL LETTER A"),
        ("anthropic.cl\u0430ude-v2", "non-ASCII"),
        ("anthropic\uff0eclaude-v2", "non-ASCII"),
        ("x" * 3000, "over the maximum"),
        ("Anthropic.Claude-v2", "lower case"),
        ("abc123", "not a foundation-model id"),
        ("anthropic.claude-v2;rm", "not allowed"),
        ("arn:aws:s3:us-east-1::foundation-model/anthropic.claude-v2", "service 's3'"),
        ("arn:gcp:bedrock:us-east-1::foundation-model/anthropic.claude-v2", "partition 'gcp'"),
        ("arn:aws:bedrock:cn-north-1::foundation-model/anthropic.claude-v2", "belongs to partition 'aws-cn'"),
        ("arn:aws:bedrock:moon-1::foundation-model/anthropic.claude-v2", "region"),
        ("arn:aws:bedrock:us-east-1:123:provisioned-model/a1b2c3d4e5f6", "12-digit"),
        (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:foundation-model/anthropic.claude-v2", "no account"),
        ("arn:aws:bedrock:::provisioned-model/a1b2c3d4e5f6", "region"),
        ("arn:aws:bedrock:us-east-1::model/anthropic.claude-v2", "resource type"),
        ("arn:aws:bedrock:us-east-1::foundation-model", "type/id"),
        ("arn:aws:bedrock:us-east-1", "six"),
        (f"arn:aws:bedrock:us-east-1:{ACCOUNT}:provisioned-model/UPPER", "shape"),
        (f"arn:aws-cn:sagemaker:cn-north-1:{ACCOUNT}:endpoint/e", "botocore"),
    ],
)
def test_bad_model_ids_are_refused_naming_what_is_wrong(model_id: object, problem: str) -> None:
    with pytest.raises(InvalidModelIdError) as caught:
        parse_model_id(model_id, region="us-east-1")
    error = caught.value
    assert problem in error.problem
    assert error.fix
    assert error.model_id == model_id
    assert isinstance(error, ValueError)
    assert isinstance(error, SafeBedrockError)


def test_the_length_limit_is_the_service_models() -> None:
    assert max_model_id_length() == 2048


def test_the_client_configuration_itself_is_checked() -> None:
    with pytest.raises(ValueError, match="region"):
        parse_model_id(HAIKU, region="not a region")
    with pytest.raises(ValueError, match="partition"):
        parse_model_id(HAIKU, region="us-east-1", partition="aws-cn")
    with pytest.raises(ValueError, match="account"):
        parse_model_id(HAIKU, region="us-east-1", account="12")


def test_a_str_subclass_is_refused() -> None:
    class Sneaky(str):
        __slots__ = ()

    with pytest.raises(InvalidModelIdError, match="subclass"):
        parse_model_id(Sneaky(HAIKU), region="us-east-1")


def test_parsing_is_cached_per_input() -> None:
    first = parse_model_id(HAIKU, region="us-east-1")
    assert parse_model_id(HAIKU, region="us-east-1") is first
    assert parse_model_id(HAIKU, region="us-west-2") is not first


def test_a_geographic_profile_routes_to_the_model_in_every_region_of_its_geography() -> None:
    ref = parse_model_id(f"eu.{HAIKU}", region="eu-west-1")
    routes = profile_routes(ref)
    assert routes == tuple(
        f"arn:aws:bedrock:{region}::foundation-model/{HAIKU}" for region in sorted(geographies()["eu"])
    )


def test_a_profile_called_from_outside_its_table_also_routes_to_the_source_region() -> None:
    ref = parse_model_id(f"us.{HAIKU}", region="ca-central-1")
    assert f"arn:aws:bedrock:ca-central-1::foundation-model/{HAIKU}" in profile_routes(ref)


def test_a_global_profile_routes_to_the_region_less_model_arn_and_its_source_region() -> None:
    ref = parse_model_id(f"global.{HAIKU}", region="us-east-1")
    assert profile_routes(ref) == (
        f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}",
        f"arn:aws:bedrock:::foundation-model/{HAIKU}",
    )


def test_routes_of_other_kinds() -> None:
    fm = parse_model_id(HAIKU, region="us-east-1")
    assert profile_routes(fm) == (fm.arn,)
    app = parse_model_id(
        f"arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/a1b2c3d4e5f6", region="us-east-1"
    )
    assert profile_routes(app) == ()
    with pytest.raises(LookupError, match="'ca'"):
        profile_routes(parse_model_id(f"ca.{HAIKU}", region="ca-central-1"))


_fm_ids = st.from_regex(r"[a-z][a-z0-9-]{0,10}\.[a-z][a-z0-9-]{1,20}(:[0-9])?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(_fm_ids, st.sampled_from(["us-east-1", "eu-west-3", "cn-north-1", "us-gov-east-1"]))
def test_a_canonical_arn_parses_back_to_the_same_reference(model_id: str, region: str) -> None:
    ref = parse_model_id(model_id, region=region)
    again = parse_model_id(ref.arn, region="us-east-1")
    assert (again.kind, again.partition, again.region, again.resource_id, again.arn) == (
        ref.kind,
        ref.partition,
        ref.region,
        ref.resource_id,
        ref.arn,
    )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_either_parses_to_a_plain_ascii_reference_or_is_refused(text: str) -> None:
    try:
        ref = parse_model_id(text, region="us-east-1")
    except InvalidModelIdError:
        return
    assert ref.arn.isascii()
    assert not any(char.isspace() or char in "%\\" for char in ref.arn)
    assert ".." not in ref.arn


def test_context_length_variants_parse_in_both_forms() -> None:
    bare = parse_model_id("anthropic.claude-v2:0:100k", region="us-east-1")
    assert parse_model_id(bare.arn, region="us-east-1").resource_id == "anthropic.claude-v2:0:100k"


def test_every_model_and_profile_id_in_the_catalog_parses_as_its_kind() -> None:
    # Real ids carry version dots inside the model name (deepseek.v3.2, zai.glm-4.7-flash); recorded
    # Bedrock traffic calls them, so they must neither be refused as malformed nor read as profiles.
    from safe_bedrock._catalog import load

    catalog = load()
    for model_id in catalog.models:
        assert parse_model_id(model_id, region="us-east-1").kind is ModelKind.FOUNDATION_MODEL, model_id
    for profile_id in catalog.profiles:
        assert parse_model_id(profile_id, region="us-east-1").kind is ModelKind.INFERENCE_PROFILE, profile_id
    assert parse_model_id("us.deepseek.v3.2", region="us-east-1").kind is ModelKind.INFERENCE_PROFILE
