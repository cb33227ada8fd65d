"""Helpers: run `safe-bedrock` as a subprocess against a FakeBedrockServer started in the test process."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from safe_bedrock.testing import FakeBedrockServer
from safe_bedrock.testing._control_plane import ControlPlane

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30

_OUR_COMMANDS = (
    "safe_bedrock.cli._policy_cmd",
    "safe_bedrock.cli._check",
    "safe_bedrock.cli._invoke",
    "safe_bedrock.cli._chat",
)
# The same as `python -m safe_bedrock.cli`, and it also registers the commands if the registry does not list
# them yet, so the tests run the real entry point either way.
BOOT = (
    "import safe_bedrock.cli as cli\n"
    f"ours = {_OUR_COMMANDS!r}\n"
    "missing = tuple(m for m in ours if m not in cli.COMMAND_MODULES)\n"
    "if missing:\n"
    "    build = cli.build_parser\n"
    "    every = tuple(cli.COMMAND_MODULES) + missing\n"
    "    cli.build_parser = lambda modules=every: build(modules)\n"
    "raise SystemExit(cli.main())\n"
)


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
    return [sys.executable, "-c", BOOT, *args]


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


class FrontDoor:
    """An HTTP front for servers without the control-plane hook: ControlPlane first, else relay to the fake.

    Only plain (non-streaming) replies are relayed, which is all `check` needs.
    """

    def __init__(self, server: FakeBedrockServer, plane: ControlPlane) -> None:
        target = urlsplit(server.endpoint_url)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

            def do_any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = plane.handle(self.command, self.path, dict(self.headers.items()), body)
                if answer is None:
                    conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
                    conn.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                    reply = conn.getresponse()
                    answer = (reply.status, dict(reply.getheaders()), reply.read())
                    conn.close()
                status, headers, payload = answer
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in {"transfer-encoding", "content-length", "connection"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_any  # noqa: N815 - the stdlib's method names

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.endpoint_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def endpoint_args(server: FakeBedrockServer) -> Sequence[str]:
    return ("--endpoint-url", server.endpoint_url)
