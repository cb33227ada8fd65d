"""In-process FakeBedrock against the floor (a bare before-send hook returning fixed bytes) and moto.

Every variant runs a real boto3 bedrock-runtime client (serialisation, SigV4 signing, parsing); only what
answers the request differs:

- floor: a botocore `before-send` hook returning the exact status, headers and body the fake produces for
  the same request, prepared once (the cheapest possible answer: it does no work per call);
- fake: `FakeBedrock` (routing, request log, JSON parsing, the default Anthropic answer, frame encoding;
  default answers are cached per request, so a second variant sends a new prompt every call);
- moto: `mock_aws()` (moto 5 answers `{}` to invoke_model and cannot stream, so only invoke_model).

Noise: the variants run in interleaved rounds in one process (each round runs every variant once, the
order rotating by one each round, each from a collected heap); a round's sample is its mean time per call.
Each variant's value is the 10th percentile over its rounds; ratios are formed from those (medians shown
beside). Targets (issue 2): fake within 1.3x of the floor for invoke_model and for a 50-event
invoke_model_with_response_stream; moto's invoke_model at least 2x the fake's time.
Prints `RATIO <name> <value> <target>` lines for benchmarks/run_all.py.
Run: .venv/bin/python benchmarks/bench_fake_inprocess.py [--rounds N] [--calls N]
moto is not a dependency of the project: `make bench` installs it (the `bench` dependency group); the
moto comparison is skipped when it is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
from typing import TYPE_CHECKING, Any

import boto3
from _bench import interleave, low_quantile, ratio_line, verdict
from botocore.awsrequest import AWSResponse

from safe_bedrock.testing import FakeBedrock

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

QUANTILE = 0.1
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=60)
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
        from moto import mock_aws  # optional, benchmark only
    except ImportError:
        print("moto not installed: skipping the moto comparison (pip install --group bench, or make bench)")
    else:
        moto_context = mock_aws()
    with moto_context:
        if not isinstance(moto_context, contextlib.nullcontext):
            variants["moto invoke_model"] = invoke(new_client())
        # A test gets a fresh fake; one fake recording thousands of requests would measure the garbage
        # collector walking that log instead of the per-call cost. Cleared between runs, not timed.
        samples = interleave(variants, rounds=args.rounds, calls=args.calls, warmup=20, between=fake.reset)

    low = {name: low_quantile(times, QUANTILE) for name, times in samples.items()}
    print(f"{args.rounds} interleaved rounds x {args.calls} calls; p10 (median) time per call:")
    for name, times in samples.items():
        print(f"  {name:32s} {low[name] * 1e6:9.1f} us  ({statistics.median(times) * 1e6:9.1f})")
    ratios = [
        ("fake_vs_floor_invoke_model", "fake invoke_model", "floor invoke_model", "<=1.3"),
        ("fake_vs_floor_invoke_model_new_prompt", "fake invoke_model, new prompt", "floor invoke_model", "-"),
        ("fake_vs_floor_stream50", "fake stream (50 events)", "floor stream (50 events)", "<=1.3"),
        ("moto_vs_fake_invoke_model", "moto invoke_model", "fake invoke_model", ">=2"),
    ]
    print(f"{'ratio (p10 / p10)':40} {'value':>6} {'target':>7}  verdict")
    lines = []
    for name, top, bottom, target in ratios:
        if top in low:
            value = low[top] / low[bottom]
            print(f"  {name:38} {value:6.2f} {target:>7}  {verdict(value, target)}")
            lines.append(ratio_line(f"fake_inprocess:{name}", value, target))
    print("(new prompt: no answer cache hit; moto: how many times the fake's time moto takes)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
