"""Helpers: run `safe-bedrock` against a FakeBedrockServer started in the test process.

`run` calls the command's `main(argv)` in-process, with the environment, stdin, stdout and stderr it would
have as a process (argparse's exits become the exit code); `run_process` runs the real console entry point
as a subprocess, for the smoke tests that need a process (signals, the installed entry point).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from safe_bedrock.testing import FakeBedrockServer
from safe_bedrock.testing._control_plane import ControlPlane

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: fake credentials, a region, no AWS config files, no allowlist variable."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "SAFE_BEDROCK_")) and key != "PYTHONWARNINGS"
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "AKIAFAKECLITEST00000",
            "AWS_SECRET_ACCESS_KEY": "fake-secret",
            "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONPATH": str(REPO),
            "COLUMNS": "120",
        }
    )
    env.update(extra or {})
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "safe_bedrock.cli", *args]


def run(
    *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None, cwd: Path | None = None
) -> Result:
    from safe_bedrock.cli import main  # imported late so a test's environment applies

    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, cli_env(env), clear=True))
        stack.enter_context(mock.patch.object(sys, "stdin", io.StringIO(stdin or "")))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        if cwd is not None:
            stack.callback(os.chdir, Path.cwd())
            os.chdir(cwd)
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors and --help
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    result = Result(code, out.getvalue(), err.getvalue())
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    return result


def run_process(
    *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None, cwd: Path | None = None
) -> Result:
    done = subprocess.run(
        command(*args),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=cli_env(env),
        timeout=TIMEOUT,
        cwd=cwd,
        check=False,
    )
    result = Result(done.returncode, done.stdout, done.stderr)
    # Whatever happens, a command never shows a traceback.
    assert "Traceback" not in done.stderr, done.stderr
    assert "Traceback" not in done.stdout, done.stdout
    return result


def control_plane(server: FakeBedrockServer) -> ControlPlane:
    plane = getattr(server, "control_plane", None)
    assert isinstance(plane, ControlPlane), "FakeBedrockServer has no control_plane hook"
    return plane


def endpoint_args(server: FakeBedrockServer) -> Sequence[str]:
    return ("--endpoint-url", server.endpoint_url)
