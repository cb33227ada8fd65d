"""Rendering errors as one line plus the fix (or JSON), and the exit codes, for every command."""

from __future__ import annotations

import argparse
import contextlib
import io
import json

import botocore.exceptions as bce
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safe_bedrock.cli import CommandError
from safe_bedrock.cli._output import (
    EXIT_DENIED,
    EXIT_INTERRUPTED,
    EXIT_SOFTWARE,
    EXIT_USAGE,
    Output,
    describe,
    run_command,
)
from safe_bedrock.errors import (
    InvalidModelIdError,
    MissingPermissionError,
    ModelNotAllowedError,
    ThrottlingError,
)
from safe_bedrock.testing import FakeBedrockServer
from tests.cli.clihelpers import run_process

HAIKU_ID = "anthropic.claude-3-haiku-20240307-v1:0"
ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU_ID}"


def render(exc: BaseException, *, json_mode: bool = False) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()

    def body(out: Output) -> int:
        raise exc

    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = run_command(argparse.Namespace(command="invoke", json=json_mode), body)
    return code, stdout.getvalue(), stderr.getvalue()


def test_a_refusal_by_the_allowlist_names_the_source_and_the_entry_to_add() -> None:
    exc = ModelNotAllowedError(
        code="AccessDeniedException",
        message="not allowed",
        operation="ConverseStream",
        model_id="anthropic.claude-3-haiku-20240307-v1:0",
        model_arn=ARN,
        allowlist_source="env SAFE_BEDROCK_ALLOWED_MODELS",
        closest=("anthropic.claude-3-haiku-20240307-v2:0",),
        entry_to_add="anthropic.claude-3-haiku-20240307-v1:0",
        fix="add `anthropic.claude-3-haiku-20240307-v1:0` to env SAFE_BEDROCK_ALLOWED_MODELS",
    )
    code, stdout, stderr = render(exc)
    assert code == EXIT_DENIED
    assert stdout == ""
    first, fix = stderr.splitlines()
    assert first == (
        "safe-bedrock invoke: denied: refused by the allowlist (allowlist from env "
        "SAFE_BEDROCK_ALLOWED_MODELS): anthropic.claude-3-haiku-20240307-v1:0 is not allowed; "
        "closest allowed: anthropic.claude-3-haiku-20240307-v2:0"
    )
    assert fix == "  fix: add `anthropic.claude-3-haiku-20240307-v1:0` to env SAFE_BEDROCK_ALLOWED_MODELS"


def test_a_service_error_in_json_carries_its_fields() -> None:
    exc = MissingPermissionError(
        code="AccessDeniedException",
        message="User: x is not authorized\nto perform: bedrock:InvokeModel",
        operation="Converse",
        model_arn=ARN,
        region="us-east-1",
        action="bedrock:InvokeModel",
        resource=ARN,
        fix="attach a policy allowing bedrock:InvokeModel on " + ARN,
        suggested_policy={"Version": "2012-10-17", "Statement": []},
    )
    code, stdout, stderr = render(exc, json_mode=True)
    assert code == EXIT_DENIED
    assert stderr == ""
    error = json.loads(stdout)["error"]
    assert error["type"] == "MissingPermissionError"
    assert error["kind"] == "denied"
    assert error["action"] == "bedrock:InvokeModel"
    assert error["suggested_policy"] == {"Version": "2012-10-17", "Statement": []}
    assert "\n" not in error["summary"]


def test_a_transient_failure_is_failed_not_denied() -> None:
    exc = ThrottlingError(code="ThrottlingException", message="Too many requests", operation="Converse")
    problem = describe(exc)
    assert problem.kind == "failed"
    assert problem.exit_code == EXIT_DENIED


@pytest.mark.parametrize(
    ("exc", "code", "summary", "fix"),
    [
        (
            InvalidModelIdError(model_id="a b", problem="contains whitespace", fix="remove it"),
            EXIT_USAGE,
            "invalid model id 'a b': contains whitespace",
            "remove it",
        ),
        (CommandError("no models", fix="pass some"), EXIT_USAGE, "no models", "pass some"),
        (bce.NoCredentialsError(), EXIT_DENIED, "no AWS credentials found", "aws configure"),
        (bce.NoRegionError(), EXIT_USAGE, "no AWS region configured", "--region"),
        (
            bce.EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
            EXIT_DENIED,
            "could not reach",
            "fake server",
        ),
        (
            FileNotFoundError(2, "No such file or directory", "allow.toml"),
            EXIT_USAGE,
            "allow.toml: No such",
            "",
        ),
        (json.JSONDecodeError("Expecting value", "x", 0), EXIT_USAGE, "not valid JSON: Expecting value", ""),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "interrupted", ""),
        (
            RuntimeError("boom"),
            EXIT_SOFTWARE,
            "unexpected error: RuntimeError: boom",
            "a bug in safe-bedrock",
        ),
    ],
)
def test_every_kind_of_error_gets_its_exit_code_and_one_line(
    exc: BaseException, code: int, summary: str, fix: str
) -> None:
    problem = describe(exc)
    assert problem.exit_code == code
    assert problem.summary.startswith(summary)
    assert fix in problem.fix


def test_run_command_turns_an_unexpected_exception_into_one_line_and_exit_70(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def body(out: Output) -> int:
        raise ZeroDivisionError("division by zero")

    code = run_command(argparse.Namespace(command="chat", json=False), body)
    captured = capsys.readouterr()
    assert code == EXIT_SOFTWARE
    assert captured.err.startswith("safe-bedrock chat: internal error: unexpected error: ZeroDivisionError")
    assert "this is a bug in safe-bedrock" in captured.err
    assert "http" not in captured.err  # no address to report to: the message says what to include instead
    assert len(captured.err.splitlines()) == 2


def test_a_client_error_from_another_service_keeps_code_and_operation() -> None:
    exc = bce.ClientError({"Error": {"Code": "AccessDenied", "Message": "nope"}}, "SimulatePrincipalPolicy")
    problem = describe(exc)
    assert problem.summary == "AccessDenied on SimulatePrincipalPolicy: nope"
    assert problem.kind == "denied"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200), st.sampled_from([ValueError, OSError, RuntimeError, KeyError]))
def test_describe_never_raises_and_always_says_one_line(message: str, kind: type[Exception]) -> None:
    problem = describe(kind(message))
    assert "\n" not in problem.summary
    assert "\n" not in problem.fix
    assert problem.exit_code in {EXIT_USAGE, EXIT_SOFTWARE}


def test_the_installed_command_runs_as_a_process(server: FakeBedrockServer) -> None:
    # Smoke: the console entry point and `python -m safe_bedrock.cli`, as a user runs them.
    shown = run_process("--help")
    called = run_process("invoke", HAIKU_ID, "Hi", "--endpoint-url", server.endpoint_url, "--json")

    assert shown.code == 0
    assert "fake-server" in shown.stdout
    assert called.code == 0, called.stderr
    assert [request.model_id for request in server.requests] == [HAIKU_ID]
