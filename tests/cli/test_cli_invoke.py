"""`safe-bedrock invoke` and `chat` as subprocesses against the fake server."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from safe_bedrock._allowlist import ENV_VAR
from safe_bedrock.testing import FakeBedrockServer
from tests.cli.clihelpers import cli_env, command, control_plane, endpoint_args, run

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
NOVA = "amazon.nova-lite-v1:0"
BLANK_ENV_REFUSAL = [
    f"{ENV_VAR} is set but empty: every model is refused",
    "  fix: list the models (comma separated) or unset it",
]


def assert_nothing_reached(server: FakeBedrockServer) -> None:
    assert server.requests == []
    assert control_plane(server).calls == []


def test_invoke_streams_the_answer_and_puts_usage_on_stderr(server: FakeBedrockServer) -> None:
    server.add_stream(chunks=["Bonjour", " le", " monde"])
    result = run("invoke", HAIKU, "Say hello in French", *endpoint_args(server))
    assert result.code == 0, result.stderr
    assert result.stdout == "Bonjour le monde\n"
    assert result.stderr.startswith(f"[{HAIKU} · ")
    assert "tokens" in result.stderr
    assert "stop end_turn" in result.stderr
    (request,) = server.requests
    assert request.operation == "ConverseStream"
    assert request.json["messages"] == [{"role": "user", "content": [{"text": "Say hello in French"}]}]


def test_invoke_sends_system_prompt_and_max_tokens(server: FakeBedrockServer) -> None:
    result = run("invoke", NOVA, "Hi", "--system", "Be brief", "--max-tokens", "7", *endpoint_args(server))
    assert result.code == 0, result.stderr
    body = server.requests[0].json
    assert body["system"] == [{"text": "Be brief"}]
    assert body["inferenceConfig"] == {"maxTokens": 7}


def test_invoke_no_stream_json_is_one_object_for_scripts(server: FakeBedrockServer) -> None:
    server.add_response(text="Hello there")
    result = run("invoke", HAIKU, "Hi", "--no-stream", "--json", *endpoint_args(server))
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert document["text"] == "Hello there"
    assert document["stop_reason"] == "end_turn"
    assert document["usage"]["outputTokens"] > 0
    assert result.stderr == ""
    assert server.requests[0].operation == "Converse"


def test_a_model_outside_the_env_allowlist_is_refused_and_nothing_is_sent(server: FakeBedrockServer) -> None:
    result = run("invoke", HAIKU, "Hi", *endpoint_args(server), env={"SAFE_BEDROCK_ALLOWED_MODELS": NOVA})
    assert result.code == 1
    first, fix = result.stderr.strip().splitlines()
    assert first.startswith("safe-bedrock invoke: denied: refused by the allowlist")
    assert "SAFE_BEDROCK_ALLOWED_MODELS" in first
    assert fix.startswith("  fix: add")
    assert HAIKU in fix
    assert server.requests == []


def test_allow_option_wins_over_the_env_variable(server: FakeBedrockServer) -> None:
    env = {"SAFE_BEDROCK_ALLOWED_MODELS": NOVA}
    result = run(
        "invoke", HAIKU, "Hi", "--allow", "anthropic.claude-3-haiku*", *endpoint_args(server), env=env
    )
    assert result.code == 0, result.stderr


@pytest.mark.parametrize("blank", ["", " ", ",", " , ,"])
def test_a_blank_env_allowlist_refuses_every_model_and_nothing_is_sent(
    server: FakeBedrockServer, blank: str
) -> None:
    result = run("invoke", HAIKU, "Hi", *endpoint_args(server), env={ENV_VAR: blank})
    assert result.code == 1
    assert result.stdout == ""
    first, fix = result.stderr.splitlines()  # one refusal, no EmptyAllowlistWarning beside it
    assert [first.removeprefix("safe-bedrock invoke: denied: "), fix] == BLANK_ENV_REFUSAL
    assert_nothing_reached(server)


def test_a_blank_env_allowlist_in_json_is_a_refusal_with_exit_code_1(server: FakeBedrockServer) -> None:
    result = run("invoke", HAIKU, "Hi", "--no-stream", "--json", *endpoint_args(server), env={ENV_VAR: ""})
    assert result.code == 1
    error = json.loads(result.stdout)["error"]
    assert error["summary"] == BLANK_ENV_REFUSAL[0]
    assert error["fix"] == BLANK_ENV_REFUSAL[1].removeprefix("  fix: ")
    assert error["exit_code"] == 1
    assert error["kind"] == "denied"  # kind and exit code agree: a refusal, not a usage error
    assert error["argument"] == ENV_VAR
    assert_nothing_reached(server)


def test_chat_with_a_blank_env_allowlist_stops_before_the_first_turn(server: FakeBedrockServer) -> None:
    result = run("chat", HAIKU, *endpoint_args(server), env={ENV_VAR: " , "}, stdin="Hello\nAgain\n")
    assert result.code == 1
    assert result.stdout == ""
    first, fix = result.stderr.splitlines()
    assert [first.removeprefix("safe-bedrock chat: denied: "), fix] == BLANK_ENV_REFUSAL
    assert_nothing_reached(server)


@pytest.mark.parametrize("env", [{}, {ENV_VAR: HAIKU}], ids=["unset", "variable-allows-it"])
@pytest.mark.parametrize("allow", ["", " , "])
@pytest.mark.parametrize("subcommand", ["invoke", "chat"])
def test_an_empty_allow_option_refuses_and_falls_back_to_nothing_more_permissive(
    server: FakeBedrockServer, env: dict[str, str], allow: str, subcommand: str
) -> None:
    args = (HAIKU, "Hi") if subcommand == "invoke" else (HAIKU,)
    result = run(subcommand, *args, "--allow", allow, *endpoint_args(server), env=env, stdin="Hi\n")
    assert result.code == 1
    assert result.stderr.splitlines() == [
        f"safe-bedrock {subcommand}: denied: --allow lists no model: every model is refused",
        "  fix: pass model ids or ARNs (--allow MODEL) or leave it out",
    ]
    assert_nothing_reached(server)


@pytest.mark.parametrize("subcommand", ["invoke", "chat"])
def test_help_says_the_named_model_is_allowed_only_without_any_allowlist(subcommand: str) -> None:
    result = run(subcommand, "--help")
    text = " ".join(result.stdout.split())
    assert f"{ENV_VAR} when set, even blank" in text
    assert "blank one refuses every model" in text or "blank variable refuses every model" in text


def test_access_denied_is_one_line_with_the_fix(server: FakeBedrockServer) -> None:
    server.add_client_error("AccessDeniedException", variant="implicit_deny")
    result = run("invoke", HAIKU, "Hi", *endpoint_args(server))
    assert result.code == 1
    first, fix = result.stderr.strip().splitlines()
    assert first.startswith("safe-bedrock invoke: denied: MissingPermissionError: AccessDeniedException")
    assert "bedrock:InvokeModelWithResponseStream" in fix


def test_access_denied_in_json_carries_the_typed_fields(server: FakeBedrockServer) -> None:
    server.add_client_error("AccessDeniedException", variant="model_access_not_enabled")
    result = run("invoke", HAIKU, "Hi", "--json", *endpoint_args(server))
    assert result.code == 1
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "ModelAccessNotEnabledError"
    assert error["code"] == "AccessDeniedException"
    assert error["region"] == "us-east-1"
    assert "us-east-1" in error["fix"]


@pytest.mark.parametrize("env", [{}, {"SAFE_BEDROCK_ALLOWED_MODELS": NOVA}])
def test_an_invalid_model_id_is_a_usage_error_without_a_request(
    server: FakeBedrockServer, env: dict[str, str]
) -> None:
    result = run("invoke", "foo bar/../x", "Hi", *endpoint_args(server), env=env)
    assert result.code == 2
    assert result.stderr.startswith("safe-bedrock invoke: error: MODEL 'foo bar/../x' is not a model id")
    assert "fix:" in result.stderr
    assert server.requests == []


def test_an_unreachable_endpoint_says_so() -> None:
    result = run("invoke", HAIKU, "Hi", "--endpoint-url", "http://127.0.0.1:9", "--no-stream")
    assert result.code == 1
    assert "could not reach" in result.stderr
    assert "fix:" in result.stderr


def test_ctrl_c_mid_stream_closes_it_and_exits_130(server: FakeBedrockServer) -> None:
    server.add_stream(chunks=["one", " two", " three", " four", " five", " six"], delay=0.4)
    process = subprocess.Popen(
        command("invoke", HAIKU, "Count", *endpoint_args(server)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.read(3)  # blocks until the first token is printed
        assert first == "one"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "Traceback" not in err
    assert "interrupted" in err
    assert "stream closed" in err
    assert "six" not in out


def test_chat_keeps_the_conversation_over_two_turns(server: FakeBedrockServer) -> None:
    server.add_stream(chunks=["Hi, ", "Ada."])
    server.add_stream(chunks=["Your name is Ada."])
    result = run("chat", HAIKU, *endpoint_args(server), stdin="My name is Ada\nWhat is my name?\n")
    assert result.code == 0, result.stderr
    assert result.stdout == "Hi, Ada.\nYour name is Ada.\n"
    assert result.stderr.count(f"[{HAIKU} · ") == 2
    second = server.requests[1].json["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"] == [{"text": "Hi, Ada."}]
    assert second[2]["content"] == [{"text": "What is my name?"}]


def test_chat_json_prints_one_line_per_turn_and_goes_on_after_an_error(server: FakeBedrockServer) -> None:
    server.add_client_error("ValidationException", variant="input_too_long")
    server.add_stream(chunks=["fine"])
    result = run("chat", HAIKU, "--json", *endpoint_args(server), stdin="too long\n/reset\nshort\n/exit\n")
    assert result.code == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["ok"] is False
    assert first["error"]["type"] == "InvalidRequestError"
    assert second["ok"] is True
    assert second["text"] == "fine"
    # the failed turn was forgotten: the second request holds only the new question
    assert server.requests[-1].json["messages"] == [{"role": "user", "content": [{"text": "short"}]}]


def test_chat_ctrl_c_mid_stream_returns_to_the_prompt(server: FakeBedrockServer) -> None:
    server.add_stream(chunks=["slow", " and", " long", " answer"], delay=0.4)
    server.add_stream(chunks=["second"])
    process = subprocess.Popen(
        command("chat", HAIKU, *endpoint_args(server)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
        text=True,
    )
    try:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write("first\n")
        process.stdin.flush()
        assert process.stdout.read(4) == "slow"
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        out, err = process.communicate("next\n", timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "stream closed" in err
    assert out.endswith("second\n")
    # the partial answer stayed in the conversation
    assert server.requests[-1].json["messages"][1]["content"][0]["text"].startswith("slow")
