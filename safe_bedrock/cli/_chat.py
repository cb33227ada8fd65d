"""`safe-bedrock chat MODEL`: an interactive conversation, one line of stdin per turn.

Each turn sends the whole conversation through SafeBedrockClient's ConverseStream. Ctrl-C while the answer
streams closes the stream and returns to the prompt (what arrived stays in the conversation).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from safe_bedrock.cli import EXIT_CODES_HELP, EXIT_INTERRUPTED, EXIT_OK, Command, _invoke
from safe_bedrock.cli._output import Output, describe
from safe_bedrock.errors import SafeBedrockError

if TYPE_CHECKING:
    import argparse


_HELP = "commands: /reset forgets the conversation, /exit leaves (so do Ctrl-D and Ctrl-C at the prompt)"


def _read(out: Output) -> str:
    """The next line of input without its newline (prompting on a terminal); "/exit" at the end of input."""
    if sys.stdin.isatty() and not out.json_mode:
        out.stderr.write("you> ")
        out.stderr.flush()
    line = sys.stdin.readline()
    return line.rstrip("\n") if line else "/exit"


def _run(args: argparse.Namespace) -> int:
    out = Output.of(args)
    session = _invoke.aws_session(region=args.region, endpoint_url=args.endpoint_url)
    allowlist = _invoke.build_allowlist(args.model, args.allow, region=str(session.region_name))
    messages: list[dict[str, Any]] = []
    turn = 0
    out.note(f"chat with {args.model} in {session.region_name}; {_HELP}")
    with _invoke.safe_client(session=session, allowlist=allowlist, endpoint_url=args.endpoint_url) as client:
        while True:
            try:
                line = _read(out)
            except KeyboardInterrupt:
                out.note("")
                return EXIT_INTERRUPTED
            command = line.strip()
            if command in {"/exit", "/quit"}:
                return EXIT_OK
            if command == "/reset":
                messages.clear()
                out.note("(conversation forgotten)")
            elif command == "/help":
                out.note(_HELP)
            if command in {"", "/reset", "/help"}:
                continue
            messages.append({"role": "user", "content": [{"text": line}]})
            turn += 1
            try:
                result = _invoke.converse_turn(client, args, messages, out)
            except KeyboardInterrupt:
                # Ctrl-C before the answer started: forget the question, back to the prompt.
                messages.pop()
                out.note("\n(stopped)")
                continue
            except SafeBedrockError as exc:
                # A failed turn is reported and forgotten; the conversation goes on.
                messages.pop()
                out.problem(describe(exc), turn=turn)
                continue
            if result.text:
                messages.append({"role": "assistant", "content": [{"text": result.text}]})
            else:  # nothing arrived: drop the question so user and assistant turns still alternate
                messages.pop()
            _invoke.show_turn(out, args.model, result, turn=turn)


COMMAND = Command(
    name="chat",
    help="talk with a model interactively (ConverseStream)",
    description=(
        "An interactive conversation through SafeBedrockClient: each line you type is a turn, the answer\n"
        "streams as it arrives, and the conversation is kept between turns. Lines can also come from a\n"
        "pipe. Ctrl-C while an answer streams stops it and returns to the prompt.\n"
        f"{_HELP}.\n"
        "Allowlist: as for `invoke`: --allow; else SAFE_BEDROCK_ALLOWED_MODELS when set, even blank (a\n"
        "blank one refuses every model); only when neither is given, the MODEL you named."
    ),
    epilog=(
        "examples:\n"
        "  safe-bedrock chat anthropic.claude-3-haiku-20240307-v1:0\n"
        '  safe-bedrock chat us.amazon.nova-pro-v1:0 --system "You are terse." --max-tokens 300\n'
        "  printf 'Hello\\nAnd again?\\n' | safe-bedrock chat amazon.nova-lite-v1:0 --json\n\n"
        "With --json each turn prints one JSON object on one line (JSON Lines).\n"
        "A failed turn prints its error and the chat goes on.\n" + EXIT_CODES_HELP + " at the prompt"
    ),
    configure=_invoke.add_converse_arguments,
    run=_run,
)
