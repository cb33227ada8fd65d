"""What the benchmark scripts share: interleaved rounds, the low quantile they report, RATIO lines, profiles.

Not a benchmark itself (run_all.py runs only `bench_*.py`). The scripts import it as `_bench`: Python puts a
script's own directory first on `sys.path`, so `python benchmarks/bench_x.py` finds it from anywhere.

Why a low quantile: machine noise (other processes, the collector, frequency changes) only ever adds time,
so the fast rounds are the ones closest to what the code itself costs. Each side's low quantile is taken
over its own rounds and the ratio is formed from those; a low quantile of per-round *ratios* would instead
pick the rounds where noise happened to slow the other side, and flatter the ratio.
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def low_quantile(values: list[float], q: float) -> float:
    """The q-quantile of `values` (0 <= q <= 1), linear between the two nearest samples."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def interleave(
    variants: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    calls: int,
    warmup: int = 5,
    between: Callable[[], object] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each variant, one sample per round (the round's total time / `calls`).

    Every round runs every variant once, `calls` calls in a row; the order rotates by one each round, so
    each variant goes first equally often (with two variants: they alternate). Each variant's run starts
    from a collected heap, so none pays for garbage another left; `between` (not timed) runs after each.
    """
    names = list(variants)
    for name in names:
        for _ in range(warmup):
            variants[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            call = variants[name]
            gc.collect()
            start = time.perf_counter()
            for _ in range(calls):
                call()
            samples[name].append((time.perf_counter() - start) / calls)
            if between is not None:
                between()
    return samples


def ratio_line(name: str, value: float, target: str) -> str:
    """`RATIO <name> <value> <target>` for run_all.py; target `<=N`, `>=N` or `-` (information)."""
    return f"RATIO {name} {value:.3f} {target}"


def verdict(value: float, target: str) -> str:
    if target == "-":
        return "info"
    bound = float(target[2:])
    met = value <= bound if target.startswith("<=") else value >= bound
    return "met" if met else "MISSED"


def profiled(fn: Callable[[], object], calls: int) -> pstats.Stats:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    return pstats.Stats(profiler)


def _area(path: str) -> str:
    """Where a profiled function lives: one of our modules by name, else the package it belongs to."""
    if "safe_bedrock" in path:
        return "safe_bedrock/" + path.rsplit("safe_bedrock/", 1)[-1]
    for package in ("structlog", "tenacity", "botocore", "aiobotocore", "urllib3", "aiohttp", "boto3"):
        if f"/{package}/" in path:
            return package
    if path.startswith("~") or "<" in path:
        return "builtins"
    return "other (stdlib, benchmark)"


def areas(stats: pstats.Stats, calls: int) -> dict[str, float]:
    """Own time per call in microseconds, summed by area (`_area`)."""
    own: dict[str, float] = defaultdict(float)
    table: Any = stats.stats  # type: ignore[attr-defined]
    for (path, _line, _func), (_cc, _nc, tottime, _cumulative, _callers) in table.items():
        own[_area(path)] += tottime / calls * 1e6
    return own


def print_profiles(title: str, raw: pstats.Stats, safe: pstats.Stats, calls: int, *, top: int = 22) -> None:
    """Raw and safe side by side: own time per call by area and the difference; then our functions."""
    raw_own, safe_own = areas(raw, calls), areas(safe, calls)
    print(f"\nprofile: {title} ({calls} calls each; cProfile inflates small calls, compare the columns)")
    print(f"  {'own time per call, us':34} {'raw':>8} {'safe':>8} {'extra':>8}")
    keys = sorted(set(raw_own) | set(safe_own), key=lambda k: raw_own.get(k, 0.0) - safe_own.get(k, 0.0))
    for key in keys:
        r, s = raw_own.get(key, 0.0), safe_own.get(key, 0.0)
        if max(r, s) >= 0.5:
            print(f"  {key:34} {r:8.1f} {s:8.1f} {s - r:+8.1f}")
    r, s = sum(raw_own.values()), sum(safe_own.values())
    print(f"  {'total':34} {r:8.1f} {s:8.1f} {s - r:+8.1f}")
    print("  safe_bedrock functions, cumulative per call (us):")
    table: Any = safe.stats  # type: ignore[attr-defined]
    rows = [
        (cumulative / calls * 1e6, path.rsplit("/", 1)[-1], func)
        for (path, _line, func), (_cc, _nc, _tt, cumulative, _callers) in table.items()
        if "safe_bedrock" in path and "testing" not in path
    ]
    for cumulative, path, func in sorted(rows, reverse=True)[:top]:
        print(f"    {cumulative:8.1f}  {path}:{func}")


def serve_streams(conn: Any, answers: int, tokens: int, delay: float) -> None:
    """A FakeBedrockServer in a child process streaming `answers` paced answers; sends its URL on `conn`
    and serves until the parent sends anything back (the burst benchmarks' server, off their event loop)."""
    from safe_bedrock.testing import FakeBedrockServer  # in the child process only

    with FakeBedrockServer() as server:
        server.add_stream(chunks=[f"tok{i} " for i in range(tokens)], delay=delay, times=answers)
        conn.send(server.endpoint_url)
        conn.recv()
