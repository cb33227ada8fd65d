"""How the cost of an allowlist decision grows with the number of entries (10 -> 10,000).

Entries are a realistic mix: mostly exact model ids and ARNs, one in five a wildcard prefix. Each size is
timed side by side in one run, on distinct ids (no decision cache), for allowed and refused calls.
Refused calls also compute the closest entries (difflib over a handful of neighbours); a repeated
refusal (the same id again, up to 1,024 remembered) is looked up.

    python benchmarks/bench_allowlist.py
"""

from __future__ import annotations

import random
import time

from safe_bedrock._allowlist import ModelAllowlist
from safe_bedrock._ids import ModelRef, parse_model_id
from safe_bedrock._policy import INVOKE, INVOKE_STREAM

REGION = "us-east-1"
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
    refs: list[ModelRef] = []
    for entry in rng.choices(items, k=n):
        model_id = entry.replace("*", f"-x{rng.randrange(10**6)}-v1:0")
        refs.append(parse_model_id(model_id, region=REGION))
    return refs


def refused_ids(n: int, rng: random.Random) -> list[ModelRef]:
    return [
        parse_model_id(f"{rng.choice(PROVIDERS)}.other-{rng.randrange(10**6)}-v1:0", region=REGION)
        for _ in range(n)
    ]


def per_call_us(
    allowlist: ModelAllowlist,
    refs: list[ModelRef],
    *,
    action: str,
    expect: bool,
    fresh: bool = False,
    uncached: bool = False,
) -> float:
    for ref in refs[:50]:  # warm up and check the workload is what it claims
        assert allowlist.decide(ref, action=action).allowed is expect, ref
    stream = action == INVOKE_STREAM

    def decide(ref: ModelRef, action: str) -> object:
        # Recent decisions are remembered; `uncached` measures the matching itself, every time.
        return allowlist._decide(ref, stream=stream) if uncached else allowlist.decide(ref, action=action)

    best = float("inf")
    for _ in range(5):
        if fresh:  # measure explaining new refusals too
            allowlist._decisions.clear()
        start = time.perf_counter()
        for ref in refs:
            decide(ref, action)
        best = min(best, (time.perf_counter() - start) / len(refs))
    return best * 1e6


def main() -> None:
    rng = random.Random(7)
    sizes = (10, 100, 1_000, 10_000)
    rows = []
    for size in sizes:
        items = entries(size, rng)
        start = time.perf_counter()
        allowlist = ModelAllowlist(items).bind(region=REGION)
        build_ms = (time.perf_counter() - start) * 1e3
        allowed = allowed_ids(items, 20_000, rng)
        refused = refused_ids(2_000, rng)
        rows.append(
            (
                size,
                build_ms,
                per_call_us(allowlist, allowed, action=INVOKE, expect=True, uncached=True),
                per_call_us(allowlist, allowed, action=INVOKE_STREAM, expect=True, uncached=True),
                per_call_us(allowlist, refused, action=INVOKE, expect=False, fresh=True),
                per_call_us(allowlist, refused[:500], action=INVOKE, expect=False),
            )
        )
    base = rows[0]
    header = (
        "entries",
        "build ms",
        "allowed us",
        "vs 10",
        "stream us",
        "new refusal us",
        "repeat refusal us",
    )
    print("{:>8} {:>9} {:>11} {:>6} {:>10} {:>15} {:>18}".format(*header))
    for size, build_ms, allowed_us, stream_us, refused_us, again_us in rows:
        print(
            f"{size:>8} {build_ms:>9.1f} {allowed_us:>11.2f} {allowed_us / base[2]:>6.2f} "
            f"{stream_us:>10.2f} {refused_us:>15.1f} {again_us:>18.2f}"
        )
    print(
        f"allowed decision at 10,000 entries: {rows[-1][2]:.2f} us (target < 5 us); "
        f"growth 10 -> 10,000: {rows[-1][2] / base[2]:.2f}x (target < 2x)"
    )
    print(f"RATIO allowlist:decision_us_at_10k {rows[-1][2]:.2f} <=5")
    print(f"RATIO allowlist:growth_10_to_10k {rows[-1][2] / base[2]:.2f} <=2")


if __name__ == "__main__":
    main()
