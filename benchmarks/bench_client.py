"""SafeBedrockClient against raw boto3 on the same transport: what the guard costs, with logging on and off.

Both sides are real boto3 bedrock-runtime clients with the same Config, talking to the same fake (in-process
FakeBedrock, then FakeBedrockServer over loopback); the only difference is the guard (identify, allowlist,
wire check, translate, retry loop, stream wrapper, one log event).

- logging on (what users pay; the targets that matter): structlog configured the way an app does in
  production (contextvars, level, ISO timestamp, JSONRenderer, cached loggers) writing to /dev/null,
  configured here and reset after. The safe client logs its one `bedrock.call` event through it; the raw
  side emits one bare structlog event with the same fields itself (latency, request id, tokens; for streams
  TTFT, events, bytes), so both sides pay for a log line and the ratio is the guard alone. Both events are
  checked to have the same keys before timing. Target <= 1.05x for invoke_model and a 100-event stream,
  in-process and over loopback.
- logging off (the library's default: nothing configured, the event is not even built): the same pairs,
  with the earlier targets (invoke_model <= 1.05x in-process, <= 1.03x over loopback; stream <= 1.05x).

Noise: each comparison runs its two sides in interleaved rounds (the side that goes first alternates, each
round starts from a collected heap); a round's sample is its mean time per call. Each side's value is the
10th percentile over its rounds, and the ratio is p10(safe) / p10(raw); the table shows the medians too.

`--profile` profiles raw and safe invoke_model and the stream in-process (logging on and off) and prints
the own time per call by module (ours by file; structlog, tenacity, botocore by package), raw vs safe, and
our functions by cumulative time.

Prints `RATIO <name> <value> <target>` lines for benchmarks/run_all.py.
Run: .venv/bin/python benchmarks/bench_client.py [--rounds N] [--calls N] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from _bench import interleave, low_quantile, print_profiles, profiled, ratio_line, verdict
from botocore.config import Config

from safe_bedrock import SafeBedrockClient
from safe_bedrock.testing import FakeBedrock, FakeBedrockServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
REGION = "us-east-1"
ARN = f"arn:aws:bedrock:{REGION}::foundation-model/{MODEL}"
CONFIG = Config(retries={"total_max_attempts": 1})
QUANTILE = 0.1
BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hi"}],
    }
)
STREAM_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 512,
        "messages": [{"role": "user", "content": "Tell me a story"}],
    }
)
STREAM_EVENTS = 100
METRICS = "amazon-bedrock-invocationMetrics"
# A fixed streamed answer: one delta per word plus 5 start/stop events makes 100 events.
STREAM_TEXT = " ".join(f"w{i}" for i in range(STREAM_EVENTS - 5))

# The raw side's own logger (an app's module-level logger), resolved through the same configuration.
app_log = structlog.get_logger("app")


# One sink and one processor list for the whole run: loggers cached on first use keep the file and the list
# they were built with (and capture_logs edits that list in place).
DEVNULL = Path(os.devnull).open("w", encoding="utf-8")  # noqa: SIM115 - closed with the process
PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.JSONRenderer(),
]


@contextlib.contextmanager
def structlog_json_to_devnull() -> Iterator[None]:
    """structlog as an app configures it for production (JSON lines), writing to /dev/null; reset after."""
    structlog.configure(
        processors=PROCESSORS,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(file=DEVNULL),
        cache_logger_on_first_use=True,
    )
    try:
        yield
    finally:
        structlog.reset_defaults()


def fresh(fake: FakeBedrock | FakeBedrockServer) -> None:
    """What a test starts from: no recorded requests (a long log would time the collector), the route."""
    fake.reset()
    fake.route("anthropic.*", text=STREAM_TEXT, operation="InvokeModelWithResponseStream")


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


# --- what each side does per call ----------------------------------------------------------------------


def invoke(client: Any) -> Callable[[], None]:
    def call() -> None:
        client.invoke_model(modelId=MODEL, body=BODY)["body"].read()

    return call


def stream(client: Any) -> Callable[[], None]:
    def call() -> None:
        count = 0
        for _ in client.invoke_model_with_response_stream(modelId=MODEL, body=STREAM_BODY)["body"]:
            count += 1
        assert count == STREAM_EVENTS, count

    return call


def invoke_logged(client: Any) -> Callable[[], None]:
    """Raw boto3 plus the one event an app would log itself, with the fields the safe client logs."""

    def call() -> None:
        started = time.perf_counter()
        response = client.invoke_model(modelId=MODEL, body=BODY)
        response["body"].read()
        metadata = response["ResponseMetadata"]
        headers = metadata["HTTPHeaders"]
        app_log.info(
            "bedrock.call",
            operation="InvokeModel",
            model_id=MODEL,
            model_arn=ARN,
            region=REGION,
            outcome="ok",
            latency_ms=round((time.perf_counter() - started) * 1000.0, 3),
            attempts=1,
            request_id=metadata.get("RequestId"),
            input_tokens=_int(headers.get("x-amzn-bedrock-input-token-count")),
            output_tokens=_int(headers.get("x-amzn-bedrock-output-token-count")),
        )

    return call


def stream_logged(client: Any) -> Callable[[], None]:
    """Raw boto3 stream plus the one event an app would log itself: TTFT, events, bytes, tokens."""

    def call() -> None:
        started = time.perf_counter()
        response = client.invoke_model_with_response_stream(modelId=MODEL, body=STREAM_BODY)
        ttft, events, size, last = None, 0, 0, b""
        for event in response["body"]:
            if ttft is None:
                ttft = time.perf_counter() - started
            events += 1
            last = event["chunk"]["bytes"]
            size += len(last)
        assert events == STREAM_EVENTS, events
        metrics = json.loads(last).get(METRICS) or {}
        app_log.info(
            "bedrock.call",
            operation="InvokeModelWithResponseStream",
            model_id=MODEL,
            model_arn=ARN,
            region=REGION,
            outcome="ok",
            latency_ms=round((time.perf_counter() - started) * 1000.0, 3),
            attempts=1,
            request_id=response["ResponseMetadata"].get("RequestId"),
            input_tokens=metrics.get("inputTokenCount"),
            output_tokens=metrics.get("outputTokenCount"),
            stream=True,
            ttft_ms=round((ttft or 0.0) * 1000.0, 3),
            events=events,
            bytes=size,
            closed_early=False,
            complete=bool(metrics),
        )

    return call


def check_same_fields(raw: Callable[[], None], safe: Callable[[], None]) -> None:
    """Each side logs exactly one `bedrock.call` event per call, with the same keys."""
    with structlog.testing.capture_logs() as raw_events:
        raw()
    with structlog.testing.capture_logs() as safe_events:
        safe()
    assert len(raw_events) == len(safe_events) == 1, (raw_events, safe_events)
    raw_keys, safe_keys = set(raw_events[0]), set(safe_events[0])
    assert raw_keys == safe_keys, (raw_keys ^ safe_keys, raw_events, safe_events)


# --- measuring ------------------------------------------------------------------------------------------

Row = tuple[str, float, float, float, float, str]  # name, raw p10, safe p10, ratio, median ratio, target


def compare(
    name: str,
    raw: Callable[[], None],
    safe: Callable[[], None],
    *,
    rounds: int,
    calls: int,
    target: str,
    between: Callable[[], object],
) -> Row:
    samples = interleave({"raw": raw, "safe": safe}, rounds=rounds, calls=calls, between=between)
    raw_low, safe_low = low_quantile(samples["raw"], QUANTILE), low_quantile(samples["safe"], QUANTILE)
    median_ratio = statistics.median(samples["safe"]) / statistics.median(samples["raw"])
    return name, raw_low, safe_low, safe_low / raw_low, median_ratio, target


def measure(
    transport: str,
    raw_client: Any,
    safe: SafeBedrockClient,
    *,
    rounds: int,
    calls: int,
    between: Callable[[], object],
) -> list[Row]:
    stream_calls = max(1, calls // 4)
    rows = [
        compare(
            f"invoke_model_{transport}",
            invoke(raw_client),
            invoke(safe),
            rounds=rounds,
            calls=calls,
            target="<=1.05" if transport == "in-process" else "<=1.03",
            between=between,
        ),
        compare(
            f"stream100_{transport}",
            stream(raw_client),
            stream(safe),
            rounds=rounds,
            calls=stream_calls,
            target="<=1.05",
            between=between,
        ),
    ]
    with structlog_json_to_devnull():
        check_same_fields(invoke_logged(raw_client), invoke(safe))
        check_same_fields(stream_logged(raw_client), stream(safe))
        rows.append(
            compare(
                f"logged_invoke_model_{transport}",
                invoke_logged(raw_client),
                invoke(safe),
                rounds=rounds,
                calls=calls,
                target="<=1.05",
                between=between,
            )
        )
        rows.append(
            compare(
                f"logged_stream100_{transport}",
                stream_logged(raw_client),
                stream(safe),
                rounds=rounds,
                calls=stream_calls,
                target="<=1.05",
                between=between,
            )
        )
    return rows


# --- profiling ------------------------------------------------------------------------------------------


def profile_pair(title: str, raw: Callable[[], None], safe: Callable[[], None], calls: int) -> None:
    for _ in range(20):
        raw()
        safe()
    print_profiles(title, profiled(raw, calls), profiled(safe, calls), calls)


def profile(calls: int) -> None:
    with FakeBedrock() as fake:
        fresh(fake)
        raw_client = fake.client(config=CONFIG)
        safe = SafeBedrockClient(allow=[MODEL], client=fake.client(config=CONFIG))
        profile_pair("invoke_model in-process, logging off", invoke(raw_client), invoke(safe), calls)
        fresh(fake)
        with structlog_json_to_devnull():
            profile_pair(
                "invoke_model in-process, logging on", invoke_logged(raw_client), invoke(safe), calls
            )
            fresh(fake)
            profile_pair(
                "100-event stream in-process, logging on",
                stream_logged(raw_client),
                stream(safe),
                max(1, calls // 4),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds per comparison")
    parser.add_argument("--calls", type=int, default=40, help="invoke_model calls per round (streams: 1/4)")
    parser.add_argument("--profile", action="store_true", help="show where the guard's time goes, then stop")
    args = parser.parse_args()
    if args.profile:
        profile(max(200, args.calls * 5))
        return

    rows: list[Row] = []
    with FakeBedrock() as fake:
        fresh(fake)  # and again after each side's round (not timed)
        raw_client = fake.client(config=CONFIG)
        safe = SafeBedrockClient(allow=[MODEL], client=fake.client(config=CONFIG))
        rows += measure(
            "in-process", raw_client, safe, rounds=args.rounds, calls=args.calls, between=lambda: fresh(fake)
        )
    with FakeBedrockServer() as server:
        fresh(server)
        raw_client = server.client(config=CONFIG)
        safe = SafeBedrockClient(allow=[MODEL], client=server.client(config=CONFIG))
        rows += measure(
            "loopback", raw_client, safe, rounds=args.rounds, calls=args.calls, between=lambda: fresh(server)
        )

    print(
        f"SafeBedrockClient vs raw boto3: {args.rounds} interleaved rounds, {args.calls} invoke_model calls"
        f" (or {max(1, args.calls // 4)} streams) per round; p10 of per-round mean time per call"
    )
    header = (
        f"{'comparison':34} {'raw us':>9} {'safe us':>9} {'ratio':>7} {'median':>7} {'target':>7}  verdict"
    )
    print(header)
    print("-" * len(header))
    for name, raw_low, safe_low, ratio, median_ratio, target in rows:
        print(
            f"{name:34} {raw_low * 1e6:9.1f} {safe_low * 1e6:9.1f} {ratio:7.3f} {median_ratio:7.3f}"
            f" {target:>7}  {verdict(ratio, target)}"
        )
    print("(logged_*: structlog JSON to /dev/null; the raw side logs one bare event with the same fields)")
    for name, _raw, _safe, ratio, _median, target in rows:
        print(ratio_line(f"client:{name}", ratio, target))


if __name__ == "__main__":
    main()
