"""`safe-bedrock check`: every verdict of every step, through the fake STS, IAM and Bedrock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safe_bedrock._allowlist import ENV_VAR
from safe_bedrock._ids import geographies
from safe_bedrock.errors import UnknownModelWarning
from tests.cli.clihelpers import Result, run
from tests.cli.conftest import Aws

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
US_HAIKU = "us.anthropic.claude-3-haiku-20240307-v1:0"


def check(
    aws: Aws, *args: str, env: dict[str, str] | None = None
) -> tuple[Result, dict[str, dict[str, str]]]:
    """Run check with --json and return the result and its steps by name."""
    result = run("check", *args, "--endpoint-url", aws.endpoint_url, "--json", env=env)
    document = json.loads(result.stdout)
    assert document["exit_code"] == result.code
    return result, {step["step"]: step for step in document["steps"]}


def verdicts(steps: dict[str, dict[str, str]]) -> dict[str, str]:
    return {name: step["verdict"] for name, step in steps.items()}


def test_everything_allowed_walks_every_step_in_order_and_exits_0(aws: Aws) -> None:
    result = run("check", HAIKU, "--endpoint-url", aws.endpoint_url)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Checking {HAIKU} in us-east-1 via {aws.endpoint_url}"
    names = [line.split()[1] for line in lines[1:-1]]
    assert names == ["credentials", "principal", "allowlist", "iam", "model", "call"]
    assert lines[-1] == "Answer: allowed (exit 0)"
    assert "arn:aws:sts::123456789012:assumed-role/app/session" in result.stdout
    # the simulation asked about the role behind the session, for both actions, on the exact ARN
    (simulate,) = [c for c in aws.plane.calls if c.operation == "SimulatePrincipalPolicy"]
    assert simulate.params["PolicySourceArn"] == "arn:aws:iam::123456789012:role/app"
    assert simulate.params["ResourceArns.member.1"] == f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}"
    assert {simulate.params["ActionNames.member.1"], simulate.params["ActionNames.member.2"]} == {
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
    }
    assert [r.operation for r in aws.server.requests] == ["CountTokens"]


def test_unknown_credentials_are_denied_and_later_steps_skipped(aws: Aws) -> None:
    aws.plane.set_identity(error="InvalidClientTokenId")
    result, steps = check(aws, HAIKU)
    assert result.code == 1
    assert steps["principal"]["verdict"] == "denied"
    assert "InvalidClientTokenId" in steps["principal"]["detail"]
    assert steps["principal"]["fix"]
    assert {steps[n]["verdict"] for n in ("iam policy", "model access", "call")} == {"skip"}


def test_expired_credentials_say_to_refresh(aws: Aws) -> None:
    aws.plane.set_identity(error="ExpiredToken")
    result, steps = check(aws, HAIKU, "--no-call")
    assert result.code == 1
    assert "aws sso login" in steps["principal"]["fix"]


def test_no_credentials_at_all_is_denied_with_how_to_configure(aws: Aws) -> None:
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    # (a loopback endpoint would get placeholder credentials: the fake does not check them)
    result = run("check", HAIKU, "--endpoint-url", "http://example.invalid", "--json", env=env)
    steps = {s["step"]: s for s in json.loads(result.stdout)["steps"]}
    assert result.code == 1
    assert steps["credentials"]["verdict"] == "denied"
    assert "aws configure" in steps["credentials"]["fix"]


def test_a_caller_that_may_not_simulate_is_unknown_then_the_call_decides(aws: Aws) -> None:
    aws.plane.set_simulation(permitted=False)
    result, steps = check(aws, HAIKU)
    assert result.code == 0
    assert steps["iam policy"]["verdict"] == "unknown"
    assert "iam:SimulatePrincipalPolicy" in steps["iam policy"]["detail"]
    assert steps["call"]["verdict"] == "ok"


def test_could_not_tell_without_the_call_exits_3(aws: Aws) -> None:
    aws.plane.set_simulation(permitted=False)
    result = run("check", HAIKU, "--no-call", "--endpoint-url", aws.endpoint_url)
    assert result.code == 3
    assert result.stdout.splitlines()[-1] == "Answer: could not tell (exit 3)"


def test_implicit_deny_points_at_the_policy_command(aws: Aws) -> None:
    aws.plane.set_simulation("implicitDeny")
    result, steps = check(aws, HAIKU, "--no-call")
    assert result.code == 1
    assert steps["iam policy"]["verdict"] == "denied"
    assert "no policy of arn:aws:iam::123456789012:role/app allows" in steps["iam policy"]["detail"]
    assert (
        steps["iam policy"]["fix"]
        == f"attach the policy from: safe-bedrock policy {HAIKU} --region us-east-1"
    )


def test_explicit_deny_says_allow_statements_do_not_help(aws: Aws) -> None:
    aws.plane.set_simulation("explicitDeny")
    result, steps = check(aws, HAIKU, "--no-call")
    assert result.code == 1
    assert steps["iam policy"]["detail"].startswith("explicit deny")
    assert "adding Allow statements does not help" in steps["iam policy"]["fix"]


def test_the_simulation_evaluates_the_policy_the_fake_enforces(aws: Aws) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "bedrock:InvokeModel",
                "Resource": f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}",
            }
        ],
    }
    aws.server.set_policy(policy)
    result, steps = check(aws, HAIKU, "--no-call")
    assert result.code == 1
    assert "bedrock:InvokeModelWithResponseStream" in steps["iam policy"]["detail"]
    result, steps = check(aws, HAIKU, "--actions", "invoke")
    assert result.code == 0
    assert verdicts(steps)["iam policy"] == "ok"
    assert verdicts(steps)["call"] == "ok"


def test_a_profile_is_simulated_with_its_routes_and_the_profile_context(aws: Aws) -> None:
    result, steps = check(aws, US_HAIKU, "--no-call")
    assert result.code == 0
    routed = len({*geographies()["us"], "us-east-1"})
    assert f"and {routed} routed model ARNs" in steps["iam policy"]["detail"]
    (simulate,) = [c for c in aws.plane.calls if c.operation == "SimulatePrincipalPolicy"]
    profile = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{US_HAIKU}"
    assert simulate.params["ResourceArns.member.1"] == profile
    assert simulate.params["ContextEntries.member.1.ContextKeyValues.member.1"] == profile
    # model access is asked for the foundation model behind the profile
    (availability,) = [c for c in aws.plane.calls if c.operation == "GetFoundationModelAvailability"]
    assert availability.params["modelId"] == HAIKU


@pytest.mark.parametrize(
    ("fields", "detail", "fix"),
    [
        ({"entitlement": "NOT_AVAILABLE"}, "is not granted in us-east-1", "#/modelaccess"),
        ({"region": "NOT_AVAILABLE"}, "is not offered in us-east-1", "cross-Region inference profile"),
        ({"authorization": "NOT_AUTHORIZED"}, "not authorized", "use-case"),
        ({"agreement": "PENDING"}, "still being processed", "wait"),
    ],
)
def test_model_access_problems_are_denied_with_where_to_fix_them(
    aws: Aws, fields: dict[str, str], detail: str, fix: str
) -> None:
    aws.plane.set_model_access(HAIKU, **fields)
    result, steps = check(aws, HAIKU, "--no-call")
    assert result.code == 1
    assert steps["model access"]["verdict"] == "denied"
    assert detail in steps["model access"]["detail"]
    assert fix in steps["model access"]["fix"]


def test_a_caller_that_may_not_read_model_access_is_unknown(aws: Aws) -> None:
    aws.plane.set_model_access(permitted=False)
    result, steps = check(aws, HAIKU, "--no-call")
    assert result.code == 3
    assert steps["model access"]["verdict"] == "unknown"


def test_model_access_not_granted_shows_in_the_real_call_with_the_typed_fix(aws: Aws) -> None:
    aws.plane.set_model_access(entitlement="NOT_AVAILABLE")
    aws.server.add_client_error("AccessDeniedException", variant="model_access_not_enabled")
    result = run("check", HAIKU, "--endpoint-url", aws.endpoint_url)
    assert result.code == 1
    call = next(line for line in result.stdout.splitlines() if line.split()[1:2] == ["call"])
    assert "ModelAccessNotEnabledError" in call
    assert "Answer: denied (exit 1)" in result.stdout


def test_the_allowlist_in_the_environment_is_checked_and_a_refusal_skips_the_call(aws: Aws) -> None:
    env = {"SAFE_BEDROCK_ALLOWED_MODELS": "anthropic.claude-3-haiku-20240307-v1:0-typo"}
    with pytest.warns(UnknownModelWarning, match="closest: anthropic.claude-3-haiku-20240307-v1:0"):
        result, steps = check(aws, HAIKU, env=env)
    assert result.code == 1
    assert steps["allowlist"]["verdict"] == "denied"
    assert "closest" not in steps["allowlist"]["detail"]  # an entry naming no model is never suggested
    assert steps["allowlist"]["fix"] == f"add {HAIKU!r} to env SAFE_BEDROCK_ALLOWED_MODELS"
    assert steps["call"]["verdict"] == "skip"
    assert aws.server.requests == []


@pytest.mark.parametrize("blank", ["", " , "])
def test_a_blank_env_allowlist_is_denied_not_skipped_and_no_model_is_called(aws: Aws, blank: str) -> None:
    result, steps = check(aws, HAIKU, env={ENV_VAR: blank})
    assert result.code == 1
    assert steps["allowlist"] == {
        "step": "allowlist",
        "verdict": "denied",
        "detail": f"{ENV_VAR} is set but empty: every model is refused",
        "fix": "list the models (comma separated) or unset it",
    }
    assert steps["call"]["verdict"] == "skip"
    assert aws.server.requests == []  # no model was called: only the read-only diagnosis reached AWS
    assert {call.operation for call in aws.plane.calls} == {
        "GetCallerIdentity",
        "SimulatePrincipalPolicy",
        "GetFoundationModelAvailability",
    }
    assert "EmptyAllowlistWarning" not in result.stderr


def test_a_blank_env_allowlist_reads_as_denied_in_text_too(aws: Aws) -> None:
    result = run("check", HAIKU, "--endpoint-url", aws.endpoint_url, env={ENV_VAR: ""})
    assert result.code == 1
    assert f"denied   allowlist     {ENV_VAR} is set but empty: every model is refused" in result.stdout
    assert "fix: list the models (comma separated) or unset it" in result.stdout
    assert result.stdout.splitlines()[-1] == "Answer: denied (exit 1)"
    assert result.stderr == ""
    assert aws.server.requests == []


def test_without_the_variable_or_a_file_the_allowlist_step_is_skipped(aws: Aws) -> None:
    _, steps = check(aws, HAIKU, "--no-call")
    assert steps["allowlist"]["verdict"] == "skip"
    assert f"{ENV_VAR} is not set" in steps["allowlist"]["detail"]


def test_an_allowlist_file_that_lists_nothing_is_denied(aws: Aws, tmp_path: Path) -> None:
    allow = tmp_path / "allow.toml"
    allow.write_text("allow = []\n")
    result, steps = check(aws, HAIKU, "--allow-file", str(allow))
    assert result.code == 1
    assert steps["allowlist"]["verdict"] == "denied"
    detail = f"the allowlist from file {allow} lists no model: every model is refused"
    assert steps["allowlist"]["detail"] == detail
    assert aws.server.requests == []


def test_an_allowlist_file_that_allows_the_model_is_ok(aws: Aws, tmp_path: Path) -> None:
    allow = tmp_path / "allow.toml"
    allow.write_text('allow = ["anthropic.claude-3-haiku*"]\n')
    result, steps = check(aws, HAIKU, "--allow-file", str(allow))
    assert result.code == 0
    assert steps["allowlist"]["verdict"] == "ok"
    assert "anthropic.claude-3-haiku*" in steps["allowlist"]["detail"]


def test_the_call_falls_back_to_converse_when_the_model_cannot_count_tokens(aws: Aws) -> None:
    aws.server.add_client_error(
        "ValidationException", "The provided model doesn't support counting tokens.", operation="CountTokens"
    )
    result, steps = check(aws, HAIKU)
    assert result.code == 0
    assert steps["call"]["detail"].startswith("Converse answered")
    converse = aws.server.requests[-1]
    assert converse.operation == "Converse"
    assert converse.json["inferenceConfig"] == {"maxTokens": 1}


def test_a_denied_call_is_explained_by_the_typed_error(aws: Aws) -> None:
    # An SCP denies everything: CountTokens (its own action: the check falls back), then Converse.
    aws.server.add_client_error("AccessDeniedException", variant="explicit_deny_scp", times=2)
    result, steps = check(aws, HAIKU)
    assert result.code == 1
    assert steps["call"]["verdict"] == "denied"
    assert steps["call"]["detail"].startswith("Converse: ExplicitDenyError")
    assert "bedrock:InvokeModel" in steps["call"]["detail"]
    assert steps["call"]["fix"]


def test_an_unreachable_endpoint_cannot_tell(aws: Aws) -> None:
    result = run("check", HAIKU, "--endpoint-url", "http://127.0.0.1:9", "--json")
    assert result.code == 3
    steps = {s["step"]: s for s in json.loads(result.stdout)["steps"]}
    assert steps["principal"]["verdict"] == "unknown"
    assert "could not reach" in steps["principal"]["detail"]


def test_an_invalid_model_id_is_a_usage_error(aws: Aws) -> None:
    result = run("check", "anthropic..claude", "--endpoint-url", aws.endpoint_url)
    assert result.code == 2
    assert result.stderr.startswith("safe-bedrock check: error: MODEL 'anthropic..claude' is not a model id")
    assert aws.plane.calls == []
