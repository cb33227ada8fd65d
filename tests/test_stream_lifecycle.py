"""Streams over a real socket: leaving early in any way gives the connection back at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from safe_bedrock import SafeBedrockClient
from safe_bedrock._retry import set_testing
from safe_bedrock.testing import FakeBedrockServer
from tests.clienthelpers import HAIKU, NO_BOTOCORE_RETRIES, anthropic_body, messages

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts sockets in /proc")


def _target(fd: Path) -> str:
    try:
        return str(fd.readlink())
    except OSError:  # the fd closed while we looked
        return ""


def _open_sockets() -> int:
    return sum(_target(fd).startswith("socket:") for fd in Path("/proc/self/fd").iterdir())


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBedrockServer]:
    with set_testing(True), FakeBedrockServer() as server:
        yield server


@pytest.fixture
def client(server: FakeBedrockServer) -> Iterator[SafeBedrockClient]:
    with SafeBedrockClient(allow=[HAIKU], client=server.client(config=NO_BOTOCORE_RETRIES)) as client:
        yield client


class _ConsumerFailedError(Exception):
    pass


def _fail_while_reading(events: object) -> None:
    """The consumer raises inside `with stream:` after one event."""
    try:
        with events:  # type: ignore[attr-defined]
            next(iter(events))  # type: ignore[call-overload]
            raise _ConsumerFailedError
    except _ConsumerFailedError:
        return


def _abandon(client: SafeBedrockClient, way: int) -> None:
    """Open a stream, read its first event, and leave in one of four ways."""
    if way % 2:
        response = client.converse_stream(modelId=HAIKU, messages=messages("one two three four five"))
        events = response["stream"]
    else:
        response = client.invoke_model_with_response_stream(modelId=HAIKU, body=anthropic_body("a b c d e"))
        events = response["body"]
    if way % 4 == 0:
        for _ in events:
            break
        events.close()
    elif way % 4 == 1:
        _fail_while_reading(events)
    elif way % 4 == 2:
        with events:
            next(iter(events))
    else:
        next(iter(events))  # dropped without close: garbage collection must release it


def test_a_thousand_abandoned_streams_leak_no_connection(client: SafeBedrockClient) -> None:
    for way in range(20):  # warm the pool
        _abandon(client, way)
    gc.collect()
    baseline = _open_sockets()
    with capture_logs() as logs:
        for way in range(1000):
            _abandon(client, way)
        gc.collect()
    assert _open_sockets() <= baseline + 1
    assert len(logs) == 1000
    assert all(log["closed_early"] for log in logs)
    assert all(log["outcome"] == "ok" for log in logs)


def test_a_stream_read_to_the_end_keeps_its_connection_for_reuse(
    server: FakeBedrockServer, client: SafeBedrockClient
) -> None:
    for _ in range(3):
        list(client.converse_stream(modelId=HAIKU, messages=messages("reuse me"))["stream"])
    gc.collect()
    baseline = _open_sockets()
    for _ in range(50):
        list(client.converse_stream(modelId=HAIKU, messages=messages("reuse me"))["stream"])
    assert _open_sockets() <= baseline + 1
