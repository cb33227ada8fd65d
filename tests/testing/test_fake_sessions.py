"""Sessions, lifetimes and timeouts of both transports: code that builds its own client from a session,
a missing AWS profile, stop() with a long delay in flight, read timeouts, the bounded request log and the
fixture's testing mode."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from safe_bedrock import ModelNotAllowedError, SafeBedrockClient
from safe_bedrock._retry import is_testing
from safe_bedrock.testing import FakeBedrock, FakeBedrockServer, set_testing

if TYPE_CHECKING:
    from collections.abc import Iterator

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
LLAMA = "meta.llama3-70b-instruct-v1:0"
MESSAGES: Any = [{"role": "user", "content": [{"text": "Hello"}]}]
BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "Hi"}],
    }
)
NO_RETRIES = Config(retries={"total_max_attempts": 1})


@pytest.fixture
def server() -> Iterator[FakeBedrockServer]:
    with FakeBedrockServer() as srv:
        yield srv


# --- sessions: code that builds its own client ------------------------------------------------------------


def test_safe_bedrock_client_builds_its_own_client_from_the_fakes_session() -> None:
    with (
        FakeBedrock() as fake,
        SafeBedrockClient(allow=[HAIKU], session=fake.session(), region_name="us-east-1") as client,
    ):
        answer = json.loads(client.invoke_model(modelId=HAIKU, body=BODY)["body"].read())
        stream = client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"]
        events = list(stream)
        with pytest.raises(ModelNotAllowedError):
            client.invoke_model(modelId=LLAMA, body=BODY)
    assert answer["type"] == "message"
    assert "metadata" in events[-1]
    assert [r.model_id for r in fake.requests] == [HAIKU, HAIKU]  # the refused call sent nothing
    assert fake.requests[0].region == "us-east-1"


def test_every_client_made_from_the_session_is_answered_until_the_fake_closes() -> None:
    fake = FakeBedrock()
    session = fake.session(region_name="eu-west-1")
    first = session.client("bedrock-runtime", config=NO_RETRIES)
    second = session.client("bedrock-runtime", config=NO_RETRIES)
    fake.add_response(text="one")
    fake.add_response(text="two")
    texts = [
        c.converse(modelId=HAIKU, messages=MESSAGES)["output"]["message"]["content"][0]["text"]
        for c in (first, second)
    ]
    assert texts == ["one", "two"]
    assert {r.region for r in fake.requests} == {"eu-west-1"}
    fake.close()
    # Never on to the real endpoint the client was built for: a closed fake says so.
    with pytest.raises(RuntimeError, match="was closed"):
        first.converse(modelId=HAIKU, messages=MESSAGES)


def test_safe_bedrock_client_reaches_the_server_through_its_session_and_endpoint(
    server: FakeBedrockServer,
) -> None:
    with SafeBedrockClient(
        allow=[HAIKU], session=server.session(), endpoint_url=server.endpoint_url, region_name="us-east-1"
    ) as client:
        assert client.converse(modelId=HAIKU, messages=MESSAGES)["output"]["message"]["content"]
    assert [r.operation for r in server.requests] == ["Converse"]


def test_a_missing_aws_profile_breaks_neither_transport() -> None:
    # botocore raises ProfileNotFound as soon as a default session reads its configuration; the fake reads
    # its service model and builds its sessions without one.
    script = textwrap.dedent(
        f"""
        from safe_bedrock import SafeBedrockClient
        from safe_bedrock.testing import FakeBedrock, FakeBedrockServer
        messages = {MESSAGES!r}
        with FakeBedrock() as fake:
            fake.client().converse(modelId={HAIKU!r}, messages=messages)
            with SafeBedrockClient(allow=[{HAIKU!r}], session=fake.session()) as client:
                list(client.converse_stream(modelId={HAIKU!r}, messages=messages)["stream"])
        with FakeBedrockServer() as server:
            client = server.client()
            client.converse(modelId={HAIKU!r}, messages=messages)
            client.close()
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={"AWS_PROFILE": "nope", "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# --- stop() and long delays ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        lambda s: s.add_response(text="late", delay=30, operation="converse"),
        lambda s: s.add_stream(text="late", first_byte_delay=30, operation="converse_stream"),
        lambda s: s.add_stream(chunks=["a", "b"], delay=30, operation="converse_stream"),
    ],
    ids=["answer delay", "first byte delay", "delay between events"],
)
def test_stop_returns_at_once_with_a_long_scripted_delay_in_flight(script: Any) -> None:
    server = FakeBedrockServer().start()
    script(server)
    client = server.client(config=Config(retries={"total_max_attempts": 1}, read_timeout=60))
    outcome: list[object] = []

    def call() -> None:
        try:
            if server.pending_responses()[0].startswith("add_response"):
                client.converse(modelId=HAIKU, messages=MESSAGES)
            else:
                stream = client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"]
                try:
                    outcome.extend(stream)
                finally:
                    stream.close()
        except Exception as exc:  # noqa: BLE001 - the test inspects what the client saw
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while not server.requests:
        time.sleep(0.01)
    time.sleep(0.1)
    started = time.monotonic()
    server.stop()
    stopped = time.monotonic() - started
    caller.join(5)
    client.close()
    assert stopped < 1.0
    assert not caller.is_alive()
    assert isinstance(outcome[-1], Exception)  # cut, not answered
    assert [t for t in threading.enumerate() if t.name.startswith("fake-bedrock-")] == []


def test_a_restarted_server_waits_out_its_delays_again() -> None:
    server = FakeBedrockServer()
    server.start()
    server.stop()
    with server:
        server.add_response(text="late", delay=0.2)
        client = server.client(config=NO_RETRIES)
        started = time.monotonic()
        client.converse(modelId=HAIKU, messages=MESSAGES)
        client.close()
    assert time.monotonic() - started >= 0.2


# --- read timeouts -----------------------------------------------------------------------------------------


def test_an_answer_slower_than_the_read_timeout_times_out_in_process_as_over_http(
    server: FakeBedrockServer,
) -> None:
    config = Config(retries={"total_max_attempts": 1}, read_timeout=0.3)
    fake = FakeBedrock()
    seen: list[type[BaseException]] = []
    for scripted, client in ((fake, fake.client(config=config)), (server, server.client(config=config))):
        scripted.add_response(text="late", delay=5)
        started = time.monotonic()
        with pytest.raises(ReadTimeoutError) as info:
            client.converse(modelId=HAIKU, messages=MESSAGES)
        assert 0.3 <= time.monotonic() - started < 2
        seen.append(type(info.value))
        client.close()
    assert seen[0] is seen[1]


def test_a_stream_pausing_longer_than_the_read_timeout_times_out_while_iterating(
    server: FakeBedrockServer,
) -> None:
    config = Config(retries={"total_max_attempts": 1}, read_timeout=0.3)
    fake = FakeBedrock()
    for scripted, client in ((fake, fake.client(config=config)), (server, server.client(config=config))):
        scripted.add_stream(chunks=["a", "b", "c"], delay=5, operation="converse_stream")
        stream = client.converse_stream(modelId=HAIKU, messages=MESSAGES)["stream"]
        received = []
        started = time.monotonic()
        with pytest.raises(Urllib3ReadTimeoutError):
            received.extend(stream)
        stream.close()
        client.close()
        assert time.monotonic() - started < 2
        assert received == [{"messageStart": {"role": "assistant"}}]


def test_a_first_byte_later_than_the_read_timeout_times_out_the_call_in_process() -> None:
    fake = FakeBedrock()
    client = fake.client(config=Config(retries={"total_max_attempts": 1}, read_timeout=0.2))
    fake.add_stream(text="late", first_byte_delay=5)
    with pytest.raises(ReadTimeoutError):
        client.converse_stream(modelId=HAIKU, messages=MESSAGES)


def test_a_connection_drop_before_a_stream_fails_the_call_in_process_as_over_http(
    server: FakeBedrockServer,
) -> None:
    from botocore.exceptions import ConnectionClosedError

    fake = FakeBedrock()
    for scripted, client in (
        (fake, fake.client(config=NO_RETRIES)),
        (server, server.client(config=NO_RETRIES)),
    ):
        scripted.add_connection_drop(operation="converse_stream")
        with pytest.raises(ConnectionClosedError):
            client.converse_stream(modelId=HAIKU, messages=MESSAGES)
        client.close()


# --- the request log ---------------------------------------------------------------------------------------


def test_max_requests_keeps_the_newest_requests() -> None:
    fake = FakeBedrock(max_requests=3)
    client = fake.client(config=NO_RETRIES)
    for n in range(5):
        client.converse(modelId=HAIKU, messages=[{"role": "user", "content": [{"text": f"call {n}"}]}])
    assert [r.json["messages"][0]["content"][0]["text"] for r in fake.requests] == [  # type: ignore[index]
        "call 2",
        "call 3",
        "call 4",
    ]


@pytest.mark.parametrize("bound", [0, -1, 2.5, True, "10"])
def test_max_requests_must_be_a_positive_int(bound: object) -> None:
    with pytest.raises(ValueError, match="max_requests"):
        FakeBedrockServer(max_requests=bound)  # type: ignore[arg-type]


# --- the fixture's testing mode -------------------------------------------------------------------------


def test_the_fixture_turns_testing_mode_on_for_the_test(fake_bedrock: FakeBedrock) -> None:
    assert is_testing()
    fake_bedrock.add_client_error("ThrottlingException", times=2)
    client = SafeBedrockClient(allow=[HAIKU], session=fake_bedrock.session())
    started = time.monotonic()
    assert client.converse(modelId=HAIKU, messages=MESSAGES)["output"]  # retried twice, without waiting
    assert time.monotonic() - started < 0.5
    assert len(fake_bedrock.requests) == 3


def test_testing_mode_is_off_outside_the_fixture() -> None:
    assert not is_testing()
    with set_testing(True, attempts=1):
        assert is_testing()
    assert not is_testing()
