"""A burst of 200 concurrent chat streams: AsyncSafeBedrockClient against raw aiobotocore, same server.

The burst of bench_chat_load.py (N converse_stream calls opened at once, default 200; each answer 30 tokens
paced 20 ms apart like a model), sent by each client in turn to the same FakeBedrockServer, which runs in a
child process. Both clients are entered once with the same AioConfig and kept across bursts, as a chat
backend keeps its client; the consumer code is the same for both (`await converse_stream`, then
`async for` over the stream to its end). Logging at the library's default (not configured).

Per burst: time to first token (call start -> first text delta in the consumer's hands) p50 and p99 over
the N streams, and the wall time of the whole burst; every stream's answer is checked complete.

Noise: one warm-up burst per side (connections, caches), then `--bursts` bursts per side (default 7),
interleaved with the order alternating (raw, safe, safe, raw, ...). Each side's value for each metric is the
20th percentile over its bursts (between the 2nd and 3rd best of 7), and the ratio is safe / raw of those;
the table shows the medians too. Target: <= 1.05x for TTFT p50, TTFT p99 and wall time.

`--profile` runs one burst per side under cProfile and prints own time per stream by module, raw vs safe.

Prints `RATIO <name> <value> <target>` lines for benchmarks/run_all.py.
Run: .venv-aio/bin/python benchmarks/bench_async_burst.py [--streams 200] [--bursts 7] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import os
import pstats
import statistics
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from _bench import low_quantile, print_profiles, ratio_line, serve_streams, verdict
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from safe_bedrock import AsyncSafeBedrockClient

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
KEY, SECRET = "AKIAFAKEBEDROCK00000", "fake-secret-access-key-for-safe-bedrock"
QUANTILE = 0.2
TARGET = "<=1.05"
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]


@dataclass(frozen=True, slots=True)
class Burst:
    ttft_p50: float
    ttft_p99: float
    wall: float


async def burst(client: Any, streams: int, tokens: int) -> Burst:
    ttfts: list[float] = []
    complete = 0

    async def one() -> None:
        nonlocal complete
        started = time.perf_counter()
        response = await client.converse_stream(modelId=MODEL, messages=MESSAGES)
        got = 0
        async for event in response["stream"]:
            if "contentBlockDelta" in event:
                if got == 0:
                    ttfts.append(time.perf_counter() - started)
                got += 1
        complete += got == tokens

    began = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(streams)))
    wall = time.perf_counter() - began
    assert complete == streams, f"{streams - complete} of {streams} streams incomplete"
    return Burst(statistics.median(ttfts), low_quantile(ttfts, 0.99), wall)


async def clients(stack: AsyncExitStack, endpoint: str, streams: int) -> dict[str, Any]:
    session = AioSession(session_vars={"profile": (None, None, None, None)})
    session.set_config_variable("config_file", os.devnull)
    session.set_config_variable("credentials_file", os.devnull)
    session.set_credentials(KEY, SECRET)
    settings: dict[str, Any] = {
        "region_name": "us-east-1",
        "endpoint_url": endpoint,
        # The same for both: a slot per stream, and botocore's retries off (what the safe client sets).
        "config": AioConfig(
            max_pool_connections=streams,
            read_timeout=60,
            connect_timeout=30,
            retries={"total_max_attempts": 1},
        ),
    }
    raw = await stack.enter_async_context(session.create_client("bedrock-runtime", **settings))
    safe = await stack.enter_async_context(AsyncSafeBedrockClient(allow=[MODEL], session=session, **settings))
    return {"raw": raw, "safe": safe}


async def run(endpoint: str, args: argparse.Namespace) -> dict[str, list[Burst]]:
    async with AsyncExitStack() as stack:
        sides = await clients(stack, endpoint, args.streams)
        for client in sides.values():  # warm-up: a full pool of connections, caches
            await burst(client, args.streams, args.tokens)
        if args.profile:
            stats = {}
            for name, client in sides.items():
                profiler = cProfile.Profile()
                profiler.enable()
                await burst(client, args.streams, args.tokens)
                profiler.disable()
                stats[name] = pstats.Stats(profiler)
            print_profiles(
                f"one burst of {args.streams} streams (per stream)", stats["raw"], stats["safe"], args.streams
            )
            return {}
        results: dict[str, list[Burst]] = {"raw": [], "safe": []}
        for index in range(args.bursts):
            order = ["raw", "safe"] if index % 2 == 0 else ["safe", "raw"]
            for name in order:
                results[name].append(await burst(sides[name], args.streams, args.tokens))
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=30)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds between a stream's tokens")
    parser.add_argument("--bursts", type=int, default=7, help="measured bursts per side")
    parser.add_argument("--profile", action="store_true", help="show where the time goes, then stop")
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    answers = (args.bursts + 2) * 2 * args.streams
    server = context.Process(target=serve_streams, args=(child, answers, args.tokens, args.delay))
    server.start()
    try:
        results = asyncio.run(run(parent.recv(), args))
    finally:
        parent.send("stop")
        server.join(10)
    if args.profile:
        return

    print(
        f"{args.streams} concurrent converse_stream calls per burst, {args.tokens} tokens each"
        f" {args.delay * 1000:.0f} ms apart, fake server in a child process, {os.cpu_count()} cores;"
        f" {args.bursts} bursts per side, interleaved; p20 over bursts (median)"
    )
    metrics = ("ttft_p50", "ttft_p99", "wall")
    header = f"{'metric':10} {'raw aiobotocore':>20} {'AsyncSafe':>20} {'ratio':>7} {'target':>7}  verdict"
    print(header)
    print("-" * len(header))
    lines = []
    for metric in metrics:
        raw = [getattr(b, metric) for b in results["raw"]]
        safe = [getattr(b, metric) for b in results["safe"]]
        raw_low, safe_low = low_quantile(raw, QUANTILE), low_quantile(safe, QUANTILE)
        ratio = safe_low / raw_low
        cells = [
            f"{low * 1e3:7.1f} ({statistics.median(v) * 1e3:7.1f}) ms"
            for low, v in ((raw_low, raw), (safe_low, safe))
        ]
        print(f"{metric:10} {cells[0]:>20} {cells[1]:>20} {ratio:7.3f} {TARGET:>7}  {verdict(ratio, TARGET)}")
        lines.append(ratio_line(f"async_burst:{metric}", ratio, TARGET))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
