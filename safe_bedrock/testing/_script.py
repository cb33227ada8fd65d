"""Scripting the fake: queue answers, errors and stream faults; route by model; record; assert on it.

Modelled on botocore's Stubber (`add_response`, `add_client_error`, `ANY`, `assert_no_pending_responses`), but
stream-aware and shared by both transports: `FakeBedrock` and `FakeBedrockServer` both mix in `ScriptingAPI`.

How a request finds its answer:
1. the queue, oldest first: the first entry whose `model` pattern and `operation` fit is used, once;
2. else the routes (`route(...)`), in the order they were added: the first that fits answers, and stays;
3. else the default answer of the model's provider family (see `_responders`).

A scripting mistake (an error code Bedrock does not have, a stream error on a non-stream operation, both
`body` and `text`, ...) raises ValueError or TypeError at the line that made it, saying what is valid.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, Literal, Protocol

from safe_bedrock._policy import iam_pattern
from safe_bedrock._service import operation_specs, service_model, stream_exceptions, stream_operations
from safe_bedrock.testing import _messages as _catalog

if TYPE_CHECKING:
    from types import FrameType

    from safe_bedrock.testing._wire import FakeRequest

__all__ = [
    "ANY",
    "NOT_SET",
    "Script",
    "Scripted",
    "ScriptingAPI",
]


class _Any:
    """Equal to everything: use inside `expected=` to ignore a value (like botocore.stub.ANY)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return "ANY"


ANY: Final = _Any()


class _NotSet:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_SET"


NOT_SET: Final = _NotSet()

Kind = Literal["body", "text", "stream", "error", "drop"]
Ending = Literal["complete", "exception", "truncate", "drop"]


@dataclass(frozen=True, slots=True)
class Scripted:
    """One scripted answer. Built by the ScriptingAPI methods; the core turns it into a Reply."""

    kind: Kind
    origin: str  # "add_response(text=...) at tests/test_app.py:12", for messages
    model: str | None = None  # IAM-style wildcard on the model id (or its ARN)
    operation: str | None = None  # botocore operation name
    expected: object = NOT_SET  # compared to the parsed request body
    body: object = None  # kind body: dict/list (JSON) or bytes/str (sent as is)
    text: str | None = None
    pieces: tuple[str, ...] | None = None
    events: tuple[object, ...] | None = None  # raw provider events for a stream
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int = 200
    delay: float = 0.0  # seconds before the first byte
    event_delay: float = 0.0  # seconds between stream events
    # errors
    code: str | None = None
    message: str | None = None
    variant: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    # stream endings
    ending: Ending = "complete"
    after: int | None = None  # events sent before the ending
    mid_frame: bool = False  # truncate/drop in the middle of the next frame
    handler: Callable[[FakeRequest], object] | None = None
    failure: str | None = None  # set when `expected` did not match

    def fits(self, request: FakeRequest) -> bool:
        if self.operation is not None and self.operation != request.operation:
            return False
        if self.model is not None and not _model_matches(self.model, request):
            return False
        operation = request.operation
        if self.kind == "body":
            return operation not in stream_operations()
        if self.kind == "stream":
            return operation in stream_operations()
        if self.kind == "text":
            return operation in text_operations()
        return True

    def describe(self) -> str:
        where = []
        if self.operation:
            where.append(f"operation {self.operation}")
        if self.model:
            where.append(f"model {self.model!r}")
        return self.origin + (f" (for {', '.join(where)})" if where else "")


def text_operations() -> frozenset[str]:
    # The operations that answer with model text: InvokeModel, Converse and their streaming twins.
    return frozenset({"InvokeModel", "Converse"}) | stream_operations()


_wildcard = iam_pattern  # IAM wildcard semantics (the package's one translation), anchored at both ends


def _model_matches(pattern: str, request: FakeRequest) -> bool:
    model_id = request.model_id or ""
    if _wildcard(pattern).match(model_id):
        return True
    # A pattern written for the bare id also matches the id inside an ARN or a profile id (us.<id>).
    tail = model_id.rsplit("/", 1)[-1]
    return bool(_wildcard(pattern).match(tail)) or bool(_wildcard("*." + pattern).match(tail))


def _caller() -> str:
    # The first frame outside this package is the test line that scripted the answer.
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("safe_bedrock.testing"):
        frame = frame.f_back
    if frame is None:  # pragma: no cover - always called from somewhere
        return "?"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


class Script:
    """The queue and the routes. Thread-safe: requests may come from several server threads at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Scripted] = []
        self._routes: list[Scripted] = []

    def queue(self, entry: Scripted, *, times: int = 1) -> None:
        with self._lock:
            self._queue.extend([entry] * times)

    def add_route(self, entry: Scripted) -> None:
        with self._lock:
            self._routes.append(entry)

    def pending(self) -> tuple[Scripted, ...]:
        with self._lock:
            return tuple(self._queue)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._routes.clear()

    def take(self, request: FakeRequest) -> Scripted | None:
        """The entry that answers this request (queued ones are used up), or None for the default answer."""
        with self._lock:
            if not self._queue and not self._routes:
                return None
            found: Scripted | None = None
            for i, entry in enumerate(self._queue):
                if entry.fits(request):
                    found = self._queue.pop(i)
                    break
            else:
                for entry in self._routes:
                    if entry.fits(request):
                        found = entry
                        break
        if found is None or found.expected is NOT_SET:
            return found
        if found.expected != request.json:
            return replace(
                found,
                failure=(
                    f"the request did not match what {found.origin} expected.\n"
                    f"  expected body: {found.expected!r}\n  actual body:   {request.json!r}\n"
                    "Fix the code under test, or the expected= argument (use ANY for values that vary)."
                ),
            )
        return found


def _operation(operation: str | None) -> str | None:
    """The botocore name of an operation given as InvokeModel or invoke_model; ValueError if none."""
    if operation is None:
        return None
    specs = operation_specs(service_model()).values()
    for spec in specs:
        if operation in {spec.name, spec.method}:
            return spec.name
    valid = ", ".join(sorted(spec.name for spec in specs))
    raise ValueError(f"operation={operation!r} is not a bedrock-runtime operation; valid: {valid}")


def _non_negative(name: str, value: float | None) -> None:
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")


def _times(times: int) -> int:
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ValueError(f"times must be an int >= 1, got {times!r}")
    return times


def _model(model: str | None) -> str | None:
    if model is not None and (not isinstance(model, str) or not model):
        raise TypeError(f"model must be a non-empty model id pattern like 'anthropic.*', got {model!r}")
    return model


def _pieces(chunks: Sequence[str] | None) -> tuple[str, ...] | None:
    if chunks is None:
        return None
    if isinstance(chunks, str) or not all(isinstance(c, str) for c in chunks):
        raise TypeError("chunks must be a list of strings, the text pieces the stream sends one by one")
    return tuple(chunks)


def _events(events: Iterable[object] | None) -> tuple[object, ...] | None:
    if events is None:
        return None
    if isinstance(events, (str, bytes, Mapping)):
        raise TypeError(
            "events must be a list: for invoke_model_with_response_stream, the chunk dicts (or bytes) the"
            " model sends; for converse_stream, single-key dicts like {'contentBlockDelta': {...}}"
        )
    out = tuple(events)
    for event in out:
        if not isinstance(event, (Mapping, bytes)):
            raise TypeError(f"each stream event must be a dict or bytes, got {event!r}")
    return out


def _one_of(**given: object) -> None:
    named = [name for name, value in given.items() if value is not None]
    if len(named) > 1:
        raise TypeError(f"give at most one of {', '.join(given)}; got {', '.join(named)}")


def _stream_operation(method: str, operation: str | None) -> str | None:
    """`_operation`, and ValueError for an operation that does not stream."""
    op = _operation(operation)
    if op is not None and op not in stream_operations():
        valid = ", ".join(sorted(stream_operations()))
        raise ValueError(
            f"{method}() scripts a stream, but {op} does not stream; streaming operations: {valid}"
        )
    return op


def _check_after(after: int | None) -> None:
    if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 0):
        raise ValueError(f"after must be a number of events >= 0, got {after!r}")


def _error_fields(code: str, message: str | None, variant: str | None) -> tuple[str, str | None]:
    row = _catalog.find(code, variant)
    if message is not None and not isinstance(message, str):
        raise TypeError(f"message must be a string, got {message!r}")
    return row.code, row.variant if variant is not None else None


class _Core(Protocol):
    """What the scripting methods use of the fake's core (`_core.FakeBedrockCore`, which imports this)."""

    script: Script
    lock: threading.Lock
    requests: list[FakeRequest]

    def failures(self) -> list[str]: ...
    def set_policy(self, policy: object | None, *, principal: str = ...) -> None: ...
    def reset(self) -> None: ...


class ScriptingAPI:
    """The scripting methods shared by FakeBedrock and FakeBedrockServer. Subclasses set `self._core`."""

    _core: _Core

    # --- answers ---------------------------------------------------------------------------------------

    def add_response(
        self,
        body: object = None,
        *,
        text: str | None = None,
        model: str | None = None,
        operation: str | None = None,
        expected: object = NOT_SET,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue one answer for a non-streaming call.

        `body`: the JSON (dict) or raw bytes the call returns: the InvokeModel body, the Converse output, ...
        `text`: instead, answer with this text in the shape of the model's family (works for streams too).
        `model`: only for model ids matching this IAM-style wildcard ("anthropic.*"); `operation`: only for
        this operation ("invoke_model" or "InvokeModel"); `expected`: the parsed request body the call must
        send (ANY matches any value); `delay`: seconds before answering; `times`: queue it this many times.
        """
        _one_of(body=body, text=text)
        if body is None and text is None:
            raise TypeError("add_response() needs body=... (the response JSON) or text=... (the answer text)")
        if body is not None and not isinstance(body, (Mapping, list, bytes, str)):
            raise TypeError(f"body must be a dict, list, bytes or str, got {type(body).__name__}")
        op = _operation(operation)
        if body is not None and op in stream_operations():
            raise ValueError(f"{op} streams: use add_stream(...) for it, or add_response(text=...)")
        _non_negative("delay", delay)
        entry = Scripted(
            kind="text" if text is not None else "body",
            origin=f"add_response() at {_caller()}",
            model=_model(model),
            operation=op,
            expected=expected,
            body=body,
            text=text,
            headers=dict(headers or {}),
            delay=delay,
        )
        self._core.script.queue(entry, times=_times(times))

    def add_stream(
        self,
        events: Iterable[object] | None = None,
        *,
        text: str | None = None,
        chunks: Sequence[str] | None = None,
        model: str | None = None,
        operation: str | None = None,
        expected: object = NOT_SET,
        delay: float = 0.0,
        first_byte_delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue one streamed answer (invoke_model_with_response_stream or converse_stream).

        Give `text` (split into words), `chunks` (the exact text pieces, one per delta event) or `events`
        (raw: chunk dicts for invoke_model_with_response_stream, {"eventName": {...}} for converse_stream).
        Without any of them the default answer streams. `delay` is slept between events, `first_byte_delay`
        before the response starts.
        """
        _one_of(events=events, text=text, chunks=chunks)
        op = _stream_operation("add_stream", operation)
        _non_negative("delay", delay)
        _non_negative("first_byte_delay", first_byte_delay)
        entry = Scripted(
            kind="stream",
            origin=f"add_stream() at {_caller()}",
            model=_model(model),
            operation=op,
            expected=expected,
            text=text,
            pieces=_pieces(chunks),
            events=_events(events),
            delay=first_byte_delay,
            event_delay=delay,
        )
        self._core.script.queue(entry, times=_times(times))

    def add_stream_error(
        self,
        code: str,
        message: str | None = None,
        *,
        after: int = 0,
        variant: str | None = None,
        events: Iterable[object] | None = None,
        text: str | None = None,
        chunks: Sequence[str] | None = None,
        model: str | None = None,
        operation: str | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue a stream that sends `after` events and then a mid-stream exception frame.

        `code` is a mid-stream error: "ThrottlingException" or its member name "throttlingException",
        "ModelStreamErrorException", "InternalServerException", "ValidationException",
        "ServiceUnavailableException", "ModelTimeoutException". botocore raises EventStreamError with the
        lowerCamel code while the caller iterates.
        """
        member = _catalog.stream_exception_name(code)
        code_name = stream_exceptions()[member]
        op = _operation(operation)
        if op is not None and op in stream_operations() and member not in stream_exceptions(op):
            valid = ", ".join(stream_exceptions(op))
            raise ValueError(f"{op} cannot send {member} mid-stream; its mid-stream errors are: {valid}")
        _error_fields(code_name, message, variant)
        _one_of(events=events, text=text, chunks=chunks)
        op = _stream_operation("add_stream_error", operation)
        _non_negative("delay", delay)
        _check_after(after)
        entry = Scripted(
            kind="stream",
            origin=f"add_stream_error() at {_caller()}",
            model=_model(model),
            operation=op,
            text=text,
            pieces=_pieces(chunks),
            events=_events(events),
            event_delay=delay,
            ending="exception",
            after=after,
            code=code_name,
            message=message,
            variant=variant,
        )
        self._core.script.queue(entry, times=_times(times))

    def add_truncated_stream(
        self,
        *,
        after: int = 1,
        mid_frame: bool = False,
        text: str | None = None,
        model: str | None = None,
        operation: str | None = None,
        times: int = 1,
    ) -> None:
        """Queue a stream that ends cleanly after `after` events, without its final events (no message stop).

        With `mid_frame=True` it ends in the middle of the next frame instead.
        """
        op = _stream_operation("add_truncated_stream", operation)
        _check_after(after)
        entry = Scripted(
            kind="stream",
            origin=f"add_truncated_stream() at {_caller()}",
            model=_model(model),
            operation=op,
            text=text,
            ending="truncate",
            after=after,
            mid_frame=mid_frame,
        )
        self._core.script.queue(entry, times=_times(times))

    def add_connection_drop(
        self,
        *,
        after: int | None = None,
        mid_frame: bool = False,
        model: str | None = None,
        operation: str | None = None,
        times: int = 1,
    ) -> None:
        """Queue a dropped connection: before any response byte (`after=None`), or, for a stream, after
        `after` events. In-process this raises what botocore/urllib3 raise on a real drop:
        ConnectionClosedError before the response (which botocore retries), urllib3's ProtocolError while
        iterating a stream.
        """
        # Before the response any operation can be dropped; after some events, only a stream.
        if after is None:
            op = _operation(operation)
        else:
            op = _stream_operation("add_connection_drop", operation)
            _check_after(after)
        entry = Scripted(
            kind="drop" if after is None else "stream",
            origin=f"add_connection_drop() at {_caller()}",
            model=_model(model),
            operation=op,
            ending="drop",
            after=after,
            mid_frame=mid_frame,
        )
        self._core.script.queue(entry, times=_times(times))

    def add_client_error(
        self,
        code: str,
        message: str | None = None,
        *,
        variant: str | None = None,
        http_status: int | None = None,
        model: str | None = None,
        operation: str | None = None,
        retry_after: float | None = None,
        fields: Mapping[str, str] | None = None,
        expected: object = NOT_SET,
        times: int = 1,
    ) -> None:
        """Queue an error answer as Bedrock sends it (status from the service model, x-amzn-ErrorType header).

        `code`: "AccessDeniedException", "ThrottlingException", ... (the service model's errors plus the AWS
        front door's UnrecognizedClientException, ExpiredTokenException, InvalidSignatureException).
        `message`: the exact text; else the catalog's text for `variant` (else the code's most common one),
        filled in for the request (principal, action, model ARN, ...; override them with `fields`).
        `retry_after`: adds a Retry-After header. `times`: e.g. 2 throttles, then the next answer.
        """
        if not isinstance(code, str):
            raise TypeError(f"code must be an error code string like 'ThrottlingException', got {code!r}")
        code, _ = _error_fields(code, message, variant)
        if http_status is not None and (not isinstance(http_status, int) or not 400 <= http_status <= 599):
            raise ValueError(f"http_status must be an int from 400 to 599, got {http_status!r}")
        _non_negative("retry_after", retry_after)
        entry = Scripted(
            kind="error",
            origin=f"add_client_error({code!r}) at {_caller()}",
            model=_model(model),
            operation=_operation(operation),
            expected=expected,
            code=code,
            message=message,
            variant=variant,
            status=http_status or _catalog.http_status(code),
            retry_after=retry_after,
            fields=dict(fields or {}),
        )
        self._core.script.queue(entry, times=_times(times))

    def route(
        self,
        model_pattern: str,
        *,
        text: str | None = None,
        body: object = None,
        error: str | None = None,
        message: str | None = None,
        variant: str | None = None,
        handler: Callable[[FakeRequest], object] | None = None,
        operation: str | None = None,
    ) -> None:
        """Answer every call to models matching `model_pattern` (IAM-style wildcard) alike, until reset.

        One of: `text` (answer text in the family's shape, streams included), `body` (non-stream JSON),
        `error` (an error code, with optional `message`/`variant`), or `handler(request) -> str | dict`
        (a str is answer text, a dict the response body).
        """
        _one_of(text=text, body=body, error=error, handler=handler)
        _model(model_pattern)
        op = _operation(operation)
        # Every kind of route shares where it was written and which calls it answers.
        entry = functools.partial(
            Scripted, origin=f"route({model_pattern!r}) at {_caller()}", model=model_pattern, operation=op
        )
        scripted: Scripted
        if error is not None:
            code, _ = _error_fields(error, message, variant)
            status = _catalog.http_status(code)
            scripted = entry(kind="error", code=code, message=message, variant=variant, status=status)
        elif body is not None:
            scripted = entry(kind="body", body=body)
        elif handler is not None:
            if not callable(handler):
                raise TypeError("handler must be a callable taking the FakeRequest")
            scripted = entry(kind="text", handler=handler)
        elif text is not None:
            scripted = entry(kind="text", text=text)
        else:
            raise TypeError("route() needs one of text=, body=, error= or handler=")
        self._core.script.add_route(scripted)

    # --- inspection ------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[FakeRequest]:
        """Every request received, oldest first (a copy)."""
        with self._core.lock:
            return list(self._core.requests)

    def pending_responses(self) -> tuple[str, ...]:
        """Descriptions of the queued answers not used yet."""
        return tuple(entry.describe() for entry in self._core.script.pending())

    def assert_no_pending_responses(self) -> None:
        """AssertionError if a queued answer was never used (the code under test made fewer calls)."""
        pending = self.pending_responses()
        failures = self._core.failures()
        problems = []
        if pending:
            seen = ", ".join(f"{r.operation}({r.model_id})" for r in self.requests) or "none"
            listed = "\n".join(f"  - {p}" for p in pending)
            problems.append(
                f"{len(pending)} scripted answer(s) were never used:\n{listed}\n"
                f"Calls received: {seen}.\nEither the code under test did not make the calls you scripted"
                " (check the model ids and operations above), or remove the extra add_...() lines."
            )
        problems.extend(failures)
        if problems:
            raise AssertionError("\n".join(problems))

    def set_policy(self, policy: object | None, *, principal: str | None = None) -> None:
        """Enforce an IAM identity policy (JSON text, dict or PolicyDocument); None turns enforcement off."""
        if principal is None:
            self._core.set_policy(policy)
        else:
            self._core.set_policy(policy, principal=principal)

    def reset(self) -> None:
        """Forget queued answers, routes, recorded requests and the policy."""
        self._core.reset()
