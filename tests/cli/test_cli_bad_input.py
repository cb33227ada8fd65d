"""A user's mistake is a usage error naming the argument and the fix, on every command, in text and --json.

Exit code 2 and kind "usage" for bad input (region, endpoint URL, model id, file, flag); exit code 70 only
for a real defect, and then with what to include in a report, never an address to send it to.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from safe_bedrock._allowlist import ENV_VAR
from tests.cli.clihelpers import Result, run

if TYPE_CHECKING:
    from pathlib import Path

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
LOCAL = "http://127.0.0.1:9"  # never reached: every case below stops before a request
COMMANDS = {
    "invoke": ("invoke", HAIKU, "Hi"),
    "chat": ("chat", HAIKU),
    "check": ("check", HAIKU),
    "policy": ("policy", HAIKU),
    "fake-server": ("fake-server", "--port", "0"),
}
AWS_COMMANDS = ("invoke", "chat", "check")


def _argv(command: str, *extra: str, model: str | None = None) -> list[str]:
    argv = list(COMMANDS[command])
    if model is not None:
        argv[1] = model
    return [*argv, *extra]


def assert_usage_text(result: Result, *, argument: str, fix: str) -> None:
    assert result.code == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    problem = next(line for line in lines if ": error: " in line)
    assert argument in problem, result.stderr
    fix_line = next(line for line in lines if line.startswith("  fix: "))
    assert fix in fix_line, result.stderr
    assert "bug" not in result.stderr


def assert_usage_json(result: Result, *, argument: str, fix: str) -> dict[str, object]:
    assert result.code == 2, result
    assert result.stderr == ""
    document = json.loads(result.stdout)  # one JSON object, nothing else
    error = document["error"]
    assert document["ok"] is False
    assert error["kind"] == "usage"
    assert error["exit_code"] == 2
    assert argument in error["argument"]
    assert argument in error["summary"]
    assert fix in error["fix"]
    return error  # type: ignore[no-any-return]


def run_both(argv: list[str], *, argument: str, fix: str, env: dict[str, str] | None = None) -> None:
    assert_usage_text(run(*argv, env=env), argument=argument, fix=fix)
    assert_usage_json(run(*argv, "--json", env=env), argument=argument, fix=fix)


# --- regions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(
    ("region", "closest"), [("us-east1", "us-east-1"), ("eu-wst-1", "eu-west-1"), ("US-WEST-2", "us-west-2")]
)
def test_a_mistyped_region_names_the_flag_and_the_closest_region(
    command: str, region: str, closest: str
) -> None:
    extra = ("--endpoint-url", LOCAL) if command in AWS_COMMANDS else ()
    run_both(_argv(command, "--region", region, *extra), argument="--region", fix=f"--region {closest}")


@pytest.mark.parametrize("command", ["invoke", "chat", "check", "policy"])
def test_a_mistyped_region_in_the_environment_names_the_variable(command: str) -> None:
    extra = ("--endpoint-url", LOCAL) if command in AWS_COMMANDS else ()
    run_both(
        _argv(command, *extra),
        argument="AWS_REGION",
        fix="AWS_REGION=us-east-1",
        env={"AWS_REGION": "us-east1"},
    )


def test_a_region_botocore_does_not_know_yet_but_named_like_one_is_accepted() -> None:
    result = run("policy", HAIKU, "--region", "ap-southeast-9", "--json")
    assert result.code == 0, result
    assert json.loads(result.stdout)["region"] == "ap-southeast-9"


# --- endpoint URLs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", AWS_COMMANDS)
@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("127.0.0.1:4010", "add the scheme: http://127.0.0.1:4010"),
        ("localhost:4010", "add the scheme: http://localhost:4010"),
        ("bedrock.example.com", "add the scheme: https://bedrock.example.com"),
        ("ftp://127.0.0.1:4010", "use http:// or https://"),
        ("http://", "write the host after the scheme"),
        ("http://127.0.0.1:99999", "host:port"),
    ],
)
def test_a_malformed_endpoint_url_names_the_flag_and_the_fix(command: str, url: str, fix: str) -> None:
    run_both(_argv(command, "--endpoint-url", url), argument="--endpoint-url", fix=fix)


def test_check_with_an_endpoint_without_scheme_is_a_usage_error_not_missing_credentials() -> None:
    result = run("check", HAIKU, "--endpoint-url", "127.0.0.1:4010", env={"AWS_ACCESS_KEY_ID": ""})
    assert_usage_text(result, argument="--endpoint-url", fix="http://127.0.0.1:4010")
    assert "credentials" not in result.stderr


def test_a_malformed_endpoint_variable_names_the_variable() -> None:
    env = {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "127.0.0.1:4010"}
    run_both(
        _argv("invoke"), argument="AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fix="http://127.0.0.1:4010", env=env
    )


# --- model ids ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", AWS_COMMANDS)
@pytest.mark.parametrize("model", ["anthropic..claude", "foo bar", "bad!!id"])
def test_a_malformed_model_id_names_model(command: str, model: str) -> None:
    argv = _argv(command, "--endpoint-url", LOCAL, model=model)
    run_both(argv, argument="MODEL", fix="")
    error = assert_usage_json(run(*argv, "--json"), argument="MODEL", fix="")
    assert model in str(error["summary"])


def test_a_malformed_model_for_policy_names_model() -> None:
    run_both(["policy", "*"], argument="MODEL", fix="")


# --- files --------------------------------------------------------------------------------------------------


def _files(tmp_path: Path) -> dict[str, Path]:
    broken_json = tmp_path / "broken.json"
    broken_json.write_text("{not json")
    broken_toml = tmp_path / "broken.toml"
    broken_toml.write_text("allow = [\n")
    not_utf8 = tmp_path / "latin1.json"
    not_utf8.write_bytes(b"\xff\xfe{}")
    return {
        "missing": tmp_path / "missing.json",
        "directory": tmp_path,
        "broken-json": broken_json,
        "broken-toml": broken_toml,
        "not-utf8": not_utf8,
    }


FILE_FLAGS = [
    ("check", "--allow-file"),
    ("policy", "--file"),
    ("policy", "--from-policy"),
    ("fake-server", "--policy"),
]


@pytest.mark.parametrize(("command", "flag"), FILE_FLAGS)
@pytest.mark.parametrize("which", ["missing", "directory", "broken-json", "broken-toml", "not-utf8"])
def test_a_missing_unreadable_or_malformed_file_names_the_flag(
    tmp_path: Path, command: str, flag: str, which: str
) -> None:
    path = _files(tmp_path)[which]
    extra = ("--endpoint-url", LOCAL) if command in AWS_COMMANDS else ()
    run_both(_argv(command, flag, str(path), *extra), argument=flag, fix="")
    assert str(path) in run(*_argv(command, flag, str(path), *extra)).stderr


@pytest.mark.parametrize("command", ["invoke", "chat"])
def test_a_malformed_allow_entry_names_the_flag(command: str) -> None:
    run_both(_argv(command, "--allow", "*", "--endpoint-url", LOCAL), argument="--allow", fix="")


@pytest.mark.parametrize("command", ["invoke", "chat", "check"])
def test_a_malformed_allowlist_variable_names_the_variable(command: str) -> None:
    argv = _argv(command, "--endpoint-url", LOCAL)
    run_both(argv, argument=ENV_VAR, fix="", env={ENV_VAR: "*"})


# --- flags: argparse's own errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "argument", "fix"),
    [
        (["invoke", HAIKU], "PROMPT", "pass PROMPT"),
        (["chat"], "MODEL", "pass MODEL"),
        (["check"], "MODEL", "pass MODEL"),
        (["invoke", HAIKU, "Hi", "--max-tokens", "0"], "--max-tokens", "--help"),
        (["chat", HAIKU, "--max-tokens", "many"], "--max-tokens", "--help"),
        (["policy", HAIKU, "--role", "admin"], "--role", "app, auditor, developer"),
        (["fake-server", "--port", "abc"], "--port", "--help"),
        (["invoke", HAIKU, "Hi", "--no-strem"], "--no-strem", "did you mean --no-stream?"),
        (["check", HAIKU, "--no-cll"], "--no-cll", "did you mean --no-call?"),
        (["fake-server", "--polcy", "p.json"], "--polcy", "did you mean --policy?"),
        (["invok", HAIKU], "COMMAND", "did you mean invoke?"),
    ],
)
def test_an_argument_error_names_the_argument_in_text_and_json(
    argv: list[str], argument: str, fix: str
) -> None:
    text = run(*argv)
    assert text.code == 2
    assert text.stdout == ""
    assert argument in text.stderr
    assert f"  fix: {fix}" in text.stderr or fix in text.stderr.split("  fix: ", 1)[1]

    error = assert_usage_json(run(*argv, "--json"), argument=argument, fix=fix)
    assert error["type"] == "ArgumentError"


@pytest.mark.parametrize("command", ["policy", "check", "invoke", "chat", "fake-server"])
def test_every_command_accepts_json(command: str) -> None:
    result = run(command, "--help")
    assert "--json" in result.stdout


@pytest.mark.parametrize(
    ("argv", "argument"),
    [
        (["policy", HAIKU, "--account", "12345"], "--account"),
        (["policy", HAIKU, "--actions", "write"], "--actions"),
        (["check", HAIKU, "--actions", "write", "--endpoint-url", LOCAL], "--actions"),
        (["invoke", HAIKU, "  ", "--endpoint-url", LOCAL], "PROMPT"),
        (["fake-server", "--port", "70000"], "--port"),
        (["fake-server", "--principal", "arn:aws:iam::123456789012:user/x"], "--principal"),
    ],
)
def test_a_bad_value_a_command_checks_names_the_argument(argv: list[str], argument: str) -> None:
    run_both(argv, argument=argument, fix="")


# --- refusals and defects -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["invoke", "chat"])
def test_a_blank_allowlist_variable_is_a_refusal_whose_kind_and_exit_code_agree(command: str) -> None:
    result = run(*_argv(command, "--endpoint-url", LOCAL, "--json"), env={ENV_VAR: " "})
    assert result.code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["kind"], error["exit_code"], error["argument"]) == ("denied", 1, ENV_VAR)


@pytest.mark.parametrize("command", ["invoke", "chat", "check", "policy"])
def test_a_real_defect_exits_70_and_says_what_to_report_without_any_address(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    from safe_bedrock.cli import _invoke, _policy_cmd

    def defect(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("an invariant broke")

    # Every one of these commands resolves its region first: a defect there is a defect in the command.
    monkeypatch.setattr(_policy_cmd, "resolve_region", defect)
    monkeypatch.setattr(_invoke, "resolve_region", defect)
    extra = ("--endpoint-url", LOCAL) if command in AWS_COMMANDS else ()

    text = run(*_argv(command, *extra))
    assert text.code == 70
    problem, fix = text.stderr.splitlines()
    assert (
        problem
        == f"safe-bedrock {command}: internal error: unexpected error: RuntimeError: an invariant broke"
    )
    assert fix.startswith(
        "  fix: this is a bug in safe-bedrock; when you report it, include the command you ran"
    )
    assert "http" not in text.stderr
    assert "github" not in text.stderr

    as_json = run(*_argv(command, *extra), "--json")
    assert as_json.code == 70
    error = json.loads(as_json.stdout)["error"]
    assert (error["kind"], error["exit_code"], error["type"]) == ("internal", 70, "RuntimeError")
    assert "this is a bug in safe-bedrock" in error["fix"]
    assert "http" not in as_json.stdout


def test_a_real_defect_in_fake_server_exits_70_without_any_address(monkeypatch: pytest.MonkeyPatch) -> None:
    from safe_bedrock.cli import _fake_server

    def defect(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("an invariant broke")

    monkeypatch.setattr(_fake_server, "check_region", defect)
    for json_flag in ((), ("--json",)):
        result = run("fake-server", "--port", "0", *json_flag)
        assert result.code == 70
        assert "this is a bug in safe-bedrock" in result.stderr + result.stdout
        assert "http" not in result.stderr + result.stdout
