"""SafeBedrockClient overhead against raw boto3 on the same transport, measured side by side.

Both clients are real boto3 bedrock-runtime clients with the same Config, talking to the same fake; the
only difference is the guard (parse, allowlist, translate, retry policy, stream wrapper, one log event with
logging at its defaults: nothing configured, so the event goes to a NullHandler). Rounds alternate which
side runs first; each round takes the median of its calls; the ratio is median(safe) / median(raw) over
rounds.

Targets (issue 5): invoke_model <= 1.05x in-process, <= 1.03x on loopback; a 100-event stream <= 1.05x.
Prints `RATIO <name> <value> <target>` lines for benchmarks/run_all.py.
Run: .venv/bin/python benchmarks/bench_client.py [--rounds N] [--calls N]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import time
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from safe_bedrock import SafeBedrockClient
from safe_bedrock.testing import FakeBedrock, FakeBedrockServer

if TYPE_CHECKING:
    from collections.abc import Callable

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
CONFIG = Config(retries={"total_max_attempts": 1})
BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hi"}],
    }
)
# The fake streams one delta per word, plus the message start/stop events: 95 words give 100 events.
STREAM_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 512,
        "messages": [{"role": "user", "content": " ".join(f"w{i}" for i in range(95))}],
    }
)


def invoke(client: Any) -> None:
    client.invoke_model(modelId=MODEL, body=BODY)["body"].read()


def stream(client: Any) -> None:
    response = client.invoke_model_with_response_stream(modelId=MODEL, body=STREAM_BODY)
    for _ in response["body"]:
        pass


def timed(fn: Callable[[Any], None], client: Any, calls: int) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn(client)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def compare(name: str, fn: Callable[[Any], None], raw: Any, safe: Any, *, rounds: int, calls: int) -> float:
    for _ in range(max(3, calls // 10)):  # warm both
        fn(raw)
        fn(safe)
    raw_times, safe_times = [], []
    for round_ in range(rounds):
        order = [(raw, raw_times), (safe, safe_times)]
        if round_ % 2:
            order.reverse()
        for client, sink in order:
            sink.append(timed(fn, client, calls))
    raw_median, safe_median = statistics.median(raw_times), statistics.median(safe_times)
    ratio = safe_median / raw_median
    print(f"{name:<34} raw {raw_median * 1e6:9.1f} us   safe {safe_median * 1e6:9.1f} us   ratio {ratio:.3f}")
    return ratio


def profile(fn: Callable[[Any], None], safe: Any, calls: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn(safe)
    profiler.disable()
    stats = pstats.Stats(profiler).sort_stats("cumulative")
    print("  where the time goes in safe_bedrock (cumulative, per call):")
    for (path, _line, func), (_cc, _nc, _tt, cumulative, _callers) in sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda item: -item[1][3],
    ):
        if "safe_bedrock" in path and "testing" not in path:
            print(f"    {cumulative / calls * 1e6:8.1f} us  {path.rsplit('/', 1)[-1]}:{func}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="show where the guard's time goes")
    args = parser.parse_args()
    targets = {"invoke_model in-process": 1.05, "invoke_model loopback": 1.03}
    results: dict[str, tuple[float, float]] = {}

    with FakeBedrock() as fake:
        raw = fake.client(config=CONFIG)
        safe = SafeBedrockClient(allow=[MODEL], client=fake.client(config=CONFIG))
        ratio = compare("invoke_model in-process", invoke, raw, safe, rounds=args.rounds, calls=args.calls)
        results["invoke_model in-process"] = (ratio, targets["invoke_model in-process"])
        ratio = compare(
            "100-event stream in-process", stream, raw, safe, rounds=args.rounds, calls=args.calls // 4
        )
        results["stream100 in-process"] = (ratio, 1.05)
        if args.profile:
            profile(invoke, safe, args.calls)

    with FakeBedrockServer() as server:
        raw = server.client(config=CONFIG)
        safe = SafeBedrockClient(allow=[MODEL], client=server.client(config=CONFIG))
        ratio = compare("invoke_model loopback", invoke, raw, safe, rounds=args.rounds, calls=args.calls)
        results["invoke_model loopback"] = (ratio, targets["invoke_model loopback"])
        ratio = compare(
            "100-event stream loopback", stream, raw, safe, rounds=args.rounds, calls=args.calls // 4
        )
        results["stream100 loopback"] = (ratio, 1.05)

    for name, (ratio, target) in results.items():
        print(f"RATIO client:{name.replace(' ', '_')} {ratio:.3f} {target}")


if __name__ == "__main__":
    main()
