"""FakeBedrockServer against the floor: a minimal stdlib ThreadingHTTPServer serving the same bytes.

Both servers answer POST /model/{id}/invoke (and /invoke-with-response-stream) with the exact status,
headers and body the fake produces for the same request. Drivers run against each, interleaved round by
round in one process so that machine noise hits both sides alike:

- raw: an http.client keep-alive loop sending the same request bytes (the server cost alone, magnified);
- boto3: a real bedrock-runtime client calling invoke_model (what users run);
- boto3 stream: invoke_model_with_response_stream, 50 text events plus start/stop, read to the end
  (the floor writes the same frames one write per event).

Noise: fake and floor run in interleaved rounds (the one that goes first alternates, each round starts
from a collected heap); a round's sample is its mean time per call. Each side's value is the 10th
percentile over its rounds, and the ratio is p10(fake) / p10(floor) (medians shown beside).
Target (issue 2): within 1.1x for the boto3 drivers (what users run); the raw http.client ratio, the
server's own cost magnified, is for information.
Prints `RATIO <name> <value> <target>` lines for benchmarks/run_all.py.
Run: .venv/bin/python benchmarks/bench_fake_server.py [--rounds N] [--calls N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import boto3
from _bench import interleave, low_quantile, ratio_line, verdict
from botocore.config import Config

from safe_bedrock.testing._server import FakeBedrockServer

if TYPE_CHECKING:
    from collections.abc import Callable

MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"
PATH = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke"
STREAM_PATH = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream"
STREAM_EVENTS = 50
BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hello"}],
    }
).encode()
HEADERS = {"Content-Type": "application/json", "Accept": "application/json", "Authorization": "Bearer bench"}


QUANTILE = 0.1
Answer = tuple[int, list[tuple[str, str]], bytes]


def capture(endpoint_port: int, path: str) -> Answer:
    """The fake's exact answer to the benchmark request, for the floor server to replay."""
    conn = http.client.HTTPConnection("127.0.0.1", endpoint_port)
    conn.request("POST", path, body=BODY, headers=HEADERS)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    skip = {"content-length", "date", "server", "connection", "transfer-encoding"}
    headers = [(k, v) for k, v in response.getheaders() if k.lower() not in skip]
    return response.status, headers, body


def split_frames(stream: bytes) -> list[bytes]:
    """Event-stream frames, each prefixed by its total length (first 4 bytes, big-endian)."""
    frames = []
    while stream:
        size = struct.unpack(">I", stream[:4])[0]
        frames.append(stream[:size])
        stream = stream[size:]
    return frames


def floor_server(plain: Answer, streamed: Answer) -> ThreadingHTTPServer:
    status, headers, body = plain
    stream_status, stream_headers, stream_body = streamed
    frames = split_frames(stream_body)

    class Floor(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Without this the stdlib writes headers and body in two segments and Nagle + delayed ACK add
        # ~40 ms per call: a floor that slow would flatter any server.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ARG002 - stdlib signature
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == STREAM_PATH:
                self.send_response(stream_status)
                for name, value in stream_headers:
                    self.send_header(name, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for frame in frames:  # one write per event, as a service streams them
                    self.wfile.write(b"%x\r\n%b\r\n" % (len(frame), frame))
                self.wfile.write(b"0\r\n\r\n")
                return
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Floor)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def boto3_driver(port: int) -> Callable[[], None]:
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="AKIAFAKEBEDROCK00000",
        aws_secret_access_key="fake",
        config=Config(retries={"max_attempts": 1}),
    )

    def run() -> None:
        client.invoke_model(modelId=MODEL_ID, body=BODY)["body"].read()

    return run


def boto3_stream_driver(port: int) -> Callable[[], None]:
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="AKIAFAKEBEDROCK00000",
        aws_secret_access_key="fake",
        config=Config(retries={"max_attempts": 1}),
    )

    def run() -> None:
        events = list(client.invoke_model_with_response_stream(modelId=MODEL_ID, body=BODY)["body"])
        assert len(events) >= STREAM_EVENTS

    return run


def raw_driver(port: int) -> Callable[[], None]:
    conn = http.client.HTTPConnection("127.0.0.1", port)

    def run() -> None:
        conn.request("POST", PATH, body=BODY, headers=HEADERS)
        response = conn.getresponse()
        response.read()
        assert response.status == 200

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=60, help="calls per round (streams: a tenth)")
    args = parser.parse_args()

    with FakeBedrockServer() as fake:

        def fresh() -> None:
            # What a test starts from: an empty request log (not timed), and a fixed answer long enough to
            # stream STREAM_EVENTS text deltas (plus start/stop events); invoke_model keeps the default.
            fake.reset()
            fake.route(
                "anthropic.*",
                text=" ".join(f"w{i}" for i in range(STREAM_EVENTS)),
                operation="InvokeModelWithResponseStream",
            )

        fresh()
        floor = floor_server(capture(fake.port, PATH), capture(fake.port, STREAM_PATH))
        floor_port = floor.server_address[1]
        try:
            results = {}
            for driver_name, factory, calls, target in (
                ("raw_http_client", raw_driver, args.calls, "-"),
                ("boto3_invoke_model", boto3_driver, args.calls, "<=1.1"),
                (f"boto3_stream{STREAM_EVENTS}", boto3_stream_driver, max(1, args.calls // 10), "<=1.1"),
            ):
                samples = interleave(
                    {"fake": factory(fake.port), "floor": factory(floor_port)},
                    rounds=args.rounds,
                    calls=calls,
                )
                results[driver_name] = (samples, target)
        finally:
            floor.shutdown()
            floor.server_close()

    print(
        f"FakeBedrockServer vs stdlib ThreadingHTTPServer floor: {args.rounds} interleaved rounds x"
        f" {args.calls} calls (streams: {max(1, args.calls // 10)}); p10 (median) per call"
    )
    header = f"{'driver':20} {'fake us':>20} {'floor us':>20} {'ratio':>6} {'target':>6}  verdict"
    print(header)
    print("-" * len(header))
    lines = []
    for driver_name, (samples, target) in results.items():
        fake_low, floor_low = (
            low_quantile(samples["fake"], QUANTILE),
            low_quantile(samples["floor"], QUANTILE),
        )
        ratio = fake_low / floor_low
        cells = [
            f"{low * 1e6:8.1f} ({statistics.median(samples[side]) * 1e6:8.1f})"
            for side, low in (("fake", fake_low), ("floor", floor_low))
        ]
        row = f"{driver_name:20} {cells[0]:>20} {cells[1]:>20} {ratio:6.3f} {target:>6}"
        print(f"{row}  {verdict(ratio, target)}")
        lines.append(ratio_line(f"fake_server:{driver_name}", ratio, target))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
