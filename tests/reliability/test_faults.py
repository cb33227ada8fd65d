"""Under faults: a table of everything a network and a service can do wrong, through the fake server.

Each row scripts one fault on a real socket and makes one call with a fresh client. For every row:

- the call ends as the row says: the typed error (for a fault mid-stream also the class boto3 raised for
  it, so old handlers still catch it), or a successful retry;
- it ends within the row's deadline;
- nothing is retried once an event reached the caller (the fake's request log counts the attempts), and
  what reached the caller reached it once;
- no thread is left behind;
- the connection went back to the pool: after one more good call the client holds one connection, and
  urllib3 never had to discard one (it does when a slot comes back late, after a replacement was opened).
"""

from __future__ import annotations

import gc
import logging
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.config import Config
from botocore.eventstream import ChecksumMismatch, InvalidPayloadLength, ParserError
from botocore.exceptions import ConnectionClosedError, EventStreamError, ReadTimeoutError
from structlog.testing import capture_logs
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from safe_bedrock import (
    InternalServerError,
    ModelStreamError,
    RetryConfig,
    SafeBedrockClient,
    ServiceUnavailableError,
    ThrottlingError,
)
from safe_bedrock._eventstream import event_frame
from safe_bedrock._retry import set_testing
from safe_bedrock.errors import (
    StreamChecksumError,
    StreamConnectionError,
    StreamFrameError,
    StreamIncompleteError,
    StreamReadTimeoutError,
    StreamTruncatedError,
)
from safe_bedrock.testing import FakeBedrockServer
from tests.clienthelpers import HAIKU, messages
from tests.reliability.relhelpers import (
    Recorder,
    can_count_connections,
    established_to,
    foreign_threads,
    wait_for,
)

pytestmark = pytest.mark.skipif(not can_count_connections(), reason="reads the kernel's TCP table")

PROMPT = "one two three"
ANSWER = f"You said: {PROMPT}"
READ_TIMEOUT = 0.25  # botocore's read_timeout for every client here: a silent server costs this much
STALL = 1.2  # how long a stalled server sleeps: well past READ_TIMEOUT, short enough to end soon after

START = event_frame("messageStart", b'{"role":"assistant"}')
DELTA = event_frame("contentBlockDelta", b'{"delta":{"text":"hi"},"contentBlockIndex":0}')
STOP = event_frame("messageStop", b'{"stopReason":"end_turn"}')


def _flip_last_byte(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x01])


def _prelude(total: int, headers: int) -> bytes:
    head = struct.pack(">II", total, headers)
    return head + struct.pack(">I", zlib.crc32(head))


@dataclass(frozen=True)
class Fault:
    """One row: how to script the fault, which call meets it, and how it must end."""

    name: str
    script: Callable[[FakeBedrockServer], None]
    stream: bool  # converse_stream (read to the end) rather than converse
    raises: type[BaseException] | tuple[type[BaseException], ...] | None  # None: the call succeeds
    requests: int  # what the fake must have received: attempts, retries included
    events: int | None = None  # events that reached the caller before the failure (streams)
    deadline: float = 3.0  # seconds the call may take, retries included
    retry: RetryConfig = field(default_factory=RetryConfig)
    also: type[BaseException] | None = None  # what boto3 raised for it: the typed error is one too


def _stream_error(code: str, *, after: int) -> Callable[[FakeBedrockServer], None]:
    return lambda s: s.add_stream_error(code, after=after, operation="ConverseStream", text=PROMPT)


FAULTS = [
    # --- the connection ---------------------------------------------------------------------------------
    Fault(
        "reset before the response, then an answer",
        lambda s: s.add_connection_drop(operation="Converse"),
        stream=False,
        raises=None,
        requests=2,
    ),
    Fault(
        "reset before the response on every attempt",
        lambda s: s.add_connection_drop(operation="Converse", times=3),
        stream=False,
        raises=ConnectionClosedError,
        requests=3,
    ),
    Fault(
        "reset before a stream's first event, then a stream",
        lambda s: s.add_connection_drop(operation="ConverseStream"),
        stream=True,
        raises=None,
        requests=2,
    ),
    Fault(
        "reset mid-stream between frames",
        lambda s: s.add_connection_drop(after=2, operation="ConverseStream"),
        stream=True,
        raises=StreamConnectionError,
        also=ProtocolError,
        requests=1,
        events=2,
    ),
    Fault(
        "reset mid-stream inside a frame",
        lambda s: s.add_connection_drop(after=3, mid_frame=True, operation="ConverseStream"),
        stream=True,
        raises=StreamConnectionError,
        also=ProtocolError,
        requests=1,
        events=3,
    ),
    # --- the frames ---------------------------------------------------------------------------------------
    Fault(
        "CRC mismatch in the first frame, then a stream",
        lambda s: s.add_stream(events=[_flip_last_byte(START), DELTA, STOP], operation="ConverseStream"),
        stream=True,
        raises=None,
        requests=2,  # corrupted in transit before anything reached the caller: safe to resend
    ),
    Fault(
        "CRC mismatch after two events",
        lambda s: s.add_stream(
            events=[START, DELTA, _flip_last_byte(DELTA), STOP], operation="ConverseStream"
        ),
        stream=True,
        raises=StreamChecksumError,
        also=ChecksumMismatch,
        requests=1,
        events=2,
    ),
    Fault(
        "a frame of garbage",
        lambda s: s.add_stream(
            events=[START, b"\x00garbage, not a frame" * 4, STOP], operation="ConverseStream"
        ),
        stream=True,
        raises=StreamFrameError,
        also=ParserError,
        requests=1,
        events=1,
    ),
    Fault(
        "a frame claiming two gigabytes",
        lambda s: s.add_stream(
            events=[START, _prelude(2**31, 0) + b"\x00" * 64, STOP], operation="ConverseStream"
        ),
        stream=True,
        raises=StreamFrameError,
        also=InvalidPayloadLength,
        requests=1,
        events=1,
    ),
    Fault(
        "a frame whose headers overrun it",
        lambda s: s.add_stream(events=[START, _prelude(40, 200) + b"\x00" * 28], operation="ConverseStream"),
        stream=True,
        raises=StreamFrameError,
        also=ParserError,
        requests=1,
        events=1,
    ),
    Fault(
        "ends cleanly after three events, without its closing events",
        lambda s: s.add_truncated_stream(after=3, operation="ConverseStream"),
        stream=True,
        raises=StreamIncompleteError,
        requests=1,
        events=3,
    ),
    Fault(
        "ends cleanly inside the fourth frame",
        lambda s: s.add_truncated_stream(after=3, mid_frame=True, operation="ConverseStream"),
        stream=True,
        raises=StreamTruncatedError,
        requests=1,
        events=3,
    ),
    Fault(
        "ends cleanly before its first event, then a stream",
        lambda s: s.add_truncated_stream(after=0, operation="ConverseStream"),
        stream=True,
        raises=None,
        requests=2,  # nothing reached the caller: safe to resend
    ),
    # --- a server that stops sending ------------------------------------------------------------------------
    Fault(
        "silent before the response, then an answer",
        lambda s: s.add_response(text=ANSWER, delay=STALL, operation="Converse"),
        stream=False,
        raises=None,
        requests=2,
    ),
    Fault(
        "silent before the response on every attempt",
        lambda s: s.add_response(text=ANSWER, delay=STALL, operation="Converse", times=3),
        stream=False,
        raises=ReadTimeoutError,
        requests=3,
        deadline=3 * READ_TIMEOUT + 1.5,
    ),
    Fault(
        "silent before a stream's first event, then a stream",
        lambda s: s.add_stream(text=PROMPT, first_byte_delay=STALL, operation="ConverseStream"),
        stream=True,
        raises=None,
        requests=2,
    ),
    Fault(
        "silent mid-stream",
        lambda s: s.add_stream(text=PROMPT, delay=STALL, operation="ConverseStream"),
        stream=True,
        raises=StreamReadTimeoutError,
        also=Urllib3ReadTimeoutError,
        requests=1,
        events=1,
        deadline=READ_TIMEOUT + 1.5,
    ),
    # --- the service ----------------------------------------------------------------------------------------
    Fault(
        "a burst of 500s, then an answer",
        lambda s: s.add_client_error("InternalServerException", times=2),
        stream=False,
        raises=None,
        requests=3,
    ),
    Fault(
        "a burst of 503s past the attempt cap",
        lambda s: s.add_client_error("ServiceUnavailableException", times=3),
        stream=False,
        raises=ServiceUnavailableError,
        requests=3,
    ),
    Fault(
        "a burst of 500s before a stream",
        lambda s: s.add_client_error("InternalServerException", operation="ConverseStream", times=2),
        stream=True,
        raises=None,
        requests=3,
    ),
    Fault(
        "a throttling storm: 8 x 429, then an answer",
        lambda s: s.add_client_error("ThrottlingException", times=8),
        stream=False,
        raises=None,
        requests=9,
        retry=RetryConfig(attempts=10),
    ),
    Fault(
        "a throttling storm longer than the attempt cap",
        lambda s: s.add_client_error("ThrottlingException", times=3),
        stream=False,
        raises=ThrottlingError,
        requests=3,
    ),
    Fault(
        "throttlingException as a stream's first frame, then a stream",
        _stream_error("throttlingException", after=0),
        stream=True,
        raises=None,
        requests=2,
    ),
    Fault(
        "throttlingException after the first event",
        _stream_error("throttlingException", after=1),
        stream=True,
        raises=ThrottlingError,
        requests=1,
        events=1,
    ),
    Fault(
        "modelStreamErrorException after three events",
        _stream_error("modelStreamErrorException", after=3),
        stream=True,
        raises=ModelStreamError,
        requests=1,
        events=3,
    ),
    Fault(
        "internalServerException after two events",
        _stream_error("internalServerException", after=2),
        stream=True,
        raises=InternalServerError,
        requests=1,
        events=2,
    ),
]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBedrockServer]:
    with set_testing(True), FakeBedrockServer() as server:
        yield server


class _PoolWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def pool_warnings() -> Iterator[_PoolWarnings]:
    handler = _PoolWarnings()
    logger = logging.getLogger("urllib3.connectionpool")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _client(server: FakeBedrockServer, recorder: Recorder, retry: RetryConfig) -> SafeBedrockClient:
    config = Config(retries={"total_max_attempts": 1}, read_timeout=READ_TIMEOUT, connect_timeout=1)
    return SafeBedrockClient(
        allow=[HAIKU], client=server.client(config=config), retry=retry, hooks=[recorder]
    )


def _call(client: SafeBedrockClient, *, stream: bool, seen: list[Any]) -> None:
    if not stream:
        answer = client.converse(modelId=HAIKU, messages=messages(PROMPT))
        seen.append(answer["output"]["message"]["content"][0]["text"])
        return
    seen.extend(client.converse_stream(modelId=HAIKU, messages=messages(PROMPT))["stream"])


def _text(events: list[Any]) -> str:
    return "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)


@dataclass(frozen=True)
class Ending:
    """How a call ended, without the exception object (whose traceback would pin sockets)."""

    error: type[BaseException] | None
    mid_stream: bool | None
    events_received: int | None
    seen: tuple[Any, ...]
    elapsed: float


def _meet(client: SafeBedrockClient, fault: Fault) -> Ending:
    seen: list[Any] = []
    started = time.monotonic()
    try:
        _call(client, stream=fault.stream, seen=seen)
    except Exception as exc:  # noqa: BLE001 - every ending is compared with the row by the caller
        return Ending(
            error=type(exc),
            mid_stream=getattr(exc, "mid_stream", None),
            events_received=getattr(exc, "events_received", None),
            seen=tuple(seen),
            elapsed=time.monotonic() - started,
        )
    return Ending(None, None, None, tuple(seen), time.monotonic() - started)


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_every_fault_ends_as_expected_in_bounded_time_without_leaks(
    server: FakeBedrockServer, pool_warnings: _PoolWarnings, fault: Fault
) -> None:
    server.reset()
    fault.script(server)
    gc.collect()
    baseline_threads = set(threading.enumerate())
    baseline_connections = established_to(server.port)
    recorder = Recorder()
    client = _client(server, recorder, fault.retry)

    with capture_logs() as logs:
        ending = _meet(client, fault)

    assert ending.elapsed < fault.deadline, f"took {ending.elapsed:.2f}s"
    assert len(server.requests) == fault.requests
    assert len(recorder.calls) == len(logs) == 1
    details = recorder.calls[0]
    if fault.raises is None:
        assert ending.error is None
        assert details.outcome == "ok"
        assert details.attempts == fault.requests
        # A retried stream reached the caller once, whole: no event of the failed attempt, none twice.
        assert (_text(list(ending.seen)) if fault.stream else ending.seen[0]) == ANSWER
    else:
        assert ending.error is not None
        assert issubclass(ending.error, fault.raises)
        if fault.also is not None:
            assert issubclass(ending.error, fault.also)
        assert details.outcome == "error"
        if fault.events is not None:
            assert len(ending.seen) == fault.events
            # Every fault after the first event is typed and says how far the stream got.
            assert issubclass(ending.error, (ModelStreamError, EventStreamError))
            assert ending.mid_stream
            assert ending.events_received == fault.events

    # The connection went back: one more good call, and the client holds a single connection.
    server.reset()
    with capture_logs():
        client.converse(modelId=HAIKU, messages=messages(PROMPT))
    assert established_to(server.port) <= baseline_connections + 1
    assert pool_warnings.messages == []
    client.close()
    # A connection error's traceback sits in a reference cycle (botocore's and urllib3's frames) that can
    # pin a socket past close(), for raw boto3 alike: the collector frees it, as it would in an app.
    gc.collect()
    assert wait_for(lambda: established_to(server.port) <= baseline_connections)
    assert wait_for(lambda: not foreign_threads(baseline_threads))


def test_retry_after_is_honoured_with_real_waits(server: FakeBedrockServer) -> None:
    server.reset()
    server.add_client_error("ThrottlingException", retry_after=0.4)
    server.add_client_error("ThrottlingException", retry_after=0.2)
    recorder = Recorder()
    # Computed waits would be at most 10 ms: any longer wait can only be the service's Retry-After.
    retry = RetryConfig(attempts=3, wait_initial=0.01, wait_max=2.0, wait_exp_base=1.0)
    client = _client(server, recorder, retry)
    with set_testing(False):
        started = time.monotonic()
        client.converse(modelId=HAIKU, messages=messages(PROMPT))
        elapsed = time.monotonic() - started
    assert len(server.requests) == 3
    # 0.4 s + 0.2 s asked for; the computed waits (10 ms each) would have taken 0.02 s.
    assert 0.6 <= elapsed < 0.6 + 1.0
    client.close()


def test_retry_after_is_capped_at_wait_max(server: FakeBedrockServer) -> None:
    server.reset()
    server.add_client_error("ThrottlingException", retry_after=30)
    client = _client(server, Recorder(), RetryConfig(attempts=2, wait_initial=0.01, wait_max=0.3))
    with set_testing(False):
        started = time.monotonic()
        client.converse(modelId=HAIKU, messages=messages(PROMPT))
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.3
    client.close()


def test_failed_and_abandoned_streams_give_their_slot_back_without_the_garbage_collector(
    server: FakeBedrockServer, pool_warnings: _PoolWarnings
) -> None:
    """With one pooled connection and the collector off, every slot must come back when the stream ends."""
    server.reset()
    config = Config(retries={"total_max_attempts": 1}, max_pool_connections=1, read_timeout=READ_TIMEOUT)
    client = SafeBedrockClient(allow=[HAIKU], client=server.client(config=config))
    gc.collect()
    gc.disable()
    try:
        with capture_logs():
            for i in range(30):
                if i % 3 == 0:
                    server.add_stream_error("throttlingException", after=1, operation="ConverseStream")
                    with pytest.raises(ThrottlingError):
                        list(client.converse_stream(modelId=HAIKU, messages=messages(PROMPT))["stream"])
                elif i % 3 == 1:
                    with client.converse_stream(modelId=HAIKU, messages=messages(PROMPT))["stream"] as events:
                        next(iter(events))
                else:
                    client.converse(modelId=HAIKU, messages=messages(PROMPT))
                assert established_to(server.port) <= 1
    finally:
        gc.enable()
    # A slot still held by a stream's reader would come back now, into a full pool: urllib3 warns then.
    gc.collect()
    assert pool_warnings.messages == []
    client.close()
