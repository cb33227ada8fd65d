"""Helpers: run `safe-bedrock` as a subprocess against a FakeBedrockServer started in the test process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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
