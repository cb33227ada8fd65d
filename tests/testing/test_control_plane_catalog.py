"""The fake's Bedrock control plane answers from the model catalog, per region, through boto3's `bedrock`
client; and `safe-bedrock catalog update` refreshes a local copy from it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from safe_bedrock._catalog import load
from safe_bedrock.testing import FakeBedrockServer
from tests.cli.clihelpers import run

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
RETIRED = "anthropic.claude-3-5-sonnet-20240620-v1:0"


@pytest.fixture
def server() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as server:
        yield server


def control(server: FakeBedrockServer, region: str = "us-east-1") -> Any:
    return server.session(region).client("bedrock", endpoint_url=server.endpoint_url)


def test_list_foundation_models_holds_what_the_region_offers_and_not_what_retired(
    server: FakeBedrockServer,
) -> None:
    summaries = control(server).list_foundation_models()["modelSummaries"]
    ids = {summary["modelId"] for summary in summaries}
    assert HAIKU in ids
    assert RETIRED not in ids
    catalog = load()
    assert ids == {m for m in catalog.models if catalog.offered(m, "us-east-1")}
    haiku = next(s for s in summaries if s["modelId"] == HAIKU)
    assert haiku["modelArn"] == f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"
    assert haiku["modelLifecycle"]["status"] == catalog.models[HAIKU].lifecycle


def test_a_model_a_test_adds_is_listed_and_described(server: FakeBedrockServer) -> None:
    server.add_model("acme.house-model-v1:0", family="llama")
    client = control(server)
    assert "acme.house-model-v1:0" in {
        s["modelId"] for s in client.list_foundation_models()["modelSummaries"]
    }
    details = client.get_foundation_model(modelIdentifier="acme.house-model-v1:0")["modelDetails"]
    assert details["inferenceTypesSupported"] == ["ON_DEMAND"]


def test_get_foundation_model_of_an_unknown_id_is_bedrocks_validation_error(
    server: FakeBedrockServer,
) -> None:
    with pytest.raises(ClientError) as caught:
        control(server).get_foundation_model(modelIdentifier="anthropic.claude-3-haiku-20240307-v1:9")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["Error"]["Message"] == "The provided model identifier is invalid."


def test_inference_profiles_are_those_that_route_from_the_region(server: FakeBedrockServer) -> None:
    us = {
        p["inferenceProfileId"]
        for p in control(server).list_inference_profiles()["inferenceProfileSummaries"]
    }
    eu = {
        p["inferenceProfileId"]
        for p in control(server, "eu-west-1").list_inference_profiles()["inferenceProfileSummaries"]
    }
    assert f"us.{HAIKU}" in us
    assert f"us.{HAIKU}" not in eu
    assert f"eu.{HAIKU}" in eu
    profile = control(server).get_inference_profile(inferenceProfileIdentifier=f"us.{HAIKU}")
    assert profile["type"] == "SYSTEM_DEFINED"
    assert f"arn:aws:bedrock:us-west-2::foundation-model/{HAIKU}" in {
        m["modelArn"] for m in profile["models"]
    }


def test_catalog_update_writes_a_local_copy_from_the_control_plane(
    server: FakeBedrockServer, tmp_path: Path
) -> None:
    server.add_model("acme.house-model-v1:0")
    output = tmp_path / "catalog.json"
    result = run(
        "catalog",
        "update",
        "--region",
        "us-east-1",
        "--endpoint-url",
        server.endpoint_url,
        "--output",
        str(output),
    )
    assert result.code == 0, result.stderr
    refreshed = load(output)
    assert "acme.house-model-v1:0" in refreshed.models
    assert refreshed.offered(HAIKU, "us-east-1") == "ON_DEMAND"
    assert refreshed.profile(f"us.{HAIKU}") is not None
    assert json.loads(output.read_text())["meta"]["date"] == refreshed.date
    assert [call.operation for call in server.control_plane.calls] == [
        "ListFoundationModels",
        "ListInferenceProfiles",
    ]
