"""The `safe-bedrock` command line.

Each subcommand lives in its own module and exposes a module-level ``COMMAND`` (a `Command`); adding a
subcommand is adding its module path to `COMMAND_MODULES`; modules are imported when the parser is built.

Exit codes shared by every command: 0 success, 1 denied or failed, 2 bad input or usage (argparse's own
convention: arguments, model ids, regions, endpoint URLs, files), 70 an internal error (a bug in safe-bedrock,
never a user's mistake), 130 interrupted by Ctrl-C. Commands may define more (documented in their help).
With ``--json`` anywhere in the arguments every error is one JSON object on stdout, argparse's own included.
"""

from __future__ import annotations

import argparse
import contextvars
import difflib
import importlib
import itertools
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["COMMAND_MODULES", "Command", "CommandError", "build_parser", "main"]

PROG = "safe-bedrock"
EXIT_OK = 0
EXIT_DENIED = 1
EXIT_USAGE = 2
EXIT_SOFTWARE = 70  # sysexits' EX_SOFTWARE: a bug in safe-bedrock itself
EXIT_INTERRUPTED = 130
EXIT_CODES_HELP = (
    "exit codes: 0 ok; 1 denied or the call failed (refused by Bedrock, IAM or the allowlist);\n"
    "  2 usage or bad input; 70 unexpected internal error; 130 interrupted (Ctrl-C)"
)

# The registration seam: one module per subcommand, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "safe_bedrock.cli._fake_server",
    "safe_bedrock.cli._policy_cmd",
    "safe_bedrock.cli._check",
    "safe_bedrock.cli._invoke",
    "safe_bedrock.cli._chat",
    "safe_bedrock.cli._catalog_cmd",
)


@dataclass(frozen=True, slots=True)
class Command:
    """One subcommand: its name, help texts, how it adds its arguments, and what it runs."""

    name: str
    help: str
    description: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str = ""


class CommandError(Exception):
    """A problem a command can name: printed as one line (problem, then fix), no traceback.

    `kind` is "usage" (bad input, exit 2) by default; a refusal passes ``kind="denied"`` (exit 1). `argument`
    names the argument or setting at fault (``--region``, ``MODEL``, ``AWS_REGION``); --json carries it.
    """

    def __init__(self, problem: str, *, fix: str = "", argument: str = "", kind: str = "usage") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.argument = argument
        self.kind = kind

    def __str__(self) -> str:
        return f"{self.problem}; {self.fix}" if self.fix else self.problem


# Whether argparse's own errors print JSON: set by `main` when --json is among the arguments.
_JSON_ERRORS: contextvars.ContextVar[bool] = contextvars.ContextVar("safe_bedrock_cli_json", default=False)
_ARGUMENT_RE = re.compile(r"argument ([^:]+): ")


class _Parser(argparse.ArgumentParser):
    """argparse with errors like the commands' own: the message, a ``fix:`` line, and JSON under --json."""

    def error(self, message: str) -> NoReturn:
        argument, fix = _argument_fix(self, message)
        if _JSON_ERRORS.get():
            from safe_bedrock.cli._output import Output, Problem

            details = {"argument": argument} if argument else {}
            problem = Problem("usage", message, fix, "ArgumentError", details)
            Output(command=self.prog, json_mode=True).problem(problem)
        else:
            self.print_usage(sys.stderr)
            sys.stderr.write(f"{self.prog}: error: {message}\n" + (f"  fix: {fix}\n" if fix else ""))
        raise SystemExit(EXIT_USAGE)


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]}? " if close else ""


def _argument_fix(parser: argparse.ArgumentParser, message: str) -> tuple[str, str]:
    """The argument an argparse message is about, and what to do."""
    helps = f"see `{parser.prog} --help`"
    if message.startswith("the following arguments are required: "):
        missing = message.split(": ", 1)[1]
        return missing, f"pass {missing}; {helps}"
    if message.startswith("unrecognized arguments: "):
        first = message.split(": ", 1)[1].split(maxsplit=1)[0]
        options = [o for o in parser._option_string_actions if o.startswith("--")]
        hint = _did_you_mean(first.split("=", 1)[0], options) if first.startswith("-") else ""
        return first, f"{hint}remove {first!r} or check its spelling; {helps}"
    match = _ARGUMENT_RE.match(message)
    if match is None:
        return "", helps
    argument = match.group(1).split("/")[-1]
    if "invalid choice: " in message:
        chosen = message.split("invalid choice: ", 1)[1].split(" (", 1)[0].strip("'")
        choices = re.findall(r"'([^']+)'", message.split("(choose from", 1)[-1])
        return argument, f"{_did_you_mean(chosen, choices)}{argument} is one of: {', '.join(choices)}"
    return argument, f"{helps} for {argument}"


def build_parser(modules: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser, one subparser per registered command (default: `COMMAND_MODULES`)."""
    parser = _Parser(
        prog=PROG,
        description="Guard, test and diagnose Amazon Bedrock calls.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for path in COMMAND_MODULES if modules is None else modules:
        command: Command = importlib.import_module(path).COMMAND
        sub = subparsers.add_parser(
            command.name,
            help=command.help,
            description=command.description,
            epilog=command.epilog or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.configure(sub)
        sub.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `safe-bedrock` console script; returns the process exit code."""
    from safe_bedrock.cli._output import run_command

    arguments = list(sys.argv[1:] if argv is None else argv)
    # --json after ``--`` is a PROMPT, not the option.
    token = _JSON_ERRORS.set("--json" in itertools.takewhile(lambda word: word != "--", arguments))
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(arguments)
        if extra:  # reported by the subcommand's parser: its usage, its options for a suggestion
            subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            subparsers.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    finally:
        _JSON_ERRORS.reset(token)
    run: Callable[[argparse.Namespace], int] = args._run  # set by build_parser
    return run_command(args, lambda _out: run(args), endpoint=getattr(args, "endpoint_url", None))
