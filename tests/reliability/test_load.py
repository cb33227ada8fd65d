"""Under load: one shared client, many threads, a mix of allowed, refused and failing calls and streams.

32 threads share one SafeBedrockClient against FakeBedrockServer over real sockets. Every call is checked
for exactly the outcome its kind must have; afterwards the hook, the log capture and the fake's request
log must each account for every call exactly once, nothing refused may appear on the wire, and the
connection pool may not have grown past what the threads can hold at once.

The everyday run makes 32 x 60 calls; `SAFE_BEDROCK_SOAK=10` (`make soak`) makes the full 32 x 500.
"""

from __future__ import annotations

import collections
import gc
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from botocore.config import Config
from structlog.testing import capture_logs

from safe_bedrock import (
    InvalidModelIdError,
    InvalidRequestError,
    ModelNotAllowedError,
    SafeBedrockClient,
    ThrottlingError,
)
from safe_bedrock._retry import set_testing
from safe_bedrock.testing import FakeBedrockServer
from tests.clienthelpers import HAIKU, LLAMA, SONNET, US_HAIKU, anthropic_body, messages, stream_text
from tests.reliability.relhelpers import (
    Recorder,
    can_count_connections,
    established_to,
    foreign_threads,
    scaled,
    wait_for,
)

THREADS = 32
CALLS_PER_THREAD = scaled(60, full=500)
WARM_UP_CALLS = 4  # per thread, before the pool is measured

TITAN = "amazon.titan-text-express-v1"  # allowed; every stream of it fails after two events
MISTRAL = "mistral.mistral-large-2402-v1:0"  # allowed; always throttled (retried, then raised)
ALLOWED = (HAIKU, LLAMA, TITAN, MISTRAL)
INVALID = "<invalid id>"  # stands for the malformed ids, which differ call by call
ATTEMPTS = 3  # RetryConfig's default: a throttled call costs three requests

pytestmark = pytest.mark.skipif(not can_count_connections(), reason="reads the kernel's TCP table")


@dataclass(frozen=True)
class Kind:
    """One kind of call: what it sends (`requests` per call, to `model`) and what it must end as."""

    name: str
    run: Callable[[SafeBedrockClient, FakeBedrockServer, str], None]
    operation: str
    model: str
    outcome: str
    requests: int


def _invoke(client: SafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    answer = json.loads(client.invoke_model(modelId=HAIKU, body=anthropic_body(tag))["body"].read())
    assert answer["content"][0]["text"] == f"You said: {tag}"


def _converse(client: SafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    answer = client.converse(modelId=HAIKU, messages=messages(tag))
    # The answer echoes this very call's prompt: no answer crossed over from another thread.
    assert answer["output"]["message"]["content"][0]["text"] == f"You said: {tag}"


def _stream_to_end(client: SafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    with client.converse_stream(modelId=HAIKU, messages=messages(tag))["stream"] as events:
        assert stream_text(events) == f"You said: {tag}"


def _stream_left_early(client: SafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    events = client.invoke_model_with_response_stream(modelId=HAIKU, body=anthropic_body(tag))["body"]
    next(iter(events))
    if len(tag) % 2:
        events.close()
    else:
        del events  # dropped without close(): collection must give the connection back


def _refused(client: SafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    with pytest.raises(ModelNotAllowedError):
        client.converse(modelId=SONNET, messages=messages(tag))


def _refused_profile_stream(client: SafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    # The model is allowed, its cross-Region profile is not (data residency).
    with pytest.raises(ModelNotAllowedError):
        client.converse_stream(modelId=US_HAIKU, messages=messages(tag))


def _invalid(client: SafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    with pytest.raises(InvalidModelIdError):
        client.invoke_model(modelId=f"{HAIKU}/../{tag}", body=anthropic_body(tag))


def _validation(client: SafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    with pytest.raises(InvalidRequestError):
        client.converse(modelId=LLAMA, messages=messages(tag))


def _throttled(client: SafeBedrockClient, _server: FakeBedrockServer, tag: str) -> None:
    with pytest.raises(ThrottlingError) as caught:
        client.converse(modelId=MISTRAL, messages=messages(tag))
    assert not caught.value.mid_stream


def _mid_stream_failure(client: SafeBedrockClient, server: FakeBedrockServer, tag: str) -> None:
    # Each call queues its own failing answer first, so the queue never runs dry (another thread may use
    # this one; then its own waits for this call) and stays as short as the number of threads.
    server.add_stream_error("throttlingException", after=2, model=TITAN)
    seen: list[object] = []
    with pytest.raises(ThrottlingError) as caught:
        seen.extend(client.converse_stream(modelId=TITAN, messages=messages(tag))["stream"])
    assert caught.value.mid_stream
    assert caught.value.events_received == len(seen) == 2


KINDS = (
    Kind("invoke", _invoke, "InvokeModel", HAIKU, "ok", 1),
    Kind("converse", _converse, "Converse", HAIKU, "ok", 1),
    Kind("stream to the end", _stream_to_end, "ConverseStream", HAIKU, "ok", 1),
    Kind("stream left early", _stream_left_early, "InvokeModelWithResponseStream", HAIKU, "ok", 1),
    Kind("refused model", _refused, "Converse", SONNET, "refused", 0),
    Kind("refused profile", _refused_profile_stream, "ConverseStream", US_HAIKU, "refused", 0),
    Kind("invalid id", _invalid, "InvokeModel", INVALID, "refused", 0),
    Kind("validation error", _validation, "Converse", LLAMA, "error", 1),
    Kind("throttled", _throttled, "Converse", MISTRAL, "error", ATTEMPTS),
    Kind("mid-stream failure", _mid_stream_failure, "ConverseStream", TITAN, "error", 1),
)


def _plan(thread: int, calls: int, *, offset: int = 0) -> list[Kind]:
    return [KINDS[(thread * 7 + offset + i) % len(KINDS)] for i in range(calls)]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeBedrockServer]:
    with set_testing(True), FakeBedrockServer() as server:
        yield server


def _run_threads(
    client: SafeBedrockClient, server: FakeBedrockServer, plans: list[list[Kind]]
) -> list[tuple[str, BaseException]]:
    failures: list[tuple[str, BaseException]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(plans))

    def work(n: int) -> None:
        start.wait()
        for i, kind in enumerate(plans[n]):
            try:
                kind.run(client, server, f"thread {n} call {i}")
            except BaseException as exc:  # noqa: BLE001, PERF203 - each failure is reported by the main thread
                with lock:
                    failures.append((kind.name, exc))

    threads = [threading.Thread(target=work, args=(n,), name=f"load-{n}") for n in range(len(plans))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    return failures


class _PoolWarnings(logging.Handler):
    """Collects urllib3's "Connection pool is full" warnings: a slot given back late, or twice."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []
        self._logger = logging.getLogger("urllib3.connectionpool")

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> _PoolWarnings:
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self)


class _PeakSampler:
    """Samples the client's established connections to the server while the load runs."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, established_to(self.port))
            self.samples += 1
            self._stop.wait(0.02)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def test_one_shared_client_holds_under_load(server: FakeBedrockServer) -> None:  # noqa: PLR0915 - one story
    server.reset()
    server.route(LLAMA, error="ValidationException")
    server.route(MISTRAL, error="ThrottlingException")
    baseline_threads = set(threading.enumerate())
    recorder = Recorder()
    client = SafeBedrockClient(
        allow=list(ALLOWED),
        client=server.client(config=Config(retries={"total_max_attempts": 1}, max_pool_connections=THREADS)),
        hooks=[recorder],
    )
    warm_up = [_plan(n, WARM_UP_CALLS, offset=3) for n in range(THREADS)]
    plans = [_plan(n, CALLS_PER_THREAD) for n in range(THREADS)]

    assert _run_threads(client, server, warm_up) == []
    gc.collect()
    after_warm_up = established_to(server.port)
    server.reset()
    server.route(LLAMA, error="ValidationException")
    server.route(MISTRAL, error="ThrottlingException")
    recorder.clear()

    started = time.monotonic()
    with capture_logs() as logs, _PoolWarnings() as pool_warnings, _PeakSampler(server.port) as sampler:
        failures = _run_threads(client, server, plans)
        gc.collect()
    elapsed = time.monotonic() - started
    at_end = established_to(server.port)

    # Zero unexpected errors: every call ended exactly as its kind must.
    assert failures == [], failures[:5]

    total = THREADS * CALLS_PER_THREAD
    planned = collections.Counter(kind for plan in plans for kind in plan)
    expected_outcomes: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for kind, count in planned.items():
        expected_outcomes[kind.operation, kind.model, kind.outcome] += count

    # Exactly one hook call and one log event per call, each with the outcome its kind must have.
    details = recorder.snapshot()
    assert len(details) == total
    known = {*ALLOWED, SONNET, US_HAIKU}
    seen_outcomes = collections.Counter(
        (d.operation, d.model_id if d.model_id in known else INVALID, d.outcome) for d in details
    )
    assert seen_outcomes == expected_outcomes
    call_logs = [log for log in logs if log["event"] == "bedrock.call"]
    assert len(call_logs) == total
    assert collections.Counter(log["outcome"] for log in call_logs) == collections.Counter(
        d.outcome for d in details
    )
    assert [log for log in logs if log["event"] != "bedrock.call"] == []

    # The wire: only allowed models, exactly the requests the plan implies, nothing refused.
    sent = collections.Counter(request.model_id for request in server.requests)
    expected_sent: collections.Counter[str | None] = collections.Counter()
    for kind, count in planned.items():
        if kind.requests:
            expected_sent[kind.model] += kind.requests * count
    assert sent == expected_sent
    assert set(sent) <= set(ALLOWED)
    server.assert_no_pending_responses()

    # The pool is bounded: about one connection per thread. A leak would add one with every abandoned or
    # failed stream (hundreds per run); the slack covers connections being replaced at the moment the
    # kernel's table is read (a closed one not yet gone while its successor is up), seen up to +5 on a
    # loaded machine. Every slot also came back at once: urllib3 warns "pool is full" when a slot comes
    # back late (from the garbage collector) after a new connection replaced it.
    slack = THREADS // 4
    assert sampler.samples > 0
    assert sampler.peak <= THREADS + slack, (sampler.peak, after_warm_up)
    assert at_end <= max(after_warm_up, THREADS) + slack
    assert pool_warnings.messages == []

    client.close()
    assert wait_for(lambda: established_to(server.port) == 0)
    # No thread outlives the load: not ours, and the server's connection threads end with the connections.
    assert wait_for(lambda: not foreign_threads(baseline_threads))
    assert wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith("fake-bedrock-conn-")])
    print(  # noqa: T201 - the figures of the run, shown with `pytest -s` (README "What we test")
        f"\nload: {THREADS} threads x {CALLS_PER_THREAD} calls = {total} calls in {elapsed:.1f} s; "
        f"peak {sampler.peak} connections (warm-up {after_warm_up}, end {at_end})"
    )
