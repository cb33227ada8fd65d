"""The model catalog: the packaged snapshot's facts, its lookups, a local copy, the control-plane refresh."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from safe_bedrock import _catalog
from safe_bedrock._catalog import CatalogError, from_control_plane, load, save
from safe_bedrock.cli import CommandError, build_parser
from safe_bedrock.cli._catalog_cmd import update
from tests.clienthelpers import without_aws_environment

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"  # served only through inference profiles
NEW = "anthropic.claude-future-20300101-v1:0"  # newer than the snapshot


# --- the packaged snapshot ----------------------------------------------------------------------------------


def test_the_snapshot_is_dated_sourced_and_broad() -> None:
    catalog = load()
    assert catalog.date == "2026-08-22"
    assert any("model-cards" in source for source in catalog.meta["sources"])
    assert len(catalog.models) > 100
    assert len(catalog.profiles) > 90


# The geographies and routes of AWS's "Geographic cross-Region inference" page as of 2025, a floor for
# the snapshot: a route missing here would make a least-privilege policy refuse a routed call.
KNOWN_ROUTES = {
    "us": ("us-east-1", "us-east-2", "us-west-1", "us-west-2"),
    "us-gov": ("us-gov-east-1", "us-gov-west-1"),
    "eu": ("eu-central-1", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-3"),
    "apac": ("ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2"),
    "jp": ("ap-northeast-1", "ap-northeast-3"),
    "au": ("ap-southeast-2", "ap-southeast-4"),
    "global": (),
}


def test_every_geography_routes_at_least_where_aws_documented() -> None:
    catalog = load()
    for geography, regions in KNOWN_ROUTES.items():
        assert set(regions) <= set(catalog.geographies[geography]), geography


def test_each_models_family_is_the_one_its_id_implies() -> None:
    # The builder guesses families of new models from their ids; the snapshot must agree with that guess.
    catalog = load()
    assert {m.id: m.family for m in catalog.models.values()} == {
        m.id: _catalog.family_of(m.id) for m in catalog.models.values()
    }
    assert {m.family for m in catalog.models.values()} == {*_catalog.FAMILIES, None}


def test_every_profile_serves_a_known_model() -> None:
    catalog = load()
    assert all(p.model_id in catalog.models for p in catalog.profiles.values())


# --- lookups ------------------------------------------------------------------------------------------------


def test_a_model_is_offered_on_demand_through_a_profile_or_not_at_all() -> None:
    catalog = load()
    assert catalog.offered(HAIKU, "us-east-1") == "ON_DEMAND"
    assert catalog.offered(SONNET_45, "us-east-1") == "INFERENCE_PROFILE"
    assert "ON_DEMAND" not in catalog.models[SONNET_45].inference_types
    assert catalog.offered(f"us.{SONNET_45}", "us-west-2") == "INFERENCE_PROFILE"
    assert catalog.offered(f"us.{SONNET_45}", "eu-west-1") is None
    assert catalog.offered("ai21.jamba-1-5-mini-v1:0", "eu-west-1") is None
    assert catalog.offered(NEW, "us-east-1") is None


def test_a_typo_gets_the_closest_real_ids() -> None:
    catalog = load()
    assert catalog.closest("anthropic.claude-3-haiku-20240307-v1:9")[0] == HAIKU
    assert catalog.closest(f"us.{SONNET_45[:-2]}")[0] == f"us.{SONNET_45}"
    assert catalog.closest("nothing-like-a-model") == ()


def test_lookups_by_profile_id_reach_the_model_it_serves() -> None:
    catalog = load()
    profile = catalog.profile(f"eu.{HAIKU}")
    assert profile is not None
    assert (profile.geography, profile.model_id) == ("eu", HAIKU)
    assert catalog.model(f"eu.{HAIKU}") == catalog.models[HAIKU]
    assert catalog.family(f"global.{SONNET_45}") == "anthropic"
    assert catalog.family("amazon.titan-embed-text-v2:0") == "titan_embed"
    assert catalog.family("amazon.nova-canvas-v1:0") is None
    assert f"us.{HAIKU}" in {p.id for p in catalog.profiles_of(HAIKU)}


def test_retired_and_legacy_models_say_so() -> None:
    catalog = load()
    retired = catalog.models["anthropic.claude-3-7-sonnet-20250219-v1:0"]
    assert (retired.lifecycle, retired.regions) == ("END_OF_LIFE", ())
    assert catalog.models["ai21.jamba-1-5-large-v1:0"].lifecycle == "LEGACY"


# --- a local copy -------------------------------------------------------------------------------------------


def test_the_environment_variable_points_at_a_local_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refreshed = from_control_plane({"us-east-1": ([_summary(NEW)], [])}, date="2030-01-02", base=load())
    path = tmp_path / "catalog.json"
    save(refreshed, path)
    monkeypatch.setenv(_catalog.ENV_VAR, str(path))
    assert load() == refreshed
    assert load().offered(NEW, "us-east-1") == "ON_DEMAND"
    monkeypatch.delenv(_catalog.ENV_VAR)
    assert NEW not in load().models


def test_a_saved_snapshot_reads_back_byte_for_byte(tmp_path: Path) -> None:
    save(load(), tmp_path / "copy.json")
    assert (tmp_path / "copy.json").read_bytes() == _catalog.PACKAGED.read_bytes()


@pytest.mark.parametrize("content", ["{not json", '{"meta": {}}', json.dumps({"meta": {"date": "x"}})])
def test_a_broken_local_copy_names_the_file_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content)
    monkeypatch.setenv(_catalog.ENV_VAR, str(path))
    with pytest.raises(CatalogError, match=r"broken\.json is not a safe-bedrock catalog.*catalog update"):
        load()


def test_a_missing_local_copy_says_how_to_make_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_catalog.ENV_VAR, str(tmp_path / "absent.json"))
    with pytest.raises(CatalogError, match=rf"absent\.json cannot be read.*unset {_catalog.ENV_VAR}"):
        load()


# --- the builder, fed replies parsed by botocore from the bedrock service model -----------------------------


def _summary(
    model_id: str, types: tuple[str, ...] = ("ON_DEMAND",), status: str = "ACTIVE"
) -> dict[str, object]:
    return {
        "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{model_id}",
        "modelId": model_id,
        "modelName": "Claude Future",
        "providerName": "Anthropic",
        "inputModalities": ["TEXT", "IMAGE"],
        "outputModalities": ["TEXT"],
        "responseStreamingSupported": True,
        "customizationsSupported": [],
        "inferenceTypesSupported": list(types),
        "modelLifecycle": {"status": status},
    }


def _profile(profile_id: str, regions: tuple[str, ...], kind: str = "SYSTEM_DEFINED") -> dict[str, object]:
    model = profile_id.partition(".")[2] or HAIKU  # an application profile's id is opaque
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    return {
        "inferenceProfileName": profile_id,
        "description": "Routes requests across regions",
        "createdAt": now,
        "updatedAt": now,
        "inferenceProfileArn": f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{profile_id}",
        "models": [{"modelArn": f"arn:aws:bedrock:{r}::foundation-model/{model}"} for r in regions],
        "inferenceProfileId": profile_id,
        "status": "ACTIVE",
        "type": kind,
    }


def _stubbed(region: str, models: list[dict[str, object]], profiles: list[dict[str, object]]) -> object:
    client = boto3.client("bedrock", region_name=region, aws_access_key_id="k", aws_secret_access_key="s")
    stubber = Stubber(client)  # validates each reply against botocore's bedrock service model
    stubber.add_response("list_foundation_models", {"modelSummaries": models})
    stubber.add_response(
        "list_inference_profiles", {"inferenceProfileSummaries": profiles}, {"typeEquals": "SYSTEM_DEFINED"}
    )
    stubber.activate()
    return client


def _replies(region: str, models: list[dict[str, object]], profiles: list[dict[str, object]]) -> tuple:
    client: object = _stubbed(region, models, profiles)
    listed = client.list_foundation_models()["modelSummaries"]  # type: ignore[attr-defined]
    pages = client.list_inference_profiles(typeEquals="SYSTEM_DEFINED")  # type: ignore[attr-defined]
    return listed, pages["inferenceProfileSummaries"]


def test_the_builder_reads_models_and_profiles_as_boto3_returns_them() -> None:
    replies = {
        "us-east-1": _replies(
            "us-east-1",
            [_summary(NEW, ("INFERENCE_PROFILE",)), _summary(HAIKU, ("ON_DEMAND", "PROVISIONED"), "LEGACY")],
            [
                _profile(f"us.{NEW}", ("us-east-1", "us-east-2", "us-west-2")),
                _profile("a1b2c3d4e5f6", ("us-east-1",), "APPLICATION"),
            ],
        ),
        "us-west-2": _replies("us-west-2", [_summary(NEW, ("INFERENCE_PROFILE",))], []),
    }
    catalog = from_control_plane(replies, date="2030-01-02")
    assert catalog.date == "2030-01-02"
    new = catalog.models[NEW]
    assert (new.regions, new.inference_types, new.family) == ((), ("INFERENCE_PROFILE",), "anthropic")
    assert catalog.offered(NEW, "us-east-1") == "INFERENCE_PROFILE"
    assert catalog.offered(NEW, "eu-west-1") is None
    assert catalog.models[HAIKU].lifecycle == "LEGACY"
    assert catalog.models[HAIKU].inference_types == ("ON_DEMAND", "PROVISIONED")
    assert catalog.profiles[f"us.{NEW}"].regions == ("us-east-1", "us-east-2", "us-west-2")
    assert "a1b2c3d4e5f6" not in catalog.profiles
    assert catalog.geographies["us"] == ("us-east-1", "us-east-2", "us-west-2")


def test_a_refresh_replaces_the_regions_asked_and_keeps_the_others() -> None:
    base = load()
    # us-east-1 now answers without Haiku: it is no longer on demand there, still everywhere else it was.
    catalog = from_control_plane({"us-east-1": ([], [])}, date="2030-01-02", base=base)
    assert catalog.offered(HAIKU, "us-east-1") != "ON_DEMAND"
    assert set(catalog.models[HAIKU].regions) == set(base.models[HAIKU].regions) - {"us-east-1"}
    assert catalog.profiles == base.profiles
    assert catalog.meta["refreshed_regions"] == ["us-east-1"]


# --- `safe-bedrock catalog update` (its clients stubbed with botocore's Stubber) ----------------------------


def test_update_writes_the_local_copy(tmp_path: Path) -> None:
    output = tmp_path / "catalog.json"
    clients = {
        "us-east-1": _stubbed(
            "us-east-1", [_summary(NEW)], [_profile(f"us.{NEW}", ("us-east-1", "us-west-2"))]
        ),
        "eu-west-1": _stubbed("eu-west-1", [], []),
    }
    written = update(["us-east-1", "eu-west-1"], str(output), clients.__getitem__)
    assert load(output) == written
    assert written.offered(f"us.{NEW}", "us-west-2") == "INFERENCE_PROFILE"
    assert written.meta["refreshed_regions"] == ["eu-west-1", "us-east-1"]
    assert len(written.models) > 100  # merged over the snapshot


def test_update_names_the_missing_permissions_when_access_is_denied(tmp_path: Path) -> None:
    client = boto3.client(
        "bedrock", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    stubber = Stubber(client)
    stubber.add_client_error("list_foundation_models", "AccessDeniedException", "not authorized", 403)
    stubber.activate()
    with pytest.raises(CommandError) as caught:
        update(["us-east-1"], str(tmp_path / "c.json"), lambda _: client)
    assert caught.value.kind == "denied"  # exit 1, like every refusal
    assert "bedrock:ListFoundationModels" in caught.value.fix
    assert not (tmp_path / "c.json").exists()


def test_the_command_without_credentials_fails_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    without_aws_environment(monkeypatch)
    parser = build_parser(["safe_bedrock.cli._catalog_cmd"])
    args = parser.parse_args(
        ["catalog", "update", "--region", "us-east-1", "--output", str(tmp_path / "c.json")]
    )
    assert args._run(args) == 2
    err = capsys.readouterr().err
    assert "no AWS credentials found" in err
    assert "fix: configure credentials" in err
    assert "Traceback" not in err
    assert not (tmp_path / "c.json").exists()
