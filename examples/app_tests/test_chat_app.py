"""An app's own tests, using the `fake_bedrock` fixture that installing safe-bedrock provides.

Run: pytest examples/app_tests   (each test gets a fresh fake; scripted answers left unused fail the test)
"""

# ruff: noqa: S101  (asserts are how pytest tests speak; pyproject's tests/ exemption does not reach examples/)
from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import EventStreamError
from chat_app import MODEL_ID, ChatApp

from safe_bedrock.testing import ANY, FakeBedrock


@pytest.fixture
def app(fake_bedrock: FakeBedrock) -> ChatApp:
    # Retries off so that an injected throttle reaches the app at once.
    return ChatApp(
        fake_bedrock.client(region_name="us-east-1", config=Config(retries={"total_max_attempts": 1}))
    )


def test_the_default_answer_echoes_the_question(app: ChatApp) -> None:
    assert app.ask("What is Bedrock?") == "You said: What is Bedrock?"


def test_a_scripted_answer_is_returned(fake_bedrock: FakeBedrock, app: ChatApp) -> None:
    fake_bedrock.add_response(
        text="Paris.", expected={"messages": ANY, "inferenceConfig": {"maxTokens": 300}}
    )
    assert app.ask("Capital of France?") == "Paris."
    [request] = fake_bedrock.requests
    assert request.model_id == MODEL_ID


def test_streaming_yields_the_scripted_chunks(fake_bedrock: FakeBedrock, app: ChatApp) -> None:
    fake_bedrock.add_stream(chunks=["Hel", "lo", "!"])
    assert list(app.stream("hi")) == ["Hel", "lo", "!"]


def test_a_throttle_mid_stream_reaches_the_caller(fake_bedrock: FakeBedrock, app: ChatApp) -> None:
    fake_bedrock.add_stream_error("throttlingException", after=3)
    received = []
    with pytest.raises(EventStreamError, match="throttlingException"):
        received.extend(app.stream("hi"))
    assert received == ["You", " said:"]  # messageStart, then two deltas


def test_throttling_is_turned_into_an_apology(fake_bedrock: FakeBedrock, app: ChatApp) -> None:
    fake_bedrock.add_client_error("ThrottlingException")
    assert app.ask_or_apologise("hi") == "Too busy right now, please try again."


def test_invoke_model_summary(fake_bedrock: FakeBedrock, app: ChatApp) -> None:
    fake_bedrock.route("*claude*", text="Short.")
    assert app.summarise("a long text") == "Short."
