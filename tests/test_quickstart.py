"""`make demo` runs examples/quickstart.py offline: it must show an answer, a stream and a refusal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"


def test_the_quickstart_runs_offline_and_shows_an_answer_a_stream_and_a_refusal() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "SAFE_BEDROCK_LIVE"}
    done = subprocess.run(
        [sys.executable, str(QUICKSTART)], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert "-> You said: Say hello in five words." in out
    assert "-> You said: Count from one to five." in out
    assert "refused locally, nothing sent" in out
    assert "Fix: add `meta.llama3-70b-instruct-v1:0`" in out
