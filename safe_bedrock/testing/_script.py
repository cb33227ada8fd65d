"""Scripting the fake, shared by both transports: queue answers, errors and stream faults; route; assert.

Modelled on botocore's Stubber (`add_response`, `add_client_error`, `ANY`, `assert_no_pending_responses`). A
request is answered by the oldest queued entry whose `model` pattern and `operation` fit (used once), else the
first route that fits (it stays), else the default answer of the model's family (`_responders`). A scripting
mistake raises ValueError or TypeError at the line that made it, saying what is valid.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Literal

from safe_bedrock._policy import iam_pattern
from safe_bedrock._service import operation_specs, service_model, stream_exceptions, stream_operations
from safe_bedrock.testing import _messages, _models

if TYPE_CHECKING:
    from types import FrameType

    from safe_bedrock.testing._core import FakeBedrockCore
    from safe_bedrock.testing._wire import FakeRequest


class _Any:
    """Equal to everything: use inside `expected=` to ignore a value (like botocore.stub.ANY)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return "ANY"


ANY: Final = _Any()
"""Equal to every value: `expected={"messages": ANY}` checks that the key is there. Added in version 0.1.0."""


Kind = Literal["body", "text", "stream", "error", "drop"]
Ending = Literal["complete", "exception", "truncate", "drop"]


@dataclass(frozen=True, slots=True)
class Scripted:
    """One scripted answer. Built by the ScriptingAPI methods; the core turns it into a Reply."""

    kind: Kind
    origin: str  # "add_response() at tests/test_app.py:12", for messages
    model: str | None = None  # IAM-style wildcard on the model id (or its ARN)
    operation: str | None = None  # botocore operation name
    expected: object = ANY  # compared to the parsed request body
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
        operation = request.operation
        if self.operation is not None and self.operation != operation:
            return False
        if self.model is not None and not _model_matches(self.model, request):
            return False
        streams = operation in stream_operations()
        if self.kind == "body":
            return not streams
        if self.kind == "stream":
            return streams
        if self.kind == "text":  # the operations that answer with model text
            return streams or operation in ("InvokeModel", "Converse")
        return True

    def describe(self) -> str:
        where = [f"operation {self.operation}"] if self.operation else []
        if self.model:
            where.append(f"model {self.model!r}")
        return self.origin + (f" (for {', '.join(where)})" if where else "")


def _model_matches(pattern: str, request: FakeRequest) -> bool:
    model_id = request.model_id or ""
    if iam_pattern(pattern).match(model_id):
        return True
    # A pattern written for the bare id also matches the id inside an ARN or a profile id (us.<id>).
    tail = model_id.rsplit("/", 1)[-1]
    return bool(iam_pattern(pattern).match(tail)) or bool(iam_pattern("*." + pattern).match(tail))


def _caller() -> str:
    # The first frame outside this package is the test line that scripted the answer.
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("safe_bedrock.testing"):
        frame = frame.f_back
    return "?" if frame is None else f"{frame.f_code.co_filename}:{frame.f_lineno}"


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
            index = next((i for i, entry in enumerate(self._queue) if entry.fits(request)), None)
            if index is not None:
                found: Scripted | None = self._queue.pop(index)
            else:
                found = next((entry for entry in self._routes if entry.fits(request)), None)
        if found is None or found.expected == request.json:  # ANY, the default, equals every body
            return found
        return replace(
            found,
            failure=(
                f"the request did not match what {found.origin} expected.\n"
                f"  expected body: {found.expected!r}\n  actual body:   {request.json!r}\n"
                "Fix the code under test, or the expected= argument (use ANY for values that vary)."
            ),
        )


# --- argument checks: each raises at the scripting line, saying what is valid ------------------------------


def _operation(operation: str | None, *, streaming: str | None = None) -> str | None:
    """InvokeModel for InvokeModel or invoke_model; `streaming`: the method's name when it must stream."""
    if operation is None:
        return None
    specs = operation_specs(service_model()).values()
    name = next((spec.name for spec in specs if operation in {spec.name, spec.method}), None)
    if name is None:
        valid = ", ".join(sorted(spec.name for spec in specs))
        raise ValueError(f"operation={operation!r} is not a bedrock-runtime operation; valid: {valid}")
    if streaming is not None and name not in stream_operations():
        valid = ", ".join(sorted(stream_operations()))
        raise ValueError(
            f"{streaming}() scripts a stream, but {name} does not stream; streaming operations: {valid}"
        )
    return name


def _seconds(name: str, value: float | None) -> None:
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
        raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")


def _count(name: str, value: int, minimum: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be {what} >= {minimum}, got {value!r}")
    return value


def _model(model: str | None) -> str | None:
    if model is not None and (not isinstance(model, str) or not model):
        raise TypeError(f"model must be a non-empty model id pattern like 'anthropic.*', got {model!r}")
    return model


def _one_of(**given: object) -> None:
    named = [name for name, value in given.items() if value is not None]
    if len(named) > 1:
        raise TypeError(f"give at most one of {', '.join(given)}; got {', '.join(named)}")


def _content(
    events: Iterable[object] | None, text: str | None, chunks: Sequence[str] | None
) -> dict[str, Any]:
    """A scripted stream's content: raw `events`, `text` or `chunks`, the Scripted fields."""
    _one_of(events=events, text=text, chunks=chunks)
    if chunks is not None and (isinstance(chunks, str) or not all(isinstance(c, str) for c in chunks)):
        raise TypeError("chunks must be a list of strings, the text pieces the stream sends one by one")
    if isinstance(events, (str, bytes, Mapping)):
        raise TypeError(
            "events must be a list: for invoke_model_with_response_stream, the chunk dicts (or bytes) the"
            " model sends; for converse_stream, single-key dicts like {'contentBlockDelta': {...}}"
        )
    listed = None if events is None else tuple(events)
    for event in listed or ():
        if not isinstance(event, (Mapping, bytes)):
            raise TypeError(f"each stream event must be a dict or bytes, got {event!r}")
    return {"text": text, "pieces": None if chunks is None else tuple(chunks), "events": listed}


def _error_code(code: str, message: str | None, variant: str | None) -> str:
    """The catalog's spelling of an error code (ValueError for an unknown code or variant)."""
    if message is not None and not isinstance(message, str):
        raise TypeError(f"message must be a string, got {message!r}")
    return _messages.find(code, variant).code


class ScriptingAPI:
    """The scripting methods shared by FakeBedrock and FakeBedrockServer. Subclasses set `self._core`.
    Added in version 0.1.0."""

    _core: FakeBedrockCore

    def _queue(self, call: str, times: int, **fields: Any) -> None:
        entry = Scripted(origin=f"{call} at {_caller()}", **fields)
        self._core.script.queue(entry, times=_count("times", times, 1, "an int"))

    def add_model(
        self,
        model_id: str,
        *,
        family: str | None = None,
        regions: Iterable[str] = (),
        streaming: bool = True,
        lifecycle: str = "ACTIVE",
    ) -> None:
        """Serve a model the catalog does not know (or one it lists as retired), on demand, until the fake
        is closed (`reset()` keeps it). `family`: its InvokeModel body shape (``"anthropic"``, ``"llama"``,
        ...; default: guessed from the id); `regions`: where it is offered (default: everywhere);
        `lifecycle`: ``"ACTIVE"``, ``"LEGACY"`` or ``"END_OF_LIFE"`` (answered as retired)."""
        model = _models.added_model(
            model_id,
            family=family,
            regions=regions,
            streaming=streaming,
            lifecycle=lifecycle,  # type: ignore[arg-type]
        )
        with self._core.lock:
            self._core.models[model.id] = model

    def add_response(
        self,
        body: object = None,
        *,
        text: str | None = None,
        model: str | None = None,
        operation: str | None = None,
        expected: object = ANY,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue one answer: `body` (the JSON or bytes the call returns) or `text` (in the family's shape).

        Only for models matching `model` ("anthropic.*") and for `operation` ("invoke_model"); `expected`: the
        request body the call must send (ANY matches any value); `delay`: seconds before answering.
        """
        _one_of(body=body, text=text)
        if body is None and text is None:
            raise TypeError("add_response() needs body=... (the response JSON) or text=... (the answer text)")
        if body is not None and not isinstance(body, (Mapping, list, bytes, str)):
            raise TypeError(f"body must be a dict, list, bytes or str, got {type(body).__name__}")
        op = _operation(operation)
        if body is not None and op in stream_operations():
            raise ValueError(f"{op} streams: use add_stream(...) for it, or add_response(text=...)")
        _seconds("delay", delay)
        self._queue(
            "add_response()",
            times,
            kind="text" if text is not None else "body",
            model=_model(model),
            operation=op,
            expected=expected,
            body=body,
            text=text,
            headers=dict(headers or {}),
            delay=delay,
        )

    def add_stream(
        self,
        events: Iterable[object] | None = None,
        *,
        text: str | None = None,
        chunks: Sequence[str] | None = None,
        model: str | None = None,
        operation: str | None = None,
        expected: object = ANY,
        delay: float = 0.0,
        first_byte_delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue one streamed answer: `text` (split into words), `chunks` (one per delta event) or raw
        `events` (chunk dicts, or {"eventName": {...}} for converse_stream); `delay`: between events."""
        content = _content(events, text, chunks)
        op = _operation(operation, streaming="add_stream")
        _seconds("delay", delay)
        _seconds("first_byte_delay", first_byte_delay)
        self._queue(
            "add_stream()",
            times,
            kind="stream",
            model=_model(model),
            operation=op,
            expected=expected,
            **content,
            delay=first_byte_delay,
            event_delay=delay,
        )

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
        """Queue a stream that sends `after` events, then the mid-stream error `code` ("ThrottlingException"
        or "throttlingException", ...), which botocore raises as EventStreamError while one iterates."""
        member = _messages.stream_exception_name(code)
        op = _operation(operation, streaming="add_stream_error")
        if op is not None and member not in stream_exceptions(op):
            valid = ", ".join(stream_exceptions(op))
            raise ValueError(f"{op} cannot send {member} mid-stream; its mid-stream errors are: {valid}")
        code_name = _error_code(stream_exceptions()[member], message, variant)
        content = _content(events, text, chunks)
        _seconds("delay", delay)
        self._queue(
            "add_stream_error()",
            times,
            kind="stream",
            model=_model(model),
            operation=op,
            **content,
            event_delay=delay,
            ending="exception",
            after=_count("after", after, 0, "a number of events"),
            code=code_name,
            message=message,
            variant=variant,
        )

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
        """Queue a stream that ends cleanly after `after` events (or `mid_frame` of the next), unfinished."""
        self._queue(
            "add_truncated_stream()",
            times,
            kind="stream",
            model=_model(model),
            operation=_operation(operation, streaming="add_truncated_stream"),
            text=text,
            ending="truncate",
            after=_count("after", after, 0, "a number of events"),
            mid_frame=mid_frame,
        )

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
        `after` events; the client raises what it raises on a real drop (botocore retries the first)."""
        # Before the response any operation can be dropped; after some events, only a stream.
        streaming = None if after is None else "add_connection_drop"
        self._queue(
            "add_connection_drop()",
            times,
            kind="drop" if after is None else "stream",
            model=_model(model),
            operation=_operation(operation, streaming=streaming),
            ending="drop",
            after=None if after is None else _count("after", after, 0, "a number of events"),
            mid_frame=mid_frame,
        )

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
        expected: object = ANY,
        times: int = 1,
    ) -> None:
        """Queue an error answer as Bedrock sends it: `code` ("ThrottlingException", ...), and `message` or
        the catalog's text for `variant`, filled in for the request (override its fields with `fields`)."""
        if not isinstance(code, str):
            raise TypeError(f"code must be an error code string like 'ThrottlingException', got {code!r}")
        code = _error_code(code, message, variant)
        if http_status is not None and (not isinstance(http_status, int) or not 400 <= http_status <= 599):
            raise ValueError(f"http_status must be an int from 400 to 599, got {http_status!r}")
        _seconds("retry_after", retry_after)
        self._queue(
            f"add_client_error({code!r})",
            times,
            kind="error",
            model=_model(model),
            operation=_operation(operation),
            expected=expected,
            code=code,
            message=message,
            variant=variant,
            status=http_status or _messages.http_status(code),
            retry_after=retry_after,
            fields=dict(fields or {}),
        )

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
        """Answer every call to models matching `model_pattern` alike until reset, with one of `text`, `body`,
        `error` (a code) or `handler(request)` (returning the answer text or the response body)."""
        _one_of(text=text, body=body, error=error, handler=handler)
        if handler is not None and not callable(handler):
            raise TypeError("handler must be a callable taking the FakeRequest")
        fields: dict[str, Any]
        if error is not None:
            code = _error_code(error, message, variant)
            status = _messages.http_status(code)
            fields = {"kind": "error", "code": code, "message": message, "variant": variant, "status": status}
        elif body is not None:
            fields = {"kind": "body", "body": body}
        elif handler is not None or text is not None:
            fields = {"kind": "text", "handler": handler, "text": text}
        else:
            raise TypeError("route() needs one of text=, body=, error= or handler=")
        entry = Scripted(
            origin=f"route({model_pattern!r}) at {_caller()}",
            model=_model(model_pattern),
            operation=_operation(operation),
            **fields,
        )
        self._core.script.add_route(entry)

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
        problems = []
        pending = self.pending_responses()
        if pending:
            seen = ", ".join(f"{r.operation}({r.model_id})" for r in self.requests) or "none"
            listed = "\n".join(f"  - {p}" for p in pending)
            problems.append(
                f"{len(pending)} scripted answer(s) were never used:\n{listed}\n"
                f"Calls received: {seen}.\nEither the code under test did not make the calls you scripted"
                " (check the model ids and operations above), or remove the extra add_...() lines."
            )
        problems.extend(self._core.failures())
        if problems:
            raise AssertionError("\n".join(problems))

    def set_policy(self, policy: object | None, *, principal: str | None = None) -> None:
        """Enforce an IAM identity policy (JSON text, dict or PolicyDocument); None turns enforcement off."""
        self._core.set_policy(policy, principal=principal)

    def reset(self) -> None:
        """Forget queued answers, routes, recorded requests and the policy."""
        self._core.reset()
