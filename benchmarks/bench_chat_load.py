"""200 concurrent chat streams: the async client on one thread vs the sync client on a thread pool.

A chat backend holds one Bedrock stream open per conversation. This benchmark opens N (default 200)
converse_stream calls at once against the fake Bedrock server, each answer paced like a model (30 tokens,
20 ms apart), and reports side by side for AsyncSafeBedrockClient (asyncio tasks) and SafeBedrockClient
(a ThreadPoolExecutor with one worker per stream, what a sync backend needs to hold them all):

- time to first token (call start -> first event in the consumer's hands), p50 and p99
- wall time for all streams, and every stream's answer checked complete
- threads alive in this process during the run (sampled; the peak), against the baseline before it

The fake server runs in a child process, so its own per-connection threads are not counted here.

Noise: each side runs `--repeats` bursts (default 3), interleaved with the order alternating (async, sync,
sync, async, ...), each with a fresh client. Times (TTFT p50/p99, wall) are each side's 20th percentile over
its bursts (medians beside); threads added and streams completed are the worst burst, since they are
bounds. RATIO lines: threads the async client added (<= streams/10: no thread per stream), the share of
its streams completed (>= 1), and, for information, its TTFT p99 over the sync client's.

    .venv-aio/bin/python benchmarks/bench_chat_load.py [--streams 200] [--tokens 30] [--delay 0.02]
        [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from _bench import low_quantile, ratio_line, serve_streams, verdict

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
KEY, SECRET = "AKIAFAKEBEDROCK00000", "fake-secret-access-key-for-safe-bedrock"


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    ttft: list[float]
    wall: float
    peak_threads: int
    baseline_threads: int
    complete: int


QUANTILE = 0.2


async def run_async(endpoint: str, streams: int, tokens: int) -> Result:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession

    from safe_bedrock import AsyncSafeBedrockClient

    session = AioSession(session_vars={"profile": (None, None, None, None)})
    session.set_config_variable("config_file", os.devnull)
    session.set_config_variable("credentials_file", os.devnull)
    session.set_credentials(KEY, SECRET)
    baseline = threading.active_count()
    peak = baseline
    ttfts: list[float] = []
    complete = 0

    async with AsyncSafeBedrockClient(
        allow=[MODEL],
        session=session,
        region_name="us-east-1",
        endpoint_url=endpoint,
        config=AioConfig(max_pool_connections=streams, read_timeout=60, connect_timeout=30),
    ) as client:
        await client.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "warm"}]}])
        baseline = peak = threading.active_count()

        async def one() -> None:
            nonlocal complete
            started = time.perf_counter()
            response = await client.converse_stream(
                modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
            )
            got = 0
            async with response["stream"] as events:
                async for event in events:
                    if "contentBlockDelta" in event:
                        if got == 0:
                            ttfts.append(time.perf_counter() - started)
                        got += 1
            complete += got == tokens

        async def sample(stop: asyncio.Event) -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, threading.active_count())
                await asyncio.sleep(0.01)

        stop = asyncio.Event()
        sampler = asyncio.create_task(sample(stop))
        began = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(streams)))
        wall = time.perf_counter() - began
        stop.set()
        await sampler
    return Result("async (AsyncSafeBedrockClient)", ttfts, wall, peak, baseline, complete)


def run_sync(endpoint: str, streams: int, tokens: int) -> Result:
    import boto3
    import botocore.session
    from botocore.config import Config

    from safe_bedrock import SafeBedrockClient

    isolated = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    isolated.set_config_variable("config_file", os.devnull)
    isolated.set_config_variable("credentials_file", os.devnull)
    isolated.set_credentials(KEY, SECRET)
    client = SafeBedrockClient(
        allow=[MODEL],
        session=boto3.session.Session(botocore_session=isolated),
        region_name="us-east-1",
        endpoint_url=endpoint,
        config=Config(max_pool_connections=streams, read_timeout=60, connect_timeout=30),
    )
    client.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "warm"}]}])
    baseline = threading.active_count()
    peak = baseline
    ttfts: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def one() -> bool:
        started = time.perf_counter()
        response = client.converse_stream(
            modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
        got = 0
        with response["stream"] as events:
            for event in events:
                if "contentBlockDelta" in event:
                    if got == 0:
                        with lock:
                            ttfts.append(time.perf_counter() - started)
                    got += 1
        return got == tokens

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, threading.active_count() - 1)  # not counting the sampler itself
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=streams) as pool:
        results = list(pool.map(lambda _: one(), range(streams)))
    wall = time.perf_counter() - began
    done.set()
    sampler.join()
    client.close()
    return Result("sync (SafeBedrockClient + threads)", ttfts, wall, peak, baseline, sum(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=30)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds between a stream's tokens")
    parser.add_argument("--repeats", type=int, default=3, help="bursts per side, order alternating")
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    answers = 2 * args.repeats * (args.streams + 1)
    server = context.Process(target=serve_streams, args=(child, answers, args.tokens, args.delay))
    server.start()
    runs: dict[str, list[Result]] = {"async": [], "sync": []}
    try:
        endpoint = parent.recv()
        for index in range(args.repeats):
            for side in ("async", "sync") if index % 2 == 0 else ("sync", "async"):
                if side == "async":
                    runs[side].append(asyncio.run(run_async(endpoint, args.streams, args.tokens)))
                else:
                    runs[side].append(run_sync(endpoint, args.streams, args.tokens))
    finally:
        parent.send("stop")
        server.join(10)

    ideal = args.tokens * args.delay
    print(
        f"{args.streams} concurrent converse_stream calls, {args.tokens} tokens each,"
        f" {args.delay * 1000:.0f} ms apart (one stream alone: ~{ideal:.2f} s),"
        f" fake Bedrock server in a child process, {os.cpu_count()} cores;"
        f" {args.repeats} bursts per side, p20 (median) of times, worst of counts\n"
    )
    columns = ("TTFT p50", 17), ("TTFT p99", 17), ("wall", 15), ("complete", 9), ("threads +", 9)
    header = f"{'client':36} " + " ".join(f"{name:>{width}}" for name, width in columns)
    print(header)
    print("-" * len(header))

    def times(side: str, metric: str) -> tuple[float, float]:
        values = [
            statistics.median(r.ttft)
            if metric == "p50"
            else low_quantile(r.ttft, 0.99)
            if metric == "p99"
            else r.wall
            for r in runs[side]
        ]
        return low_quantile(values, QUANTILE), statistics.median(values)

    added = {side: max(r.peak_threads - r.baseline_threads for r in runs[side]) for side in runs}
    complete = {side: min(r.complete for r in runs[side]) for side in runs}
    for side in runs:
        (p50, p50m), (p99, p99m), (wall, wallm) = (times(side, m) for m in ("p50", "p99", "wall"))
        ttft = f"{p50 * 1e3:6.1f} ({p50m * 1e3:6.1f})ms {p99 * 1e3:6.1f} ({p99m * 1e3:6.1f})ms"
        print(
            f"{runs[side][0].name:36} {ttft} {wall:5.2f} ({wallm:5.2f})s"
            f" {complete[side]:>4}/{args.streams:<4} {added[side]:>+9}"
        )
    p99_ratio = times("async", "p99")[0] / times("sync", "p99")[0]
    bound = f"<={args.streams // 10}"
    share = complete["async"] / args.streams
    held = verdict(added["async"], bound)
    print(
        f"\nthreads added while holding the streams: async +{added['async']} ({held} {bound}),"
        f" sync +{added['sync']}; async streams completed {share:.0%};"
        f" TTFT p99 async/sync {p99_ratio:.2f}x (information)"
    )
    # For benchmarks/run_all.py: the async path must hold every stream without a thread per stream.
    print(ratio_line("chat_load:async_threads_added", added["async"], bound))
    print(ratio_line("chat_load:async_streams_completed", share, ">=1"))
    print(ratio_line("chat_load:ttft_p99_async_vs_sync", p99_ratio, "-"))


if __name__ == "__main__":
    main()
