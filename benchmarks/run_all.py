"""Run every benchmarks/bench_*.py script and print one table of the ratios they report.

The convention (one line per measured ratio, on stdout, anywhere in the script's output):

    RATIO <name> <value> <target>

- `name`: no spaces, e.g. `client:invoke_model_in-process` (prefix it with the script's topic);
- `value`: a number (a ratio such as safe/raw, or a measured amount such as MB added);
- `target`: the bound the value must respect: a bare number or `<=N` means "at most N", `>=N` means
  "at least N", `-` means "for information, no target".

Everything else a script prints is its own business (its human-readable table) and is shown with
`--verbose`. Every script says in its docstring how it keeps noise out (interleaved rounds, which low
quantile) and runs in well under a minute by default on two cores.

Each script runs as its own subprocess (a fresh interpreter, no shared warm caches), one after another,
with a timeout, under this interpreter, unless its docstring's run line names another one from the
repository (`.venv-aio/bin/python benchmarks/bench_x.py`, for the async client): then that one, and the
script is listed as skipped when that environment is not built. A script that fails, times out or
reports nothing is listed as such, and the others still run. Exit status: 1 if a script failed (or,
with `--strict`, if a target was missed), else 0.

    .venv/bin/python benchmarks/run_all.py [--only SUBSTRING] [--timeout SECONDS] [--strict] [--verbose]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUN_LINE = re.compile(r"^\s*(?:Run:\s*)?(?P<python>\S*/bin/python\S*)\s+benchmarks/", re.MULTILINE)
RATIO_LINE = re.compile(r"^RATIO\s+(?P<name>\S+)\s+(?P<value>[-+0-9.eE]+|nan|inf)\s+(?P<target>\S+)\s*$")


@dataclass(frozen=True)
class Ratio:
    script: str
    name: str
    value: float
    op: str  # "<=", ">=" or "" (no target)
    target: float | None

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        met = self.value <= self.target if self.op == "<=" else self.value >= self.target
        return "ok" if met else "MISSED"


@dataclass(frozen=True)
class Run:
    script: str
    returncode: int | None  # None: timed out
    seconds: float
    ratios: tuple[Ratio, ...]
    output: str
    skipped: str = ""  # why the script did not run

    @property
    def failed(self) -> bool:
        return not self.skipped and (self.returncode != 0 or not self.ratios)


def parse_target(text: str) -> tuple[str, float | None]:
    text = text.strip()
    if text in {"-", "", "none", "info"}:
        return "", None
    op = "<="
    if text.startswith((">=", "<=")):
        op, text = text[:2], text[2:]
    text = text.rstrip("x")
    try:
        return op, float(text)
    except ValueError:
        return "", None


def parse_ratio_lines(script: str, output: str) -> list[Ratio]:
    ratios = []
    for line in output.splitlines():
        match = RATIO_LINE.match(line.strip())
        if match is None:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        op, target = parse_target(match["target"])
        ratios.append(Ratio(script, match["name"], value, op, target))
    return ratios


def interpreter_for(path: Path) -> tuple[str, str]:
    """(python to run the script with, why it cannot run or "")."""
    match = RUN_LINE.search(path.read_text(encoding="utf-8"))
    if (
        match is None
        or match["python"].startswith(("python", "$", "/"))
        or match["python"].startswith(".venv/")
    ):
        return sys.executable, ""
    python = HERE.parent / match["python"]
    if not python.exists():
        return "", f"needs {match['python']} (not built)"
    return str(python), ""


def run_script(path: Path, *, timeout: float) -> Run:
    started = time.monotonic()
    python, missing = interpreter_for(path)
    if missing:
        return Run(path.name, 0, 0.0, (), "", skipped=missing)
    try:
        done = subprocess.run(  # noqa: S603 - our own scripts, run with our own interpreter
            [python, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=HERE.parent,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Run(path.name, None, time.monotonic() - started, (), output)
    output = done.stdout + (("\n" + done.stderr) if done.stderr.strip() else "")
    ratios = parse_ratio_lines(path.name, done.stdout)
    return Run(path.name, done.returncode, time.monotonic() - started, tuple(ratios), output)


def table(runs: list[Run]) -> str:
    rows = [("script", "ratio", "value", "target", "verdict")]
    for run in runs:
        if run.skipped:
            rows.append((run.script, "-", "-", "-", f"skipped: {run.skipped}"))
        elif run.returncode is None:
            rows.append((run.script, "-", "-", "-", f"TIMED OUT after {run.seconds:.0f}s"))
        elif run.returncode != 0:
            rows.append((run.script, "-", "-", "-", f"FAILED (exit {run.returncode})"))
        elif not run.ratios:
            rows.append((run.script, "-", "-", "-", "NO RATIOS printed"))
        for ratio in run.ratios:
            target = "-" if ratio.target is None else f"{ratio.op} {ratio.target:g}"
            rows.append((run.script, ratio.name, f"{ratio.value:.3f}", target, ratio.verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run only the scripts whose name contains this")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per script (default 300)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed too")
    parser.add_argument("--verbose", action="store_true", help="show each script's own output")
    args = parser.parse_args(argv)

    scripts = sorted(p for p in HERE.glob("bench_*.py") if args.only in p.name)
    if not scripts:
        print(f"no benchmarks/bench_*.py script matches {args.only!r}", file=sys.stderr)
        return 1
    runs = []
    for path in scripts:
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        run = run_script(path, timeout=args.timeout)
        runs.append(run)
        if args.verbose or run.failed:
            print(f"--- {path.name} ({run.seconds:.1f}s) ---\n{run.output.rstrip()}\n", file=sys.stderr)
    print(table(runs))
    missed = [ratio for run in runs for ratio in run.ratios if ratio.verdict == "MISSED"]
    failed = [run for run in runs if run.failed]
    print(
        f"\n{len(runs)} scripts, {sum(len(run.ratios) for run in runs)} ratios, "
        f"{len(missed)} targets missed, {len(failed)} scripts failed"
    )
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
