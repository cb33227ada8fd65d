"""Memory of a long stream: a 100,000-event converse_stream must raise peak RSS by less than 10 MB.

The fake server runs in its own process, so only the client's memory is measured. Each side (raw boto3,
then SafeBedrockClient) runs in a fresh child process that records its peak RSS (ru_maxrss) once the
call has returned and again after the last event; the difference is what iterating the stream cost.
Prints `RATIO` lines for benchmarks/run_all.py: the MB added (target < 10) and safe/raw.
Run: .venv/bin/python benchmarks/bench_stream_memory.py [--events N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
from typing import Any

from botocore.config import Config

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
CONFIG = Config(retries={"total_max_attempts": 1}, read_timeout=120)


def _serve(events: int, ready: Any, stop: Any) -> None:
    from safe_bedrock.testing import FakeBedrockServer  # noqa: PLC0415 - imported in the child only

    with FakeBedrockServer() as server:
        server.add_stream(chunks=["w "] * events, times=2)
        ready.send(server.endpoint_url)
        stop.wait()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _consume(endpoint_url: str, safe: bool, out: Any) -> None:  # noqa: FBT001
    import boto3  # noqa: PLC0415

    from safe_bedrock import SafeBedrockClient  # noqa: PLC0415

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
    args = parser.parse_args()
    multiprocessing.set_start_method("spawn")
    ready_recv, ready_send = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(args.events, ready_send, stop), daemon=True)
    server.start()
    endpoint_url = ready_recv.recv()
    try:
        raw_events, raw_mb = measure(endpoint_url, safe=False)
        safe_events, safe_mb = measure(endpoint_url, safe=True)
    finally:
        stop.set()
        server.join(timeout=10)
    print(f"raw boto3       {raw_events:>8} events   peak RSS +{raw_mb:6.2f} MB while iterating")
    print(f"SafeBedrock     {safe_events:>8} events   peak RSS +{safe_mb:6.2f} MB while iterating")
    if safe_events != raw_events:
        print("event counts differ", file=sys.stderr)
        sys.exit(1)
    print(f"RATIO stream_memory:safe_mb_added {safe_mb:.2f} 10")
    # Sub-megabyte amounts on both sides: their ratio is noise, shown for information only.
    print(f"RATIO stream_memory:safe_vs_raw_mb {(safe_mb + 1) / (raw_mb + 1):.3f} -")


if __name__ == "__main__":
    main()
