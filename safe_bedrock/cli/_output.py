"""Output shared by `policy`, `check`, `invoke` and `chat`: human or --json, errors as one line plus the fix.

Every command runs its body through `run_command`, which turns any exception into the same two things: one
line saying what went wrong (and a ``fix:`` line), or with --json one JSON object on stdout, and an exit
code. A traceback is never shown; an exception nobody expected is reported as such, with exit code 70.
What a problem shows (summary, fix, details) has credentials masked and control characters escaped, like
the library's errors and logs: an error message can echo the request, and a model id comes from the user.

Exit codes (the same for every command; `check` adds 3):
  0   success (for `check`: the call is allowed)
  1   denied or failed: Bedrock, IAM or the allowlist refused, or the call failed (the message says why)
  2   usage or bad input (arguments, model ids, regions, endpoint URLs, files, settings)
  3   `check` only: could not tell (a step could not be checked and no call proved access)
  70  an internal error: a bug in safe-bedrock, never a mistake in the input
  130 interrupted by Ctrl-C
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TextIO

from safe_bedrock.cli import EXIT_DENIED, EXIT_INTERRUPTED, EXIT_OK, EXIT_SOFTWARE, EXIT_USAGE, CommandError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_DENIED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SOFTWARE",
    "EXIT_UNKNOWN",
    "EXIT_USAGE",
    "Output",
    "Problem",
    "describe",
    "run_command",
]

EXIT_UNKNOWN: Final = 3  # `check` only: could not tell

EXIT_CODES_HELP: Final = (
    "exit codes: 0 ok; 1 denied or the call failed (refused by Bedrock, IAM or the allowlist);\n"
    "  2 usage or bad input; 70 unexpected internal error; 130 interrupted (Ctrl-C)"
)


@dataclass(frozen=True, slots=True)
class Problem:
    """What went wrong, for a human (summary + fix) and for a script (`details`), with the exit code."""

    kind: str  # "denied", "failed", "usage", "interrupted", "internal"
    summary: str
    fix: str
    exit_code: int
    error_type: str
    details: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Cleaned here, where every problem is made, so both the human line and --json are safe.
        object.__setattr__(self, "summary", _safe(self.summary))
        object.__setattr__(self, "fix", _safe(self.fix))
        object.__setattr__(self, "details", _safe(dict(self.details)))

    def as_json(self) -> dict[str, object]:
        return {
            "type": self.error_type,
            "kind": self.kind,
            "summary": self.summary,
            "fix": self.fix,
            "exit_code": self.exit_code,
            **self.details,
        }


def _safe(value: Any) -> Any:
    """`value` with every string in it passed through the library's `safe_text`."""
    from safe_bedrock._observe import safe_text  # keep `--help` fast

    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {key: _safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(item) for item in value]
    return value


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _split_fix(text: str) -> tuple[str, str]:
    # Several of our messages end in "Fix: ..." (PolicyError, InvalidModelIdError); show it on its own line.
    head, sep, tail = text.partition(" Fix: ")
    return (_one_line(head), _one_line(tail)) if sep else (_one_line(text), "")


def _service_problem(exc: Any) -> Problem:
    from safe_bedrock.errors import AccessDeniedError, ModelNotAllowedError

    details: dict[str, object] = {}
    for key, value in exc.fields().items():
        if key != "fix" and value not in (None, "", ()):
            details[key] = list(value) if isinstance(value, tuple) else value
    name = type(exc).__name__  # per-client translated classes carry the public class name
    if isinstance(exc, ModelNotAllowedError):
        source = f" (allowlist from {exc.allowlist_source})" if exc.allowlist_source else ""
        summary = f"refused by the allowlist{source}: {exc.model_id or exc.model_arn} is not allowed"
        if exc.closest:
            summary += f"; closest allowed: {', '.join(exc.closest[:3])}"
        fix = exc.fix or (f"add {exc.entry_to_add!r} to the allowlist" if exc.entry_to_add else "")
    else:
        summary = f"{name}: {exc.summary}"
        fix = _one_line(exc.fix)
    denied = isinstance(exc, AccessDeniedError)
    return Problem("denied" if denied else "failed", _one_line(summary), fix, EXIT_DENIED, name, details)


def describe(exc: BaseException, *, endpoint: str | None = None) -> Problem:
    """The `Problem` for any exception a command can meet; never raises."""
    import botocore.exceptions as bce  # keep `--help` fast

    from safe_bedrock.errors import BedrockServiceError, InvalidModelIdError, SafeBedrockError

    name = type(exc).__name__
    if isinstance(exc, KeyboardInterrupt):
        return Problem("interrupted", "interrupted", "", EXIT_INTERRUPTED, name)
    if isinstance(exc, CommandError):
        details = {"argument": exc.argument} if exc.argument else {}
        return Problem(exc.kind, _one_line(exc.problem), _one_line(exc.fix), exc.exit_code, name, details)
    if isinstance(exc, BedrockServiceError):
        return _service_problem(exc)
    if isinstance(exc, InvalidModelIdError):
        return Problem(
            "usage",
            f"invalid model id {exc.model_id!r}: {_one_line(exc.problem)}",
            _one_line(exc.fix),
            EXIT_USAGE,
            name,
        )
    if isinstance(exc, SafeBedrockError):
        summary, fix = _split_fix(str(exc))
        code = EXIT_USAGE if isinstance(exc, ValueError) else EXIT_DENIED
        return Problem("usage" if code == EXIT_USAGE else "failed", summary, fix, code, name)
    if isinstance(exc, bce.NoCredentialsError):
        return Problem(
            "denied",
            "no AWS credentials found",
            "configure credentials: `aws configure`, `aws sso login`, AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            EXIT_DENIED,
            name,
        )
    if isinstance(exc, bce.NoRegionError):
        return Problem(
            "usage", "no AWS region configured", "pass --region or set AWS_REGION", EXIT_USAGE, name
        )
    if isinstance(exc, bce.ProfileNotFound):
        return Problem(
            "usage",
            _one_line(str(exc)),
            "set AWS_PROFILE to a profile in ~/.aws/config, or unset it",
            EXIT_USAGE,
            name,
        )
    if isinstance(exc, (bce.EndpointConnectionError, bce.ConnectionClosedError, bce.ConnectTimeoutError)):
        target = endpoint or "the AWS endpoint"
        return Problem(
            "failed",
            f"could not reach {target}: {_one_line(str(exc))}",
            "check the network, the region and --endpoint-url (is the fake server running?)",
            EXIT_DENIED,
            name,
        )
    if isinstance(exc, bce.ReadTimeoutError):
        return Problem(
            "failed",
            f"timed out waiting for an answer: {_one_line(str(exc))}",
            "try again",
            EXIT_DENIED,
            name,
        )
    if isinstance(exc, bce.ParamValidationError):
        return Problem("usage", _one_line(str(exc)), "check the arguments", EXIT_USAGE, name)
    if isinstance(exc, bce.ClientError):
        error: Mapping[str, Any] = exc.response.get("Error", {})
        error_code = str(error.get("Code", "?"))
        message = _one_line(str(error.get("Message", "")) or str(exc))
        denied = "denied" in error_code.lower() or "token" in error_code.lower()
        return Problem(
            "denied" if denied else "failed",
            f"{error_code} on {exc.operation_name}: {message}",
            "",
            EXIT_DENIED,
            name,
            {"code": error_code, "message": message, "operation": exc.operation_name},
        )
    if isinstance(exc, bce.BotoCoreError):
        return Problem("failed", _one_line(str(exc)), "", EXIT_DENIED, name)
    if isinstance(exc, json.JSONDecodeError):
        return Problem(
            "usage",
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            "check the file with `python -m json.tool FILE`",
            EXIT_USAGE,
            name,
        )
    if isinstance(exc, UnicodeDecodeError):
        return Problem("usage", f"not UTF-8 text: {exc.reason}", "pass a UTF-8 text file", EXIT_USAGE, name)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return Problem(
            "usage",
            f"{where}{exc.strerror or _one_line(str(exc))}",
            "check the path and its permissions",
            EXIT_USAGE,
            name,
        )
    return Problem(
        "internal",
        f"unexpected error: {name}: {_one_line(str(exc)) or name}",
        "this is a bug in safe-bedrock; when you report it, include the command you ran (secrets removed), "
        f"this message and the versions: {_versions()}",
        EXIT_SOFTWARE,
        name,
    )


def _versions() -> str:
    """`safe-bedrock 1.2.0, botocore 1.35.0, Python 3.12.4`, for a bug report."""
    import platform
    from importlib import metadata

    found = []
    for dist in ("safe-bedrock", "botocore"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:  # noqa: PERF203 - two names  # pragma: no cover
            found.append(f"{dist} (not installed)")
    return ", ".join([*found, f"Python {platform.python_version()}"])


class Output:
    """Where a command writes: human text (stdout for results, stderr for notes) or one JSON document."""

    def __init__(
        self, *, command: str, json_mode: bool, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.command = command
        self.json_mode = json_mode
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr

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
        text = json.dumps(document, default=str) if compact else json.dumps(document, indent=2, default=str)
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def problem(self, problem: Problem) -> int:
        """Report a problem (one line plus the fix, or a JSON object) and return its exit code."""
        if problem.kind == "interrupted":
            if not self.json_mode:
                self.stderr.write("\ninterrupted\n")
                self.stderr.flush()
            return problem.exit_code
        if self.json_mode:
            self.emit({"ok": False, "error": problem.as_json()})
        else:
            label = {"usage": "error", "internal": "internal error"}.get(problem.kind, problem.kind)
            lines = [f"safe-bedrock {self.command}: {label}: {problem.summary}"]
            if problem.fix:
                lines.append(f"  fix: {problem.fix}")
            self.stderr.write("\n".join(lines) + "\n")
            self.stderr.flush()
        return problem.exit_code


def run_command(
    args: argparse.Namespace,
    body: Callable[[Output], int],
    *,
    endpoint: str | None = None,
    output: Output | None = None,
) -> int:
    """Run a command body with every exception turned into one line (or JSON) and an exit code."""
    out = output or Output(
        command=str(getattr(args, "command", "") or ""), json_mode=bool(getattr(args, "json", False))
    )
    try:
        return body(out)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly; point stdout at devnull so the interpreter's final
        # flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_DENIED
    except (KeyboardInterrupt, Exception) as exc:  # noqa: BLE001 - the one place every error ends up
        return out.problem(describe(exc, endpoint=endpoint))
