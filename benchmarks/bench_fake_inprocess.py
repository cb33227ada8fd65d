"""In-process FakeBedrock against the floor (a bare before-send hook returning fixed bytes) and moto.

Every variant runs a real boto3 bedrock-runtime client (serialisation, SigV4 signing, parsing); only what
answers the request differs:

- floor: a botocore `before-send` hook returning the exact status, headers and body the fake produces for
  the same request, prepared once (the cheapest possible answer: it does no work per call);
- fake: `FakeBedrock` (routing, request log, JSON parsing, the default Anthropic answer, frame encoding;
  default answers are cached per request, so a second variant sends a new prompt every call);
- moto: `mock_aws()` (moto 5 answers `{}` to invoke_model and cannot stream, so only invoke_model).

Calls are measured in rounds, the variants interleaved round by round in one process so machine noise hits
all alike; the median per-call time of each is printed with the ratios. Targets (issue 2): fake within
1.3x of the floor for invoke_model and for a 50-event invoke_model_with_response_stream; fake at least 2x
faster than moto's invoke_model.
Run: .venv/bin/python benchmarks/bench_fake_inprocess.py [--rounds N] [--calls N]
moto is not a dependency of the project: `pip install moto` to include it (skipped when missing).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import statistics
import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.awsrequest import AWSResponse

from safe_bedrock.testing import FakeBedrock

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"
# 43 prompt words + "You said:" = 45 text deltas; with message_start, content_block_start/stop,
# message_delta and message_stop the default answer streams exactly 50 events.
PROMPT = " ".join(f"word{i}" for i in range(43))
BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 512,
        "messages": [{"role": "user", "content": PROMPT}],
    }
)
SHORT_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hello"}],
    }
)


def new_client(**kwargs: Any) -> Any:
    # moto recognises requests by the real AWS host name, so its client keeps the default endpoint.
    return boto3.session.Session().client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIAFAKEBENCH0000000",
        aws_secret_access_key="bench-secret",
        **kwargs,
    )


class _Raw:
    __slots__ = ("_chunks",)

    def __init__(self, chunks: tuple[bytes, ...]) -> None:
        self._chunks = chunks

    def stream(self, **_: Any) -> Iterator[bytes]:
        return iter(self._chunks)

    def read(self, amt: int | None = None) -> bytes:  # noqa: ARG002 - file-like signature
        return b"".join(self._chunks)

    def close(self) -> None:
        pass


def floor_client(fake: FakeBedrock, *, stream: bool) -> Any:
    """A client answered by a bare before-send hook replaying the fake's answer, captured once."""
    client = fake.client()
    if stream:
        response = client.invoke_model_with_response_stream(modelId=MODEL_ID, body=BODY)
        http = response["ResponseMetadata"]["HTTPHeaders"]
        chunks = tuple(fake._core.handle(fake.requests[-1]).chunks or ())
        list(response["body"])
    else:
        response = client.invoke_model(modelId=MODEL_ID, body=SHORT_BODY)
        http = response["ResponseMetadata"]["HTTPHeaders"]
        chunks = (response["body"].read(),)
    fake.close()
    headers = dict(http)
    floor = new_client(endpoint_url="https://bedrock-runtime.us-east-1.fake-bedrock.invalid")

    def answer(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, 200, headers, _Raw(chunks))

    floor.meta.events.register_first("before-send.bedrock-runtime", answer)
    return floor


def measure(fn: Callable[[], None], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()

    floor_invoke = floor_client(FakeBedrock(), stream=False)
    floor_stream = floor_client(FakeBedrock(), stream=True)
    fake = FakeBedrock()
    fake_client = fake.client()

    def invoke(client: Any) -> Callable[[], None]:
        def call() -> None:
            client.invoke_model(modelId=MODEL_ID, body=SHORT_BODY)["body"].read()

        return call

    def stream(client: Any) -> Callable[[], None]:
        def call() -> None:
            events = list(client.invoke_model_with_response_stream(modelId=MODEL_ID, body=BODY)["body"])
            assert len(events) == 50, len(events)

        return call

    # Default answers are cached per (operation, model, body); this variant never hits that cache.
    fresh = itertools.cycle(
        json.dumps(
            {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 64,
                "messages": [{"role": "user", "content": f"Hello {i}"}],
            }
        )
        for i in range(4096)
    )

    def fake_invoke_fresh() -> None:
        fake_client.invoke_model(modelId=MODEL_ID, body=next(fresh))["body"].read()

    variants: dict[str, Callable[[], None]] = {
        "floor invoke_model": invoke(floor_invoke),
        "fake invoke_model": invoke(fake_client),
        "fake invoke_model, new prompt": fake_invoke_fresh,
        "floor stream (50 events)": stream(floor_stream),
        "fake stream (50 events)": stream(fake_client),
    }
    moto_context: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    try:
        from moto import mock_aws  # noqa: PLC0415 - optional, benchmark only
    except ImportError:
        print("moto not installed: skipping the moto comparison (pip install moto)")
    else:
        moto_context = mock_aws()
    with moto_context:
        if not isinstance(moto_context, contextlib.nullcontext):
            variants["moto invoke_model"] = invoke(new_client())
        for fn in variants.values():  # warm up: imports, caches, connection pools
            measure(fn, 20)
        samples: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for round_no in range(args.rounds):
            # Rotate the order each round, and start every measurement from a collected heap, so that no
            # variant pays for garbage another one left.
            for name in names[round_no % len(names) :] + names[: round_no % len(names)]:
                gc.collect()
                samples[name].append(measure(variants[name], args.calls))
                # A test gets a fresh fake; one fake recording thousands of requests would measure the
                # garbage collector walking that log instead of the per-call cost. Cleared outside the timing.
                fake.reset()

    median = {name: statistics.median(times) for name, times in samples.items()}
    print(f"{args.rounds} rounds x {args.calls} calls, variants interleaved; median time per call:")
    for name, value in median.items():
        print(f"  {name:32s} {value * 1e6:9.1f} us")
    print("ratios (target):")
    ratio = median["fake invoke_model"] / median["floor invoke_model"]
    print(f"  fake / floor, invoke_model          {ratio:5.2f}x   (<= 1.3x)")
    ratio = median["fake invoke_model, new prompt"] / median["floor invoke_model"]
    print(f"  ... with a new prompt every call    {ratio:5.2f}x   (no answer cache hit; for information)")
    ratio = median["fake stream (50 events)"] / median["floor stream (50 events)"]
    print(f"  fake / floor, stream of 50 events   {ratio:5.2f}x   (<= 1.3x)")
    if "moto invoke_model" in median:
        ratio = median["moto invoke_model"] / median["fake invoke_model"]
        print(f"  moto / fake, invoke_model           {ratio:5.2f}x   (>= 2x: fake is that much faster)")


if __name__ == "__main__":
    main()
