"""`safe-bedrock fake-server`: serves until a signal, exits 0; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import types
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pytest
from botocore.config import Config

from safe_bedrock import cli
from safe_bedrock.cli import Command, main
from safe_bedrock.testing import connect
from safe_bedrock.testing._server import FakeBedrockServer
from safe_bedrock.testing._session import isolated_session

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
TITAN = "amazon.titan-text-express-v1"
MESSAGES: Any = [{"role": "user", "content": [{"text": "Hello"}]}]
# The console script runs `safe_bedrock.cli:main`; running it through the interpreter avoids PATH lookups.
COMMAND = [sys.executable, "-c", "import sys; from safe_bedrock.cli import main; sys.exit(main())"]


def client_for(url: str) -> Any:
    # An isolated session: the environment's AWS profile (even a missing one) plays no part.
    return isolated_session(region_name="us-east-1").client(
        "bedrock-runtime", endpoint_url=url, config=Config(retries={"total_max_attempts": 1})
    )


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[str], str]]:
    extra: list[str] = getattr(request, "param", [])
    process = subprocess.Popen(
        [*COMMAND, "fake-server", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Fake Bedrock listening on http://127.0.0.1:"), first
        url = first.rsplit(" ", 1)[1].strip()
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def stop(process: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str]:
    process.send_signal(sig)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=10)
    assert time.monotonic() - started < 5
    return process.returncode, stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serves_boto3_then_exits_zero_on_signal(
    served: tuple[subprocess.Popen[str], str], sig: signal.Signals
) -> None:
    process, url = served
    client = client_for(url)
    try:
        assert client.converse(modelId=HAIKU, messages=MESSAGES)["output"]["message"]["content"]
        stream = client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"]
        assert list(stream)[-1].keys() == {"metadata"}
    finally:
        client.close()
    code, stderr = stop(process, sig)
    assert code == 0
    assert "Traceback" not in stderr


@pytest.mark.parametrize("served", [["--region", "eu-west-1"]], indirect=True)
def test_prints_a_boto3_hint_with_the_region(served: tuple[subprocess.Popen[str], str]) -> None:
    process, url = served
    assert process.stdout is not None
    hint = process.stdout.readline()
    assert f"endpoint_url='{url}'" in hint
    assert "region_name='eu-west-1'" in hint
    code, _ = stop(process, signal.SIGINT)
    assert code == 0


def test_policy_file_is_enforced(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "bedrock:InvokeModel",
                        "Resource": f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}",
                    }
                ],
            }
        )
    )
    process = subprocess.Popen(
        [*COMMAND, "fake-server", "--port", "0", "--policy", str(policy)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().rsplit(" ", 1)[1].strip()
    client = client_for(url)
    try:
        assert client.converse(modelId=HAIKU, messages=MESSAGES)["output"]
        with pytest.raises(client.exceptions.AccessDeniedException, match="no identity-based policy allows"):
            client.converse(modelId=TITAN, messages=MESSAGES)
    finally:
        client.close()
        code, stderr = stop(process, signal.SIGINT)
    assert code == 0
    assert "Traceback" not in stderr


def start(*extra: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [*COMMAND, "fake-server", "--port", "0", "--json", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())["endpoint_url"]


def test_a_test_in_another_process_scripts_the_server_and_reads_its_requests() -> None:
    process, url = start()
    client = client_for(url)
    try:
        fake = connect(url)
        fake.add_response(text="scripted from afar", model="anthropic.*")
        fake.add_client_error("ThrottlingException", model="amazon.*")
        answer = client.converse(modelId=HAIKU, messages=MESSAGES)
        assert answer["output"]["message"]["content"][0]["text"] == "scripted from afar"
        with pytest.raises(client.exceptions.ThrottlingException):
            client.converse(modelId=TITAN, messages=MESSAGES)
        assert [(r.operation, r.model_id) for r in fake.requests] == [
            ("Converse", HAIKU),
            ("Converse", TITAN),
        ]
        fake.assert_no_pending_responses()
    finally:
        client.close()
        code, stderr = stop(process, signal.SIGTERM)
    assert code == 0
    assert "Traceback" not in stderr


def test_credentials_file_makes_only_its_keys_sign(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"AKIAFROMFILE0000": "file-secret"}))
    process, url = start("--credentials", str(keys))
    session = isolated_session(
        region_name="us-east-1", aws_access_key_id="AKIAFROMFILE0000", aws_secret_access_key="file-secret"
    )
    known = session.client("bedrock-runtime", endpoint_url=url)
    stranger = client_for(url)  # the isolated session's placeholder key
    try:
        assert known.converse(modelId=HAIKU, messages=MESSAGES)["output"]
        with pytest.raises(stranger.exceptions.ClientError, match="UnrecognizedClientException"):
            stranger.converse(modelId=HAIKU, messages=MESSAGES)
    finally:
        known.close()
        stranger.close()
        code, _ = stop(process, signal.SIGINT)
    assert code == 0


def failing_server(*args: str) -> subprocess.CompletedProcess[str]:
    """`fake-server` with arguments it must refuse, as a subprocess with a deadline: one wrongly accepted
    would otherwise serve until the suite times out."""
    command = [*COMMAND, "fake-server", "--port", "0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "No such file"), ("{not json", "Expecting property name"), ('{"AKIA": 7}', "must map")],
)
def test_a_bad_credentials_file_is_exit_2_naming_the_fix(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    keys = tmp_path / "keys.json"
    if content is not None:
        keys.write_text(content)
    result = failing_server("--credentials", str(keys))
    assert result.returncode == 2
    problem_line, fix = result.stderr.strip().splitlines()
    assert f"--credentials {str(keys)!r}" in problem_line
    assert problem in problem_line
    assert "SECRET_ACCESS_KEY" in fix


def test_bad_policy_file_is_one_line_exit_2_without_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = failing_server("--policy", str(broken))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    problem, fix = result.stderr.strip().splitlines()
    assert problem.startswith("safe-bedrock fake-server: error: --policy")
    assert str(broken) in problem
    assert fix.startswith("  fix: ")


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def test_missing_policy_file_names_the_file_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"
    code, err = run_main(["fake-server", "--port", "0", "--policy", str(missing)], capsys)
    assert code == 2
    assert err.count("\n") == 2  # the problem, then the fix
    assert str(missing) in err
    assert "No such file" in err
    assert "--policy" in err


def test_policy_with_condition_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "cond.json"
    policy.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "bedrock:InvokeModel",
                        "Resource": "*",
                        "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
                    }
                ],
            }
        )
    )
    code, err = run_main(["fake-server", "--port", "0", "--policy", str(policy)], capsys)
    assert code == 2
    assert "Condition" in err


def test_bad_principal_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "p.json"
    policy.write_text('{"Version": "2012-10-17", "Statement": []}')
    code, err = run_main(["fake-server", "--policy", str(policy), "--principal", "alice"], capsys)
    assert code == 2
    assert "--principal" in err


def test_port_in_use_is_exit_2_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeBedrockServer() as taken:
        port = taken.port
        code, err = run_main(["fake-server", "--port", str(port)], capsys)
    assert code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in err
    assert "--port" in err


def test_out_of_range_port_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(["fake-server", "--port", "70000"], capsys)
    assert code == 2
    assert "out of range" in err


def test_help_lists_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "fake-server" in capsys.readouterr().out


def test_console_script_points_at_main() -> None:
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "safe-bedrock"]
    assert script.value == "safe_bedrock.cli:main"


def test_every_registered_command_is_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("fake-server", "policy", "check", "invoke", "chat"):
        assert name in out


def test_a_bug_in_a_command_is_one_line_exit_70(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def explode(args: object) -> int:
        raise RuntimeError("boom\nwith a second line")

    module = types.ModuleType("broken_command")
    module.COMMAND = Command(  # type: ignore[attr-defined]
        name="broken", help="fails", description="fails", configure=lambda parser: None, run=explode
    )
    monkeypatch.setitem(sys.modules, "broken_command", module)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("broken_command",))
    assert main(["broken"]) == 70
    err = capsys.readouterr().err
    problem, fix = err.splitlines()
    assert (
        problem
        == "safe-bedrock broken: internal error: unexpected error: RuntimeError: boom with a second line"
    )
    assert fix.startswith("  fix: this is a bug in safe-bedrock; when you report it, include the command")
    assert "Python " in fix
    assert "http" not in err
    assert "Traceback" not in err
