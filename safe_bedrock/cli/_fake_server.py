"""`safe-bedrock fake-server`: run the fake Bedrock as a local HTTP server until Ctrl-C."""

from __future__ import annotations

import errno
import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from safe_bedrock._policy import PolicyDocument, PolicyError
from safe_bedrock.cli import EXIT_OK, Command, CommandError
from safe_bedrock.cli._args import check_region
from safe_bedrock.cli._invoke import allowlist_errors
from safe_bedrock.testing._server import FakeBedrockServer
from safe_bedrock.testing._wire import DEFAULT_PRINCIPAL, DEFAULT_REGION

if TYPE_CHECKING:
    import argparse

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4010
# Hours of traffic must not grow memory without bound: the request log keeps the newest requests.
_MAX_REQUESTS = 10_000


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"interface to listen on (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on; 0 picks a free one (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--policy",
        metavar="FILE",
        type=Path,
        help="IAM identity policy (JSON) to enforce; calls it does not allow get AccessDeniedException",
    )
    parser.add_argument(
        "--credentials",
        metavar="FILE",
        type=Path,
        help='JSON {"ACCESS_KEY_ID": "SECRET_ACCESS_KEY", ...}: only these keys are accepted and their SigV4'
        " signatures are verified (default: any key; unsigned requests are always refused)",
    )
    parser.add_argument(
        "--principal",
        metavar="ARN",
        help=f"principal named in AccessDenied messages (default {DEFAULT_PRINCIPAL})",
    )
    parser.add_argument(
        "--region",
        default=DEFAULT_REGION,
        help=f"region clients should use; requests' SigV4 scope wins (default {DEFAULT_REGION})",
    )
    parser.add_argument(
        "--model",
        metavar="ID",
        action="append",
        default=[],
        help="serve this foundation-model id on demand although the model catalog does not (repeatable)",
    )
    parser.add_argument(
        "--any-model",
        action="store_true",
        help="serve every well-formed model id (default: unknown, retired and profile-only models get"
        " Bedrock's errors, judged by the model catalog)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print one JSON line when listening ({"endpoint_url": ...}) and errors as JSON',
    )


def _server_for(args: argparse.Namespace) -> FakeBedrockServer:
    try:
        # From a file, never an argument: a secret on the command line shows in `ps` and the shell history.
        keys = None if args.credentials is None else json.loads(args.credentials.read_text(encoding="utf-8"))
        server = FakeBedrockServer(
            host=args.host,
            port=args.port,
            region=args.region,
            max_requests=_MAX_REQUESTS,
            credentials=keys,
            strict_models=not args.any_model,
        )
    except (OSError, ValueError) as exc:  # unreadable, not JSON, or not a map of key ids to secrets
        raise CommandError(
            f"--credentials {str(args.credentials)!r}: {getattr(exc, 'strerror', None) or exc}",
            fix='write {"ACCESS_KEY_ID": "SECRET_ACCESS_KEY", ...} in it; keep it out of version control',
            argument="--credentials",
        ) from None
    try:
        for model in args.model:
            server.add_model(model)
    except ValueError as exc:
        raise CommandError(
            f"--model: {str(exc).removeprefix('add_model: ')}",
            fix="pass a foundation-model id such as anthropic.claude-3-haiku-20240307-v1:0",
            argument="--model",
        ) from None
    return server


def _run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise CommandError(
            f"--port {args.port}: port {args.port} is out of range",
            fix="pass --port between 1 and 65535, or 0",
            argument="--port",
        )
    check_region(args.region, where="--region")
    server = _server_for(args)
    if args.policy is not None:
        with allowlist_errors("--policy"):
            document = PolicyDocument.from_json(args.policy.read_bytes(), source=str(args.policy))
        try:
            server.set_policy(document, principal=args.principal)
        except PolicyError as exc:
            raise CommandError(
                f"--principal: {exc}", fix="pass an IAM principal ARN to --principal", argument="--principal"
            ) from None
    elif args.principal is not None:
        raise CommandError(
            "--principal only matters with --policy",
            fix="add --policy FILE or drop --principal",
            argument="--principal",
        )
    try:
        server.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(
                f"port {args.port} on {args.host} is already in use",
                fix="stop the other process or pick another port with --port (0 picks a free one)",
                argument="--port",
            ) from None
        reason = exc.strerror or str(exc)
        raise CommandError(
            f"--host {args.host}: cannot listen on {args.host}:{args.port}: {reason}",
            fix="pass a local address to --host, e.g. --host 127.0.0.1",
            argument="--host",
        ) from None

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        url = server.endpoint_url
        if args.json:
            policy = None if args.policy is None else str(args.policy)
            listening = {"ok": True, "endpoint_url": url, "region": args.region, "policy": policy}
            print(json.dumps(listening), flush=True)
        else:
            print(f"Fake Bedrock listening on {url}", flush=True)
            print(
                f"Point boto3 at it: boto3.client('bedrock-runtime', endpoint_url='{url}', "
                f"region_name='{args.region}')  (any credentials; Ctrl-C stops)",
                flush=True,
            )
            if args.policy is not None:
                print(f"Enforcing IAM policy {args.policy}", flush=True)
        # Short waits keep the main thread responsive to signals on every platform.
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not args.json:
        print("Fake Bedrock stopped.", file=sys.stderr, flush=True)
    return EXIT_OK


COMMAND = Command(
    name="fake-server",
    help="run the fake Bedrock as a local HTTP server",
    description=(
        "Serve the fake Bedrock (bedrock-runtime's real wire protocol: REST-JSON and event streams) on a\n"
        "local port until Ctrl-C. Optionally enforce an IAM identity policy. Requests must be signed (any\n"
        "key, or only those in --credentials). Tests in any language script it over a JSON control API\n"
        "under /__safe_bedrock/ (Python: safe_bedrock.testing.connect(endpoint_url))."
    ),
    epilog=(
        "examples:\n"
        "  safe-bedrock fake-server --port 4010\n"
        "  safe-bedrock fake-server --port 0 --policy policy.json\n"
        "  safe-bedrock fake-server --port 0 --credentials keys.json   # verify SigV4 for these keys\n"
        '  safe-bedrock fake-server --port 0 --json   # one line: {"endpoint_url": ...}\n\n'
        "exit codes: 0 stopped by Ctrl-C or SIGTERM; 2 bad input (arguments, region, policy or\n"
        "  credentials file, port in use); 70 unexpected internal error (a bug in safe-bedrock)"
    ),
    configure=_configure,
    run=_run,
)
