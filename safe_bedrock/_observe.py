"""One log event per call (the README's "One log event per call"), the call hooks, and body redaction.

safe-bedrock never configures logging: the event goes through the app's structlog pipeline when
`structlog.is_configured()`, else to the stdlib logger "safe_bedrock" (a NullHandler only), and is built
only when that logger would emit it. Bodies, credentials and headers are never logged by default:
`CallDetails` has no field that could hold them. Every text it holds and every logged body has its control
characters escaped (`escape_controls`), so each call is one line in any formatter; `safe_text` (credentials
masked, then escaped) is the one cleaning the typed errors and the CLI apply to the text they show.
"""

from __future__ import annotations

import json
import logging
import re
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import structlog

from safe_bedrock._classify import Cause
from safe_bedrock._retry import CONNECTION_ERRORS, is_transient
from safe_bedrock.errors import (
    AccessDeniedError,
    BedrockServiceError,
    InvalidModelIdError,
    ModelNotAllowedError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

EVENT = "bedrock.call"
LOGGER_NAME = "safe_bedrock"

Outcome = Literal["ok", "error", "refused"]

_stdlib_logger = logging.getLogger(LOGGER_NAME)
# The library convention (logging HOWTO): a NullHandler keeps Python's last-resort handler from printing
# our warnings to stderr in an app that never configured logging; the app's own config still applies.
_stdlib_logger.addHandler(logging.NullHandler())
_structlog_logger = structlog.get_logger(LOGGER_NAME)

# Long strings in an event are identifiers or our own texts; anything longer is cut, so a caller passing a
# document as modelId does not put it in the logs.
_MAX_FIELD = 256
_MAX_CAUSE = 600


@dataclass(frozen=True, slots=True, kw_only=True)
class CallDetails:
    """What one call did, handed to every call hook and turned into the log event.

    Durations are milliseconds; token counts are what Bedrock reported. Streams only: `ttft_ms` (to the
    first event), `events` and `bytes` read, `closed_early` (the caller left before the end) and `complete`
    (the closing event came; False, a cut answer, is logged as a warning).

    Added in version 0.1.0.
    """

    operation: str
    model_id: str | None
    model_arn: str | None
    region: str
    outcome: Outcome
    latency_ms: float
    attempts: int = 1
    error_class: str | None = None
    error_code: str | None = None
    error_category: str | None = None
    cause: str | None = None
    request_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    stream: bool = False
    ttft_ms: float | None = None
    events: int | None = None
    bytes: int | None = None
    closed_early: bool | None = None
    complete: bool | None = None

    def __post_init__(self) -> None:
        # The model id is the caller's input (a chat UI, a tool call) and request ids and error codes come
        # off the wire: escaped here, so neither the event nor a hook that logs these fields can be forged.
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, str) and not value.isprintable():
                object.__setattr__(self, name, escape_controls(value))


class CallHook(Protocol):
    """Called once per call with its details, after the log event. Must be quick; must not raise.

    A hook that raises does not break the call: its first failure is logged (event "bedrock.hook_failed")
    and the call goes on. Hooks run in the thread (or event loop) that ended the call.

    Added in version 0.1.0.
    """

    def __call__(self, details: CallDetails, /) -> None: ...


# From an error to the event's error fields


def outcome_of(exc: BaseException) -> Outcome:
    """ "refused" for what was stopped locally before anything was sent, "error" otherwise."""
    return "refused" if isinstance(exc, (ModelNotAllowedError, InvalidModelIdError)) else "error"


# The cause table's categories by error class; an error is logged under its nearest class in the table.
_CATEGORY_OF_CLASS = {cause.error_class: cause.category for cause in Cause}


def _category(exc: BaseException) -> str:
    if isinstance(exc, ModelNotAllowedError):
        return "refused"
    if isinstance(exc, InvalidModelIdError):
        return "invalid_model_id"
    if isinstance(exc, BedrockServiceError):  # BedrockServiceError itself is in the table
        return next(_CATEGORY_OF_CLASS[klass] for klass in type(exc).__mro__ if klass in _CATEGORY_OF_CLASS)
    if is_transient(exc):  # a connection failure: transient service errors were placed above
        return "connection"
    return "other"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cause_of(exc: BaseException) -> str | None:
    """A one-line cause safe to log, from the error's parsed fields and our own fix text (credentials masked).

    Bedrock's message is never copied: a validation message can quote the prompt, a signature error the
    canonical request.
    """
    parts: list[str] = []
    if isinstance(exc, AccessDeniedError) and not isinstance(exc, ModelNotAllowedError):
        if exc.action or exc.resource:
            who = exc.principal or "the caller"
            what = " on ".join(part for part in (exc.action, exc.resource) if part)
            parts.append(f"{who} may not {what}")
        if exc.policy_type or exc.policy_arn:
            policy = " ".join(part for part in (exc.policy_type, "policy", exc.policy_arn) if part)
            parts.append(f"({policy})")
    if isinstance(exc, BedrockServiceError):
        if exc.fix:
            parts.append(f"Fix: {exc.fix}")
    elif isinstance(exc, InvalidModelIdError):
        parts.append(f"{exc.problem}. Fix: {exc.fix}")
    elif isinstance(exc, CONNECTION_ERRORS):
        parts.append(str(exc))  # the endpoint URL and the transport's reason
    # Anything else: an arbitrary exception's message may quote anything, so only its class is logged.
    if not parts:
        return None
    return _clip(" ".join(redact_secrets(" ".join(parts)).split()), _MAX_CAUSE)


def error_fields(exc: BaseException) -> dict[str, str | None]:
    """The error part of `CallDetails` for `exc`: `CallDetails(..., **error_fields(exc))`."""
    code = exc.code if isinstance(exc, BedrockServiceError) else None
    return {
        "error_class": type(exc).__name__,  # per-client subclasses are named like their public class
        "error_code": code,
        "error_category": _category(exc),
        "cause": cause_of(exc),
    }


# The event (sans-I/O)

_QUIET_CATEGORIES = frozenset({"transient", "connection"})


def level_of(details: CallDetails) -> int:
    """The stdlib level of the call's event (see the module docstring for the rule)."""
    if details.stream and details.complete is False and not details.closed_early:
        return logging.WARNING
    return _level(details.outcome, details.error_category)


def _level(outcome: str, error_category: str | None) -> int:
    if outcome == "ok":
        return logging.INFO
    if outcome == "refused" or error_category in _QUIET_CATEGORIES:
        return logging.WARNING
    return logging.ERROR


def would_log(outcome: str, error_category: str | None = None) -> bool:
    """Whether the default routing would keep an event of this kind (structlog's pipeline decides itself)."""
    return structlog.is_configured() or _stdlib_logger.isEnabledFor(_level(outcome, error_category))


def _short(value: str | None) -> str | None:
    return None if value is None else _clip(value, _MAX_FIELD)


def event_from(details: CallDetails) -> dict[str, Any]:
    """The event's fields (without the event name), in a stable order."""
    event: dict[str, Any] = {
        "operation": details.operation,
        "model_id": _short(details.model_id),
        "model_arn": _short(details.model_arn),
        "region": details.region,
        "outcome": details.outcome,
        "latency_ms": round(details.latency_ms, 3),
        "attempts": details.attempts,
        "request_id": details.request_id,
        "input_tokens": details.input_tokens,
        "output_tokens": details.output_tokens,
    }
    if details.outcome != "ok":
        event["error_class"] = details.error_class
        event["error_code"] = details.error_code
        event["error_category"] = details.error_category
        event["cause"] = details.cause
    if details.stream:
        event["stream"] = True
        event["ttft_ms"] = None if details.ttft_ms is None else round(details.ttft_ms, 3)
        event["events"] = details.events
        event["bytes"] = details.bytes
        event["closed_early"] = details.closed_early
        event["complete"] = details.complete
    return event


# Redaction and opt-in body logging

_REDACTED = "[REDACTED]"

# A value labelled as a secret: the label is any name ending in one of these words (aws_secret_access_key,
# SecretAccessKey, client_secret, X-Amz-Security-Token, sessionToken, X-Amz-Signature, db_password,
# x-api-key, ...), and only at a name's end, so max_tokens or token_count stay. Then `=` or `:`, and the
# value: quoted (JSON, repr, and JSON quoted again inside a JSON string: \"...\"), or bare up to a space
# or a delimiter (env, ini, headers, query strings). Neither runs past a line end or a backslash (other
# than an escaped quote), so text that was cleaned once comes out of a second cleaning unchanged.
_NAMED_SECRET = re.compile(
    r"""(?ix)
    (?P<label>(?<![a-z0-9_-])[a-z0-9_-]*?
        (?:secret(?:[_-]?access)?(?:[_-]?key)?|token|signature|passw(?:or)?d|api[_-]?key|private[_-]?key)
        (?![a-z0-9_-]) (?:\\?["'])? [\ \t]*[:=][\ \t]*)
    (?!\[REDACTED\])  # masked already: text is cleaned again when an error is unpickled
    (?: (?P<quote>\\?["']) (?:(?!(?P=quote))(?:\\["']|[^\\\r\n]))*
      | [^\s"'\\,;&}\]]+ )
    """
)


def _mask_named(found: re.Match[str]) -> str:
    # The closing quote, if any, is left in the text: only the value goes.
    return f"{found['label']}{found['quote'] or ''}{_REDACTED}"


# Each pattern finds a credential in free text; the replacement keeps the label and drops the secret.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # The value of an Authorization header (SigV4 "AWS4-HMAC-SHA256 Credential=..., Signature=...",
    # "Bearer ...", Basic ...), in header, JSON or repr form; up to a line end, escaped (`\n`) or not.
    (
        re.compile(r"(?i)(\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?)[^\s\"'\\}][^\"'\\\r\n}]*"),
        r"\g<1>" + _REDACTED,
    ),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*"), "Bearer " + _REDACTED),
    # Secret keys, session tokens, signatures, passwords and API keys by name (JSON, env, ini, headers,
    # query strings, boto repr).
    (_NAMED_SECRET, _mask_named),
    # STS session tokens by their fixed prefixes, wherever they appear.
    (re.compile(r"\b(?:IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz)[A-Za-z0-9/+=]{20,}"), _REDACTED),
    # Amazon Bedrock API keys (long-term "ABSK...", short-term "bedrock-api-key-...").
    (re.compile(r"\bABSK[A-Za-z0-9+/=]{20,}"), _REDACTED),
    (re.compile(r"\bbedrock-api-key-[A-Za-z0-9+/=%]{8,}"), _REDACTED),
    # Access key ids (AKIA long-term, ASIA temporary, and the other IAM unique-id prefixes).
    (re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA|AIPA|ANPA|ANVA|AGPA|ABIA|ACCA)[A-Z0-9]{16}\b"), _REDACTED),
    # A bare 40-character secret access key: base64 alphabet, standing alone, mixing cases and digits
    # (which keeps git hashes and plain words out).
    (
        re.compile(
            r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[0-9/+])"
            r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"
        ),
        _REDACTED,
    ),
)


def redact_secrets(text: str) -> str:
    """`text` with AWS keys, secret keys, session tokens, signatures, Authorization values, bearer tokens
    and values named like secrets (`password=...`, `"api_key": "..."`) replaced."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def escape_controls(text: str) -> str:
    """`text` with every non-printable character (line breaks, terminal escapes, bidi overrides) escaped as
    `repr` shows it, so it can neither start a log line of its own nor restyle one."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def safe_text(text: str) -> str:
    """What error text and log fields may show of `text`: credentials masked, then control characters
    escaped (in that order: the patterns see line ends as line ends)."""
    return escape_controls(redact_secrets(text))


# Redaction runs on a window a little longer than what is kept, so a secret cut by the truncation is still
# recognised whole (session tokens run to a couple of thousand characters).
_REDACTION_MARGIN = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyLogging:
    """Opt-in: add request and response bodies to the call's event, truncated and redacted.

    Built-in redaction (`redact_secrets`) runs first; `redact` then sees the result and returns what may be
    logged (to mask emails or customer ids, say). A `redact` that raises withholds the body.

    Added in version 0.1.0.
    """

    max_chars: int = 2000
    redact: Callable[[str], str] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_chars, bool) or not isinstance(self.max_chars, int):
            raise TypeError(f"BodyLogging.max_chars takes an int, not {type(self.max_chars).__name__}")
        if self.max_chars < 0:
            raise ValueError(f"BodyLogging.max_chars must be >= 0, got {self.max_chars}")
        if self.redact is not None and not callable(self.redact):
            raise TypeError("BodyLogging.redact takes a function str -> str, or None")


def _json_default(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"  # images and documents in Converse messages: size only
    return f"<{type(value).__name__}>"


def _text_of(body: object, limit: int) -> tuple[str, str] | None:
    """Up to `limit` characters of a body, and its full size ("N chars" or "N bytes")."""
    if body is None:
        return None
    if isinstance(body, str):
        return body[:limit], f"{len(body)} chars"
    if isinstance(body, (bytes, bytearray, memoryview)):
        raw = bytes(body[: limit * 4])  # at most 4 bytes per character in UTF-8
        return raw.decode("utf-8", errors="replace")[:limit], f"{len(body)} bytes"
    if isinstance(body, (dict, list, tuple)):
        text = json.dumps(body, default=_json_default, ensure_ascii=False)
        return text[:limit], f"{len(text)} chars"
    # A file-like body (invoke_model accepts one) must not be read here: reading would consume it.
    text = f"<{type(body).__name__}>"
    return text, f"{len(text)} chars"


def summarize_body(body: object, *, config: BodyLogging) -> str | None:
    """What may be logged of a request or response body under `config`: redacted, truncated (ending with
    `...[<full size>]`) and escaped; a file-like body shows only its type, binary parts only their size."""
    found = _text_of(body, config.max_chars + _REDACTION_MARGIN)
    if found is None:
        return None
    text, size = found
    cut = len(text) > config.max_chars
    text = redact_secrets(text)
    if config.redact is not None:
        try:
            redacted: object = config.redact(text)
        except Exception:  # noqa: BLE001 - fail closed: a broken redaction hook must not leak the body
            return "[body withheld: the redact hook raised]"
        if not isinstance(redacted, str):
            return "[body withheld: the redact hook did not return a str]"
        text = redacted
    if cut or len(text) > config.max_chars:
        text = f"{text[: config.max_chars]}...[{size}]"
    return escape_controls(text)


# Emitting (the only I/O here: handing the event to a logger, calling hooks)

_METHODS = {logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error"}


class _Line:
    """The stdlib message `bedrock.call k=v ...`, rendered only if a handler formats the record."""

    __slots__ = ("_event",)

    def __init__(self, event: Mapping[str, Any]) -> None:
        self._event = event

    def __str__(self) -> str:
        parts = [EVENT]
        for key, value in self._event.items():
            if value is None:
                continue
            shown = repr(value) if isinstance(value, str) and (not value or " " in value) else value
            parts.append(f"{key}={shown}")
        return " ".join(parts)


def _route(logger: object) -> Any:
    if logger is None:
        return _structlog_logger if structlog.is_configured() else _stdlib_logger
    return logger


def emit(
    details: CallDetails,
    *,
    hooks: Iterable[CallHook] = (),
    logger: object = None,
    body_logging: BodyLogging | None = None,
    request_body: object = None,
    response_body: object = None,
) -> None:
    """Log the call's one event and call its hooks; nothing here can fail the call.

    `logger` overrides the routing: a stdlib `logging.Logger`, or any structlog-style logger (has
    `.info/.warning/.error(event, **fields)`). Bodies are ignored unless `body_logging` is given.
    """
    level = level_of(details)
    try:
        target = _route(logger)
        stdlib = isinstance(target, logging.Logger)
        if not stdlib:
            target = target.bind()  # resolves the lazy proxy once; its filtering methods are then plain calls
        check = target.isEnabledFor if stdlib else getattr(target, "is_enabled_for", None)
        if not callable(check) or check(level):  # the common default is off: nothing built, nothing formatted
            event = event_from(details)
            if body_logging is not None:
                event["request_body"] = summarize_body(request_body, config=body_logging)
                event["response_body"] = summarize_body(response_body, config=body_logging)
            if stdlib:
                target.log(level, "%s", _Line(event), extra=event)
            else:
                getattr(target, _METHODS[level])(EVENT, **event)
    except Exception:  # a broken log pipeline must not fail a call that succeeded
        _stdlib_logger.debug("could not log %s", EVENT, exc_info=True)
    for hook in hooks:
        try:
            hook(details)
        except Exception as exc:  # noqa: BLE001, PERF203 - a hook must not break the call
            _hook_failed(hook, exc, logger)


# Hooks whose failure was logged already (weakly held where the hook allows it, else by id).
_failed_hooks: weakref.WeakSet[object] = weakref.WeakSet()
_failed_hook_ids: set[int] = set()


def _first_failure(hook: object) -> bool:
    try:
        if hook in _failed_hooks:
            return False
        _failed_hooks.add(hook)
    except TypeError:  # not weak-referenceable
        if id(hook) in _failed_hook_ids:
            return False
        _failed_hook_ids.add(id(hook))
    return True


def _hook_failed(hook: object, exc: Exception, logger: object) -> None:
    try:
        if not _first_failure(hook):
            return
        name = escape_controls(_clip(getattr(hook, "__qualname__", None) or repr(hook), _MAX_FIELD))
        fields = {"hook": name, "error_class": type(exc).__name__}
        target = _route(logger)
        if isinstance(target, logging.Logger):
            target.warning(
                "bedrock.hook_failed hook=%s error_class=%s (later failures of this hook are not logged)",
                name,
                fields["error_class"],
                exc_info=exc,
            )
        else:
            target.warning("bedrock.hook_failed", exc_info=exc, **fields)
    except Exception:  # noqa: BLE001, S110 - reporting a broken hook must not break the call either
        pass
