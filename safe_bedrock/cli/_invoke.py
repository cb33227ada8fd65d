"""`safe-bedrock invoke`: one Converse call through SafeBedrockClient, streamed to the terminal.

Converse works the same for every model; the allowlist (`build_allowlist`), the typed errors and the log
event are the ones an application gets. Also what `chat` and `check` share: AWS arguments, client, one turn.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

import boto3

from safe_bedrock._allowlist import ENV_VAR, AllowlistError, EmptyAllowlistWarning, ModelAllowlist
from safe_bedrock._client import SafeBedrockClient
from safe_bedrock._policy import PolicyError
from safe_bedrock._translate import is_local_endpoint
from safe_bedrock.cli import EXIT_CODES_HELP, EXIT_INTERRUPTED, EXIT_OK, Command, CommandError
from safe_bedrock.cli._args import check_endpoint, check_model, resolve_region
from safe_bedrock.cli._output import Output

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence


DEFAULT_MAX_TOKENS: Final = 1024
PLACEHOLDER_KEY: Final = "AKIAFAKEBEDROCK00000"
_PLACEHOLDER_SECRET: Final = "placeholder-secret-for-a-local-fake"  # noqa: S105 - not a secret
# The endpoint variables botocore honours for the services the commands call.
ENDPOINT_VARS = tuple(f"AWS_ENDPOINT_URL{s}" for s in ("", "_BEDROCK_RUNTIME", "_BEDROCK", "_STS", "_IAM"))
# What to do instead of the library's escape hatch (allow_any), which the command line does not offer.
_NAME_THE_MODELS: Final = (
    "list the models you call: exact ids, or a prefix that names the provider such as "
    "'anthropic.*' ('us.anthropic.*' for profiles)"
)


# --- shared by invoke, chat and check -----------------------------------------------------------------------


def add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="AWS region (default: your AWS configuration, AWS_REGION)")
    parser.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="send every AWS call to this URL instead, e.g. the fake: safe-bedrock fake-server",
    )


def aws_session(*, region: str | None, endpoint_url: str | None) -> boto3.session.Session:
    """A boto3 session for the region; placeholder credentials only for a local --endpoint-url with none
    configured (the local fake signs nothing that matters)."""

    if endpoint_url is not None:
        check_endpoint(endpoint_url, where="--endpoint-url")
    for var in ENDPOINT_VARS:  # botocore reads these itself, and fails on a malformed one mid-call
        if os.environ.get(var):
            check_endpoint(os.environ[var], where=var)
    where = resolve_region(region)
    session = boto3.session.Session(region_name=where)
    configured = os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")
    if is_local_endpoint(endpoint_url) and not configured and session.get_credentials() is None:
        session = boto3.session.Session(
            region_name=where, aws_access_key_id=PLACEHOLDER_KEY, aws_secret_access_key=_PLACEHOLDER_SECRET
        )
    return session


@contextlib.contextmanager
def allowlist_errors(argument: str) -> Iterator[None]:
    """A model source that cannot be used (a malformed entry, an unreadable or malformed file or policy) as a
    usage error naming the argument or variable it came from.

    An allowlist that lists nothing does not warn here: `nothing_allowed` reports it as the command's error.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EmptyAllowlistWarning)
            yield
    except AllowlistError as exc:
        subject = f"entry {exc.entry!r}" if exc.entry is not None else exc.source
        if subject == argument or subject.endswith(f" {argument}"):
            subject = ""
        problem = f"{subject + ': ' if subject else ''}{exc.problem}"
        fix = _NAME_THE_MODELS if "allow_any" in exc.fix else exc.fix
        raise CommandError(f"{argument}: {problem}", fix=fix, argument=argument) from None
    except PolicyError as exc:
        fix = "pass an IAM policy document (JSON with Version and Statement)"
        raise CommandError(f"{argument}: {exc}", fix=fix, argument=argument) from None
    except OSError as exc:
        problem = f"{argument} {exc.filename}: cannot read it ({exc.strerror})"
        raise CommandError(problem, fix=f"check the path given to {argument}", argument=argument) from None


def env_allowlist(*, region: str | None = None) -> ModelAllowlist | None:
    """The library's `ModelAllowlist.from_env` whenever SAFE_BEDROCK_ALLOWED_MODELS is set, even blank (then
    it refuses everything, as it does in the app); None only when the variable is not set at all."""
    if ENV_VAR not in os.environ:
        return None
    with allowlist_errors(ENV_VAR):
        return ModelAllowlist.from_env(region=region)


def nothing_allowed(allowlist: ModelAllowlist) -> CommandError | None:
    """The refusal for an allowlist that lists no model (a blank variable, ``--allow ''``, an empty file)."""
    if allowlist.entries or allowlist.allow_any:
        return None
    argument = ""
    if allowlist.source == f"env {ENV_VAR}":
        problem, fix = f"{ENV_VAR} is set but empty", "list the models (comma separated) or unset it"
        argument = ENV_VAR
    elif allowlist.source == "--allow":
        problem, fix = "--allow lists no model", "pass model ids or ARNs (--allow MODEL) or leave it out"
        argument = "--allow"
    else:
        problem, fix = f"the allowlist from {allowlist.source} lists no model", "list the models to allow"
    return CommandError(f"{problem}: every model is refused", fix=fix, kind="denied", argument=argument)


def build_allowlist(model: str, allow: Sequence[str] | None, *, region: str) -> ModelAllowlist:
    """--allow entries; else SAFE_BEDROCK_ALLOWED_MODELS when set, even blank (so the command refuses what the
    app would refuse); else, when neither is given, the model named on the command line (naming it is the
    explicit permission). An allowlist that lists nothing raises `CommandError` (exit 1), as the library
    refuses every model: the command stops before a request."""
    check_model(model, region=region)  # a malformed id is named as such, before any allowlist is built
    if allow is not None:  # given, even as '' or ' , ': never falls back to a more permissive source
        entries = [item.strip() for value in allow for item in value.split(",") if item.strip()]
        with allowlist_errors("--allow"):
            allowlist: ModelAllowlist | None = ModelAllowlist(entries, source="--allow")
    else:
        allowlist = env_allowlist()
    if allowlist is None:
        return ModelAllowlist([model], source="the model named on the command line")
    refusal = nothing_allowed(allowlist)
    if refusal is not None:
        raise refusal
    return allowlist


def safe_client(
    *, session: boto3.session.Session, allowlist: ModelAllowlist, endpoint_url: str | None
) -> SafeBedrockClient:
    return SafeBedrockClient(
        allow=allowlist, session=session, region_name=session.region_name, endpoint_url=endpoint_url
    )


@dataclass(slots=True)
class TurnResult:
    """One Converse turn as the commands report it."""

    text: str = ""
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    latency_ms: int | None = None  # what Bedrock reports
    elapsed_ms: int = 0  # measured here, end to end
    first_token_ms: int | None = None
    request_id: str | None = None
    events: int = 0
    interrupted: bool = False

    def as_json(self) -> dict[str, object]:
        # `events` only feeds the usage line.
        return {key: value for key, value in asdict(self).items() if key != "events"}


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def converse_turn(
    client: Any, args: argparse.Namespace, messages: list[dict[str, Any]], out: Output
) -> TurnResult:
    """One Converse(Stream) call with the arguments of `add_converse_arguments`; the text goes to stdout as it
    arrives (not with --json). Ctrl-C closes the stream and returns what arrived with ``interrupted=True``."""
    config = {"maxTokens": args.max_tokens}
    kwargs: dict[str, Any] = {"modelId": args.model, "messages": messages, "inferenceConfig": config}
    if args.system:
        kwargs["system"] = [{"text": args.system}]
    on_text: Callable[[str], None] = (lambda _text: None) if out.json_mode else out.write
    result = TurnResult()
    started = time.monotonic()
    if args.no_stream:
        response = metadata = client.converse(**kwargs)
        content = response.get("output", {}).get("message", {}).get("content", [])
        result.text = "".join(block["text"] for block in content if "text" in block)
        result.stop_reason = response.get("stopReason")
        on_text(result.text)
    else:
        response, metadata = client.converse_stream(**kwargs), {}
        events = response["stream"]
        try:
            for event in events:
                result.events += 1
                text = event.get("contentBlockDelta", {}).get("delta", {}).get("text")
                if text:
                    if result.first_token_ms is None:
                        result.first_token_ms = _ms_since(started)
                    result.text += text
                    on_text(text)
                result.stop_reason = event.get("messageStop", {}).get("stopReason", result.stop_reason)
                metadata = event.get("metadata", metadata)
        except KeyboardInterrupt:
            events.close()  # releases the connection at once; the log event says closed_early
            result.interrupted = True
    result.usage = dict(metadata.get("usage") or {})
    result.latency_ms = (metadata.get("metrics") or {}).get("latencyMs")
    result.request_id = response.get("ResponseMetadata", {}).get("RequestId")
    result.elapsed_ms = _ms_since(started)
    return result


def show_turn(out: Output, model: str, result: TurnResult, *, turn: int | None = None) -> None:
    """With --json the turn as one JSON object (one line for chat's numbered turns: JSON Lines); else end the
    answer's line, then on stderr `[model · 12 in / 34 out tokens · 0.84 s, first token 0.21 s · stop x]`"""
    if out.json_mode:
        numbered = {} if turn is None else {"turn": turn}
        document = {"ok": not result.interrupted, **numbered, "model_id": model, **result.as_json()}
        out.emit(document, compact=turn is not None)
        return
    if result.text and not result.text.endswith("\n"):
        out.write("\n")
    usage = result.usage
    tokens = (
        f"{usage.get('inputTokens', '?')} in / {usage.get('outputTokens', '?')} out tokens" if usage else ""
    )
    timing = f"{result.elapsed_ms / 1000:.2f} s"
    if result.first_token_ms is not None:
        timing += f", first token {result.first_token_ms / 1000:.2f} s"
    end = f"stop {result.stop_reason}" if result.stop_reason else ""
    if result.interrupted:
        end = f"interrupted after {result.events} events, stream closed"
    out.note("[" + " · ".join(part for part in (model, tokens, timing, end) if part) + "]")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def add_converse_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model id, inference profile id or ARN")
    parser.add_argument("--system", metavar="S", help="system prompt")
    parser.add_argument(
        "--max-tokens",
        type=_positive_int,
        default=DEFAULT_MAX_TOKENS,
        metavar="N",
        help=f"most tokens to generate (default {DEFAULT_MAX_TOKENS})",
    )
    parser.add_argument("--no-stream", action="store_true", help="use Converse and print the answer at once")
    parser.add_argument(
        "--allow",
        action="append",
        metavar="ENTRY",
        help=f"allowlist entries (repeatable, comma separated); default: {ENV_VAR} when set (a blank one "
        "refuses every model), else only MODEL",
    )
    add_aws_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of text")


# --- the command --------------------------------------------------------------------------------------------


def _configure(parser: argparse.ArgumentParser) -> None:
    add_converse_arguments(parser)
    parser.add_argument("prompt", metavar="PROMPT", help='what to ask ("-" reads it from stdin)')


def _run(args: argparse.Namespace) -> int:
    out = Output.of(args)
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise CommandError(
            "PROMPT is empty", fix='pass the question as PROMPT, e.g. "Hello"', argument="PROMPT"
        )
    session = aws_session(region=args.region, endpoint_url=args.endpoint_url)
    allowlist = build_allowlist(args.model, args.allow, region=str(session.region_name))
    with safe_client(session=session, allowlist=allowlist, endpoint_url=args.endpoint_url) as client:
        result = converse_turn(client, args, [{"role": "user", "content": [{"text": prompt}]}], out)
    show_turn(out, args.model, result)
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


COMMAND = Command(
    name="invoke",
    help="ask a model once (Converse), streaming the answer",
    description=(
        "Send one prompt to a model through SafeBedrockClient (ConverseStream, so any model works) and\n"
        "print the answer as it arrives; a usage line (tokens, latency) follows on stderr. Ctrl-C closes\n"
        "the stream (exit 130).\n"
        f"Allowlist: --allow entries; else {ENV_VAR} when set, even blank (the command refuses what your\n"
        "app would refuse: a blank variable refuses every model); only when the variable is not set at all\n"
        "and no --allow is given, the MODEL you named is allowed."
    ),
    epilog=(
        "examples:\n"
        '  safe-bedrock invoke anthropic.claude-3-haiku-20240307-v1:0 "Say hello in French"\n'
        '  safe-bedrock invoke us.amazon.nova-lite-v1:0 "Summarise:" --system "Be brief" --max-tokens 200\n'
        '  echo "What is IAM?" | safe-bedrock invoke amazon.nova-micro-v1:0 - --no-stream --json\n'
        "  safe-bedrock fake-server --port 4010 &   # then, offline:\n"
        '  safe-bedrock invoke anthropic.claude-3-haiku-20240307-v1:0 "Hi" --endpoint-url http://127.0.0.1:4010\n\n'
        + EXIT_CODES_HELP
    ),
    configure=_configure,
    run=_run,
)
