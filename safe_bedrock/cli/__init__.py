"""The `safe-bedrock` command line.

Each subcommand lives in its own module and exposes a module-level ``COMMAND`` (a `Command`); adding a
subcommand is adding its module path to `COMMAND_MODULES`. Modules are imported only when the parser is
built, and heavy imports (boto3) belong inside a command's ``run`` so that ``--help`` stays fast.

Exit codes shared by every command: 0 success, 2 bad input or usage (argparse's own convention), 70 an
internal error (a bug: one line, please report), 130 interrupted by Ctrl-C. Commands may define more
(documented in their help).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["COMMAND_MODULES", "Command", "CommandError", "build_parser", "main"]

PROG = "safe-bedrock"
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_SOFTWARE = 70  # sysexits' EX_SOFTWARE: a bug in safe-bedrock itself
EXIT_INTERRUPTED = 130

# The registration seam: one module per subcommand, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "safe_bedrock.cli._fake_server",
    "safe_bedrock.cli._policy_cmd",
    "safe_bedrock.cli._check",
    "safe_bedrock.cli._invoke",
    "safe_bedrock.cli._chat",
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
    """Bad input a command can name: printed as one line (problem, then fix), exit code 2, no traceback."""

    def __init__(self, problem: str, *, fix: str = "", exit_code: int = EXIT_USAGE) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.problem}; {self.fix}" if self.fix else self.problem


def _load_commands(modules: Sequence[str]) -> list[Command]:
    commands = []
    for path in modules:
        command = importlib.import_module(path).COMMAND
        if not isinstance(command, Command):  # pragma: no cover - a registration mistake, caught in review
            raise TypeError(f"{path}.COMMAND must be a safe_bedrock.cli.Command")
        commands.append(command)
    return commands


def build_parser(modules: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser, one subparser per registered command (default: `COMMAND_MODULES`)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Guard, test and diagnose Amazon Bedrock calls.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _load_commands(COMMAND_MODULES if modules is None else modules):
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
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args._run  # set by build_parser
    try:
        return run(args)
    except CommandError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - last resort: a command line never shows a traceback
        detail = " ".join(str(exc).split()) or type(exc).__name__
        print(
            f"{PROG} {args.command}: internal error: {type(exc).__name__}: {detail}; this is a bug in "
            "safe-bedrock, please report it with the command you ran",
            file=sys.stderr,
        )
        return EXIT_SOFTWARE
