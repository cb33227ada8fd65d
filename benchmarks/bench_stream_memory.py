"""Memory of a long stream: a 100,000-event converse_stream must raise peak RSS by less than 10 MB.

The fake server runs in its own process, so only the client's memory is measured. Each run (raw boto3 or
SafeBedrockClient) is a fresh child process that records its peak RSS (ru_maxrss) once the call has
returned and again after the last event; the difference is what iterating the stream cost.

Noise: this is memory, not time, so scheduling noise barely moves it; still, each side runs `--repeats`
times (default 2) in alternating order (raw, safe, safe, raw, ...) and its value is the smallest of its
runs (the low quantile of so few). Prints `RATIO` lines for benchmarks/run_all.py: the MB the safe client
added (target <= 10) and, for information, (safe + 1 MB) / (raw + 1 MB).
Run: .venv/bin/python benchmarks/bench_stream_memory.py [--events N] [--repeats N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
from typing import Any

from _bench import ratio_line, verdict
from botocore.config import Config

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
CONFIG = Config(retries={"total_max_attempts": 1}, read_timeout=120)


def _serve(events: int, runs: int, ready: Any, stop: Any) -> None:
    from safe_bedrock.testing import FakeBedrockServer  # imported in the child only

    with FakeBedrockServer() as server:
        server.add_stream(chunks=["w "] * events, times=runs)
        ready.send(server.endpoint_url)
        stop.wait()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _consume(endpoint_url: str, safe: bool, out: Any) -> None:  # noqa: FBT001
    import boto3

    from safe_bedrock import SafeBedrockClient

    client: Any = boto3.client(
        "bedrock-runtime",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="AKIDBENCHMARK",
        aws_secret_access_key="benchmark",
        config=CONFIG,
    )
    if safe:
        client = SafeBedrockClient(allow=[MODEL], client=client)
    response = client.converse_stream(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "go"}]}])
    before = _peak_mb()
    count = 0
    for _ in response["stream"]:
        count += 1
    out.send((count, before, _peak_mb()))


def measure(endpoint_url: str, *, safe: bool) -> tuple[int, float]:
    receiver, sender = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=_consume, args=(endpoint_url, safe, sender))
    child.start()
    count, before, after = receiver.recv()
    child.join()
    return count, after - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2, help="runs per side, order alternating")
    args = parser.parse_args()
    multiprocessing.set_start_method("spawn")
    ready_recv, ready_send = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    runs = 2 * args.repeats
    server = multiprocessing.Process(target=_serve, args=(args.events, runs, ready_send, stop), daemon=True)
    server.start()
    endpoint_url = ready_recv.recv()
    added: dict[bool, list[float]] = {False: [], True: []}
    counts: set[int] = set()
    try:
        for index in range(args.repeats):
            for safe in (False, True) if index % 2 == 0 else (True, False):
                count, mb = measure(endpoint_url, safe=safe)
                counts.add(count)
                added[safe].append(mb)
    finally:
        stop.set()
        server.join(timeout=10)
    if len(counts) != 1:
        print(f"event counts differ between runs: {sorted(counts)}", file=sys.stderr)
        sys.exit(1)
    raw_mb, safe_mb = min(added[False]), min(added[True])
    print(
        f"{counts.pop()} events per stream; peak RSS added while iterating, smallest of {args.repeats} runs:"
    )
    print(f"  raw boto3          +{raw_mb:6.2f} MB   (runs: {', '.join(f'{mb:.2f}' for mb in added[False])})")
    print(f"  SafeBedrockClient  +{safe_mb:6.2f} MB   (runs: {', '.join(f'{mb:.2f}' for mb in added[True])})")
    print(f"  target: safe <= 10 MB, {verdict(safe_mb, '<=10')}")
    print(ratio_line("stream_memory:safe_mb_added", safe_mb, "<=10"))
    # Sub-megabyte amounts on both sides: their ratio is noise, shown for information only.
    print(ratio_line("stream_memory:safe_vs_raw_mb", (safe_mb + 1) / (raw_mb + 1), "-"))


if __name__ == "__main__":
    main()
