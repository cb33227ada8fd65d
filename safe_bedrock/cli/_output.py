"""Output shared by every command: human or --json, any exception as one line plus the fix, never a traceback.

What a problem shows (summary, fix, details) has credentials masked and control characters escaped, like
the library's errors and logs: an error message can echo the request, and a model id comes from the user.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TextIO

import botocore
import botocore.exceptions as bce

from safe_bedrock import __version__, errors
from safe_bedrock._observe import safe_text
from safe_bedrock.cli import EXIT_DENIED, EXIT_INTERRUPTED, EXIT_SOFTWARE, EXIT_USAGE, CommandError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping

_EXIT_CODES: Final = {
    "usage": EXIT_USAGE,
    "denied": EXIT_DENIED,
    "failed": EXIT_DENIED,
    "internal": EXIT_SOFTWARE,
    "interrupted": EXIT_INTERRUPTED,
}


@dataclass(frozen=True, slots=True)
class Problem:
    """What went wrong, for a human (summary + fix) and a script (`details`); `kind` sets the exit code."""

    kind: str  # "usage", "denied", "failed", "internal", "interrupted"
    summary: str
    fix: str
    error_type: str
    details: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Cleaned here, where every problem is made, so both the human line and --json are one line and safe.
        object.__setattr__(self, "summary", _safe(_one_line(self.summary)))
        object.__setattr__(self, "fix", _safe(_one_line(self.fix)))
        object.__setattr__(self, "details", _safe(dict(self.details)))

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self.kind]

    def as_json(self) -> dict[str, object]:
        head = {"type": self.error_type, "kind": self.kind, "summary": self.summary, "fix": self.fix}
        return {**head, "exit_code": self.exit_code, **self.details}


def _safe(value: Any) -> Any:
    """`value` with every string in it passed through the library's `safe_text`."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {key: _safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(item) for item in value]
    return value


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _service_problem(exc: Any) -> Problem:
    details = {
        key: value for key, value in exc.fields().items() if key != "fix" and value not in (None, "", ())
    }
    name = type(exc).__name__  # per-client translated classes carry the public class name
    if isinstance(exc, errors.ModelNotAllowedError):
        source = f" (allowlist from {exc.allowlist_source})" if exc.allowlist_source else ""
        summary = f"refused by the allowlist{source}: {exc.model_id or exc.model_arn} is not allowed"
        if exc.closest:
            summary += f"; closest allowed: {', '.join(exc.closest[:3])}"
        fix = exc.fix or (f"add {exc.entry_to_add!r} to the allowlist" if exc.entry_to_add else "")
    else:
        summary, fix = f"{name}: {exc.summary}", exc.fix
    return Problem(
        "denied" if isinstance(exc, errors.AccessDeniedError) else "failed", summary, fix, name, details
    )


def _kind_summary_fix(exc: BaseException, endpoint: str | None) -> tuple[str, str, str]:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "interrupted", ""
    if isinstance(exc, errors.InvalidModelIdError):
        return "usage", f"invalid model id {exc.model_id!r}: {exc.problem}", exc.fix
    if isinstance(exc, errors.SafeBedrockError):
        # Several of our messages end in "Fix: ..." (PolicyError): show it on its own line.
        summary, _, fix = _one_line(str(exc)).partition(" Fix: ")
        return ("usage" if isinstance(exc, ValueError) else "failed"), summary, fix
    if isinstance(exc, bce.NoCredentialsError):
        fix = "configure credentials: `aws configure`, `aws sso login`, AWS_PROFILE, or "
        fix += "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        return "denied", "no AWS credentials found", fix
    if isinstance(exc, bce.NoRegionError):
        return "usage", "no AWS region configured", "pass --region or set AWS_REGION"
    if isinstance(exc, bce.ProfileNotFound):
        return "usage", str(exc), "set AWS_PROFILE to a profile in ~/.aws/config, or unset it"
    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectionClosedError, bce.ConnectTimeoutError)):
        fix = "check the network, the region and --endpoint-url (is the fake server running?)"
        return "failed", f"could not reach {endpoint or 'the AWS endpoint'}: {exc}", fix
    if isinstance(exc, bce.ReadTimeoutError):
        return "failed", f"timed out waiting for an answer: {exc}", "try again"
    if isinstance(exc, bce.BotoCoreError):
        return "failed", str(exc), ""
    if isinstance(exc, json.JSONDecodeError):
        summary = f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        return "usage", summary, "check the file with `python -m json.tool FILE`"
    if isinstance(exc, UnicodeDecodeError):
        return "usage", f"not UTF-8 text: {exc.reason}", "pass a UTF-8 text file"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return "usage", f"{where}{exc.strerror or exc}", "check the path and its permissions"
    name = type(exc).__name__
    fix = (
        "this is a bug in safe-bedrock; when you report it, include the command you ran (secrets removed), "
        f"this message and the versions: safe-bedrock {__version__}, botocore {botocore.__version__}, "
        f"Python {platform.python_version()}"
    )
    return "internal", f"unexpected error: {name}: {_one_line(str(exc)) or name}", fix


def describe(exc: BaseException, *, endpoint: str | None = None) -> Problem:
    """The `Problem` for any exception a command can meet; never raises."""
    name = type(exc).__name__
    if isinstance(exc, CommandError):
        return Problem(
            exc.kind, exc.problem, exc.fix, name, {"argument": exc.argument} if exc.argument else {}
        )
    if isinstance(exc, errors.BedrockServiceError):
        return _service_problem(exc)
    if isinstance(exc, bce.ClientError):  # from a service other than bedrock-runtime (STS, IAM, bedrock)
        code = str(exc.response.get("Error", {}).get("Code", "?"))
        message = _one_line(str(exc.response.get("Error", {}).get("Message", "")) or str(exc))
        kind = "denied" if "denied" in code.lower() or "token" in code.lower() else "failed"
        details = {"code": code, "message": message, "operation": exc.operation_name}
        return Problem(kind, f"{code} on {exc.operation_name}: {message}", "", name, details)
    return Problem(*_kind_summary_fix(exc, endpoint), name)


@dataclass(kw_only=True)
class Output:
    """Where a command writes: human text (stdout for results, stderr for notes) or one JSON document."""

    command: str
    json_mode: bool
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    @classmethod
    def of(cls, args: argparse.Namespace) -> Output:
        """The output of the command `args` were parsed for (--json or not)."""
        return cls(command=str(args.command), json_mode=bool(getattr(args, "json", False)))

    def write(self, text: str) -> None:
        """Result text on stdout, flushed (streamed tokens appear as they arrive)."""
        self.stdout.write(text)
        self.stdout.flush()

    def line(self, text: str = "") -> None:
        self.write(text + "\n")

    def note(self, text: str) -> None:
        """A human note on stderr (usage lines, progress); silent in --json mode."""
        if not self.json_mode:
            self.stderr.write(text + "\n")
            self.stderr.flush()

    def emit(self, document: object, *, compact: bool = False) -> None:
        """The --json result: one JSON document on stdout (`compact`: on one line, for JSON Lines)."""
        self.line(json.dumps(document, default=str, indent=None if compact else 2))

    def problem(self, problem: Problem, *, turn: int | None = None) -> int:
        """Report a problem (one line plus the fix, or a JSON object: on one line for chat's numbered `turn`)
        and return its exit code."""
        if problem.kind == "interrupted":
            self.note("\ninterrupted")
        elif self.json_mode:
            numbered = {} if turn is None else {"turn": turn}
            self.emit({"ok": False, **numbered, "error": problem.as_json()}, compact=turn is not None)
        else:
            label = {"usage": "error", "internal": "internal error"}.get(problem.kind, problem.kind)
            fix = f"\n  fix: {problem.fix}" if problem.fix else ""
            self.stderr.write(f"safe-bedrock {self.command}: {label}: {problem.summary}{fix}\n")
            self.stderr.flush()
        return problem.exit_code


def run_command(
    args: argparse.Namespace, body: Callable[[Output], int], *, endpoint: str | None = None
) -> int:
    """Run a command body with every exception turned into one line (or JSON) and an exit code: an exception
    nobody expected is reported as such, with exit code 70."""
    out = Output.of(args)
    try:
        return body(out)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly; point stdout at devnull so the interpreter's final
        # flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_DENIED
    except (KeyboardInterrupt, Exception) as exc:  # noqa: BLE001 - the one place every error ends up
        return out.problem(describe(exc, endpoint=endpoint))
