"""Scripting the fake like botocore's Stubber: queue, route by model, expect request bodies with ANY, record
requests, assert nothing scripted was left, and fail at the very line of a scripting mistake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from safe_bedrock.testing import ANY, FakeBedrock

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
NOVA = "amazon.nova-lite-v1:0"
MESSAGES: Any = [{"role": "user", "content": [{"text": "Hello"}]}]
BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "Hi"}],
    }
)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(fake_bedrock: FakeBedrock) -> Any:
    return fake_bedrock.client(config=Config(retries={"total_max_attempts": 1}))


def text_of(response: Any) -> str:
    return str(response["output"]["message"]["content"][0]["text"])


def test_queued_answers_are_used_once_in_order(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.add_response(text="first")
    fake_bedrock.add_response(text="second")
    assert [text_of(client.converse(modelId=HAIKU, messages=MESSAGES)) for _ in range(3)] == [
        "first",
        "second",
        "You said: Hello",
    ]


def test_a_text_answer_takes_the_shape_of_each_operation(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.add_response(text="Paris is the capital", times=2)
    body = json.loads(client.invoke_model(modelId=HAIKU, body=BODY)["body"].read())
    assert body["content"][0]["text"] == "Paris is the capital"
    events = list(client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"])
    assert "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e) == (
        "Paris is the capital"
    )


def test_a_body_answer_is_returned_as_is(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.add_response(body={"custom": [1, 2]}, operation="invoke_model")
    assert json.loads(client.invoke_model(modelId=HAIKU, body=BODY)["body"].read()) == {"custom": [1, 2]}


def test_answers_for_a_model_pattern_wait_for_that_model(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.add_response(text="for nova", model="amazon.nova-*")
    assert text_of(client.converse(modelId=HAIKU, messages=MESSAGES)) == "You said: Hello"
    assert text_of(client.converse(modelId="us." + NOVA, messages=MESSAGES)) == "for nova"


def test_routes_answer_every_matching_call_and_are_never_pending(
    fake_bedrock: FakeBedrock, client: Any
) -> None:
    fake_bedrock.route("anthropic.*", text="routed")
    fake_bedrock.route("amazon.*", error="AccessDeniedException", variant="model_access_not_enabled")
    fake_bedrock.route("meta.*", handler=lambda request: f"seen {request.operation}")
    for _ in range(2):
        assert text_of(client.converse(modelId=HAIKU, messages=MESSAGES)) == "routed"
    with pytest.raises(client.exceptions.AccessDeniedException, match="You don't have access to the model"):
        client.converse(modelId=NOVA, messages=MESSAGES)
    assert (
        text_of(client.converse(modelId="meta.llama3-8b-instruct-v1:0", messages=MESSAGES)) == "seen Converse"
    )
    fake_bedrock.assert_no_pending_responses()


def test_a_queued_answer_wins_over_a_route(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.route("*", text="routed")
    fake_bedrock.add_response(text="queued")
    assert text_of(client.converse(modelId=HAIKU, messages=MESSAGES)) == "queued"
    assert text_of(client.converse(modelId=HAIKU, messages=MESSAGES)) == "routed"


def test_expected_bodies_match_with_any(fake_bedrock: FakeBedrock, client: Any) -> None:
    fake_bedrock.add_response(
        text="ok", expected={"messages": [{"role": "user", "content": ANY}], "system": ANY}
    )
    client.converse(modelId=HAIKU, messages=MESSAGES, system=[{"text": "be nice"}])


def test_a_request_that_does_not_match_its_expectation_fails_at_the_call(
    fake_bedrock: FakeBedrock, client: Any
) -> None:
    fake_bedrock.add_response(text="ok", expected={"messages": []})
    with pytest.raises(
        AssertionError, match=r"did not match what add_response\(\) at .*test_fake_scripting.py"
    ):
        client.converse(modelId=HAIKU, messages=MESSAGES)
    with pytest.raises(AssertionError, match="expected body"):
        fake_bedrock.assert_no_pending_responses()
    fake_bedrock.reset()


def test_every_request_is_recorded(fake_bedrock: FakeBedrock, client: Any) -> None:
    client.converse(modelId=HAIKU, messages=MESSAGES)
    client.invoke_model(modelId=NOVA, body=json.dumps({"messages": MESSAGES}))
    assert [(r.operation, r.model_id) for r in fake_bedrock.requests] == [
        ("Converse", HAIKU),
        ("InvokeModel", NOVA),
    ]
    assert fake_bedrock.requests[1].json == {"messages": MESSAGES}
    assert fake_bedrock.requests[0].headers["content-type"] == "application/json"


def test_unused_answers_are_reported_with_where_they_were_scripted(
    fake_bedrock: FakeBedrock, client: Any
) -> None:
    fake_bedrock.add_response(text="never", model="amazon.*")
    client.converse(modelId=HAIKU, messages=MESSAGES)
    with pytest.raises(AssertionError) as caught:
        fake_bedrock.assert_no_pending_responses()
    report = str(caught.value)
    assert "1 scripted answer(s) were never used" in report
    assert "test_fake_scripting.py" in report
    assert "model 'amazon.*'" in report
    assert f"Converse({HAIKU})" in report
    fake_bedrock.allow_pending_responses()


@pytest.mark.parametrize(
    ("script", "error", "message"),
    [
        (lambda f: f.add_client_error("Throttling"), ValueError, "did you mean 'ThrottlingException'"),
        (lambda f: f.add_client_error("NoSuchError"), ValueError, "valid codes: AccessDeniedException"),
        (
            lambda f: f.add_client_error("AccessDeniedException", variant="nope"),
            ValueError,
            "valid variants: implicit_deny",
        ),
        (lambda f: f.add_client_error("ThrottlingException", http_status=200), ValueError, "from 400 to 599"),
        (lambda f: f.add_stream_error("AccessDeniedException"), ValueError, "valid mid-stream errors"),
        (lambda f: f.add_response(), TypeError, "needs body=... .* or text=..."),
        (lambda f: f.add_response(body={}, text="x"), TypeError, "at most one of body, text"),
        (lambda f: f.add_response(body={}, operation="converse_stream"), ValueError, "use add_stream"),
        (lambda f: f.add_response(text="x", operation="Invoke"), ValueError, "valid: ApplyGuardrail"),
        (lambda f: f.add_stream(text="x", operation="converse"), ValueError, "does not stream"),
        (lambda f: f.add_stream(events="abc"), TypeError, "events must be a list"),
        (lambda f: f.add_stream(chunks="abc"), TypeError, "chunks must be a list of strings"),
        (lambda f: f.add_response(text="x", delay=-1), ValueError, "delay must be"),
        (lambda f: f.add_response(text="x", times=0), ValueError, "times must be"),
        (lambda f: f.add_truncated_stream(after=-1), ValueError, "after must be"),
        (lambda f: f.route("*"), TypeError, "needs one of text="),
    ],
)
def test_a_scripting_mistake_fails_at_its_line_saying_what_is_valid(
    script: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        script(FakeBedrock())


def test_a_failing_route_handler_fails_the_call_not_the_fake(fake_bedrock: FakeBedrock, client: Any) -> None:
    def handler(request: Any) -> str:
        raise RuntimeError("bug in the test")

    fake_bedrock.route("*", handler=handler)
    with pytest.raises(AssertionError, match="raised RuntimeError"):
        client.converse(modelId=HAIKU, messages=MESSAGES)
    fake_bedrock.reset()


def test_the_fixture_fails_a_passing_test_that_left_answers_unused(pytester_like: Path) -> None:
    result = run_pytest(pytester_like, "test_left.py")
    assert result.returncode == 1
    assert "1 scripted answer(s) were never used" in result.stdout


@pytest.fixture
def pytester_like(tmp_path: Path) -> Path:
    (tmp_path / "test_left.py").write_text(
        "def test_left(fake_bedrock):\n"
        "    fake_bedrock.add_response(text='unused')\n"
        "def test_opted_out(fake_bedrock):\n"
        "    fake_bedrock.add_response(text='unused')\n"
        "    fake_bedrock.allow_pending_responses()\n"
    )
    return tmp_path


def run_pytest(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", *args],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_example_app_test_suite_passes() -> None:
    result = run_pytest(ROOT / "examples" / "app_tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
