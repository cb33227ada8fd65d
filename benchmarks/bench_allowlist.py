"""What one allowlist decision costs at the sizes real allowlists have (10 and 100 entries), uncached.

Real allowlists hold 1-50 entries; the target is under 2 us per decision at 100 entries, which no call to
Bedrock (tens of milliseconds at the very least) would notice. Entries are a realistic mix: mostly exact
model ids, profile ids and ARNs, one in five a wildcard prefix. Every decision is computed (the allowlist
keeps no decision cache); allowed calls are drawn at random from ids the entries cover (wildcards expanded
to fresh ids), refused calls from ids of the same providers that no entry covers.

Each round times every (size, workload) pair once, in a shuffled order, so machine noise falls on all of
them alike; the reported cost is the 10th percentile over rounds (the cost without interference), with
the median beside it. The RATIO lines compare the 10th percentile with the target and are printed whether
or not it is met.

Run: .venv/bin/python benchmarks/bench_allowlist.py [--rounds N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import TYPE_CHECKING

from safe_bedrock._allowlist import ModelAllowlist
from safe_bedrock._ids import ModelRef, parse_model_id
from safe_bedrock._policy import INVOKE, INVOKE_STREAM

if TYPE_CHECKING:
    from collections.abc import Callable

REGION = "us-east-1"
SIZES = (10, 100)
TARGET_US = 2.0  # per uncached decision at 100 entries
WORKLOADS = ("allowed", "stream", "refused")
PROVIDERS = (
    "anthropic",
    "amazon",
    "meta",
    "mistral",
    "cohere",
    "ai21",
    "writer",
    "deepseek",
    "qwen",
    "openai",
)
GEOS = ("us", "eu", "apac", "global", "jp", "au")


def entries(count: int, rng: random.Random) -> list[str]:
    out: list[str] = []
    for i in range(count):
        provider = PROVIDERS[i % len(PROVIDERS)]
        model = f"{provider}.model-{i:05d}-v1:0"
        shape = i % 10
        if shape < 4:
            out.append(model)
        elif shape < 6:
            out.append(f"{GEOS[i % len(GEOS)]}.{model}")
        elif shape == 6:
            out.append(f"arn:aws:bedrock:{REGION}::foundation-model/{model}")
        elif shape == 7:
            out.append(f"arn:aws:bedrock:{REGION}:123456789012:application-inference-profile/app{i:09d}")
        elif shape == 8:
            out.append(f"{provider}.family-{i:05d}*")
        else:
            out.append(f"{GEOS[i % len(GEOS)]}.{provider}.family-{i:05d}*")
    rng.shuffle(out)
    return out


def allowed_ids(items: list[str], n: int, rng: random.Random) -> list[ModelRef]:
    return [
        parse_model_id(entry.replace("*", f"-x{rng.randrange(10**6)}-v1:0"), region=REGION)
        for entry in rng.choices(items, k=n)
    ]


def refused_ids(n: int, rng: random.Random) -> list[ModelRef]:
    return [
        parse_model_id(f"{rng.choice(PROVIDERS)}.other-{rng.randrange(10**6)}-v1:0", region=REGION)
        for _ in range(n)
    ]


def timer(
    allowlist: ModelAllowlist, refs: list[ModelRef], action: str, *, expect: bool
) -> Callable[[], float]:
    for ref in refs:  # check the workload is what it claims, once, before timing
        assert allowlist.decide(ref, action=action).allowed is expect, ref
    decide = allowlist.decide

    def run() -> float:
        start = time.perf_counter()
        for ref in refs:
            decide(ref, action=action)
        return (time.perf_counter() - start) / len(refs) * 1e6

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=41)
    args = parser.parse_args()
    rng = random.Random(7)
    runs: dict[tuple[int, str], Callable[[], float]] = {}
    build_ms: dict[int, float] = {}
    for size in SIZES:
        items = entries(size, rng)
        builds = []
        for _ in range(5):  # the best of a few: the first build also pays one-time imports and caches
            start = time.perf_counter()
            allowlist = ModelAllowlist(items).bind(region=REGION)
            builds.append((time.perf_counter() - start) * 1e3)
        build_ms[size] = min(builds)
        allowed = allowed_ids(items, 2_000, rng)
        runs[size, "allowed"] = timer(allowlist, allowed, INVOKE, expect=True)
        runs[size, "stream"] = timer(allowlist, allowed, INVOKE_STREAM, expect=True)
        runs[size, "refused"] = timer(allowlist, refused_ids(100, rng), INVOKE, expect=False)
    samples: dict[tuple[int, str], list[float]] = {key: [] for key in runs}
    order = list(runs)
    for _ in range(args.rounds):
        rng.shuffle(order)
        for key in order:
            samples[key].append(runs[key]())

    def p10(key: tuple[int, str]) -> float:
        return statistics.quantiles(samples[key], n=10)[0]

    print(f"us per decision, p10 (median) over {args.rounds} interleaved rounds")
    print(f"{'entries':>8} {'build ms':>9} {'allowed':>16} {'stream':>16} {'refused+closest':>18}")
    for size in SIZES:
        cells = [f"{p10((size, w)):.2f} ({statistics.median(samples[size, w]):.2f})" for w in WORKLOADS]
        print(f"{size:>8} {build_ms[size]:>9.2f} {cells[0]:>16} {cells[1]:>16} {cells[2]:>18}")
    for size in SIZES:
        print(f"RATIO allowlist:decision_us_at_{size} {p10((size, 'allowed')):.2f} <={TARGET_US:g}")
    print(f"RATIO allowlist:stream_decision_us_at_100 {p10((100, 'stream')):.2f} <={TARGET_US:g}")
    # A refusal also finds the closest entries (difflib over every entry): reported, no target.
    print(f"RATIO allowlist:refusal_us_at_100 {p10((100, 'refused')):.1f} -")


if __name__ == "__main__":
    main()
