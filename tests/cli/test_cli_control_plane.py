"""The fake control plane through real boto3 clients, and the help text of every command."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.exceptions
import pytest

from safe_bedrock.cli import build_parser
from safe_bedrock.testing import FakeBedrockServer

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


def client(server: FakeBedrockServer, service: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="AKIAFAKECLITEST00000", aws_secret_access_key="x", region_name="us-east-1"
    )
    return session.client(service, endpoint_url=server.endpoint_url)


def test_sts_iam_and_bedrock_answer_in_their_own_protocols(server: FakeBedrockServer) -> None:
    sts, iam, bedrock = (client(server, s) for s in ("sts", "iam", "bedrock"))
    identity = sts.get_caller_identity()
    assert identity["Account"] == "123456789012"
    results = iam.simulate_principal_policy(
        PolicySourceArn="arn:aws:iam::123456789012:role/app",
        ActionNames=["bedrock:InvokeModel"],
        ResourceArns=[f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"],
    )["EvaluationResults"]
    assert [r["EvalDecision"] for r in results] == ["allowed"]
    availability = bedrock.get_foundation_model_availability(modelId=HAIKU)
    assert availability["entitlementAvailability"] == "AVAILABLE"
    assert [c.operation for c in server.control_plane.calls] == [
        "GetCallerIdentity",
        "SimulatePrincipalPolicy",
        "GetFoundationModelAvailability",
    ]
    # bedrock-runtime requests still go to the fake Bedrock core
    assert server.requests == []


def test_simulating_a_session_arn_is_refused_as_iam_does(server: FakeBedrockServer) -> None:
    iam = client(server, "iam")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        iam.simulate_principal_policy(
            PolicySourceArn="arn:aws:sts::123456789012:assumed-role/app/session",
            ActionNames=["bedrock:InvokeModel"],
        )
    assert caught.value.response["Error"]["Code"] == "InvalidInput"


def test_scripting_mistakes_fail_at_the_line_that_made_them(server: FakeBedrockServer) -> None:
    with pytest.raises(ValueError, match="InvalidClientTokenId"):
        server.control_plane.set_identity(error="Nope")
    with pytest.raises(ValueError, match="implicitDeny"):
        server.control_plane.set_simulation("deny")


@pytest.mark.parametrize("name", ["policy", "check", "invoke", "chat"])
def test_every_command_has_examples_and_exit_codes_in_its_help(name: str) -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    text = subparsers.choices[name].format_help()
    assert "examples:\n  safe-bedrock " + name in text
    assert "exit codes: 0 " in text
    assert "--json" in text
