"""The stream wrapper: boto3's iteration shape, typed mid-stream errors, measurement, release on exit.

The sync and the async face differ only in how they read the next event; the rest is `_StreamBase`.
"""

from __future__ import annotations

import contextlib
import time
import types
from typing import TYPE_CHECKING, Any

from safe_bedrock._measure import FrameTracker, request_id_of
from safe_bedrock._translate import StreamEnded

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from safe_bedrock._guard import Call, Guard

_DONE = object()


class _Watched:
    """botocore's raw HTTP response, its bytes followed frame by frame: botocore ends an event stream
    quietly when the body ends, even inside a frame; the tracker tells."""

    def __init__(self, raw: Any, tracker: FrameTracker) -> None:
        self._raw = raw
        self.tracker = tracker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        feed = self.tracker.feed
        for chunk in self._raw.stream(*args, **kwargs):
            feed(chunk)
            yield chunk


class _AioContent:
    """aiohttp's `response.content`, its `iter_chunks()` fed to the tracker (a plain async iterator, not an
    async generator: nothing is left for the event loop to finalise)."""

    def __init__(self, content: Any, tracker: FrameTracker) -> None:
        self._content = content
        self._tracker = tracker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._content, name)

    def iter_chunks(self) -> _AioContent:
        self._chunks = aiter(self._content.iter_chunks())
        return self

    def __aiter__(self) -> _AioContent:
        return self

    async def __anext__(self) -> Any:
        item = await self._chunks.__anext__()
        self._tracker.feed(item[0])
        return item


class _AioWatched(_Watched):
    """The aiohttp response of aiobotocore's AioEventStream, read through `content.iter_chunks()`."""

    @property
    def content(self) -> _AioContent:
        return _AioContent(self._raw.content, self.tracker)


def _watch(stream: Any, *, aio: bool) -> Any:
    """`stream`, its frames followed from before its first read (botocore opens the body lazily)."""
    raw = getattr(stream, "_raw_stream", None)
    if not isinstance(raw, _Watched) and hasattr(raw, "content" if aio else "stream"):
        stream._raw_stream = (_AioWatched if aio else _Watched)(raw, FrameTracker())
    return stream


def _stream_request_id(stream: Any) -> str | None:
    headers = getattr(getattr(stream, "_raw_stream", None), "headers", None)
    try:
        found = headers.get("x-amzn-requestid") if headers is not None else None
    except Exception:  # noqa: BLE001 - a transport's headers object we do not know: no id rather than a crash
        return None
    return found if isinstance(found, str) and found else None


def _ended(call: Call, stream: Any) -> StreamEnded | None:
    """Why a stream that reached its end is not whole (None: its closing events came, or its shape is one
    this library does not know, so it is never called cut short)."""
    closed = call.meter.closed()
    if closed is True:
        return None
    raw = getattr(stream, "_raw_stream", None)
    if isinstance(raw, _Watched) and raw.tracker.inside_frame:
        return StreamEnded(inside_frame=True, leftover=raw.tracker.partial)
    return StreamEnded(inside_frame=False) if closed is False else None


def _release(stream: Any) -> None:
    """Close the HTTP response and give its pool slot back now, not at the next garbage collection.

    botocore's EventStream keeps its reader generator in a reference cycle with itself. While suspended,
    that generator holds urllib3's response, which hands its connection back to the pool only when the
    generator is finalised: until the cyclic collector runs, the pool is one slot short (it opens extra
    connections) and urllib3 logs "Connection pool is full" when the late slots come back. aiobotocore's
    reader is an async generator, finalised by `aclose()` instead.
    """
    stream.close()
    reader = getattr(stream, "_event_generator", None)
    if isinstance(reader, types.GeneratorType):
        reader.close()


def _first_failed(guard: Guard, call: Call, stream: Any, exc: BaseException) -> BaseException:
    # A failed first read abandons this attempt: close it so the retry does not hold two connections.
    # Nothing reached the caller yet, so the typed error (a TransientError) is retried like the original.
    _release(stream)
    return guard.translate(call, exc, mid_stream=True, events=0, request_id=_stream_request_id(stream))


def wrap_stream(guard: Guard, call: Call, response: dict[str, Any], member: str) -> dict[str, Any]:
    """`response` with its event stream wrapped, once the first event is read inside the retried attempt
    (so a failure before anything reached the caller retries; the stream is closed when that read fails)."""
    stream = _watch(response[member], aio=False)
    iterator = iter(stream)
    try:
        first: object = next(iterator, _DONE)
    except Exception as exc:
        raise _first_failed(guard, call, stream, exc) from exc
    response[member] = SafeEventStream(guard, call, response, member, iterator, first=first)
    return response


async def awrap_stream(guard: Guard, call: Call, response: dict[str, Any], member: str) -> dict[str, Any]:
    """`wrap_stream` for aiobotocore; cancellation while awaiting the first event closes the stream too."""
    stream = _watch(response[member], aio=True)
    iterator = aiter(stream)
    try:
        first: object = await anext(iterator, _DONE)
    except BaseException as exc:
        error = _first_failed(guard, call, stream, exc)
        if error is exc:
            raise
        raise error from exc
    response[member] = AsyncSafeEventStream(guard, call, response, member, iterator, first=first)
    return response


class _StreamBase:
    """What both faces share: the pending first event, measuring, translating, closing, recording once."""

    __slots__ = ("_call", "_done", "_guard", "_iterator", "_pending", "_request_id", "_stream")

    def __init__(
        self, guard: Guard, call: Call, response: dict[str, Any], member: str, iterator: Any, *, first: object
    ) -> None:
        # `iterator`: the face's (async) iterator over the stream; `first`: its first event (or _DONE), read
        # inside the retried attempt.
        stream = response[member]
        # A stream that ended before its first event is an error (retried: nothing reached the caller).
        if first is _DONE and (ended := _ended(call, stream)) is not None:
            raise _first_failed(guard, call, stream, ended)
        call.first_event_at = time.monotonic()
        self._guard = guard
        self._call = call
        self._stream = stream
        self._iterator = iterator
        self._pending = first
        self._request_id = request_id_of(response)
        self._done = False

    @property
    def complete(self) -> bool:
        """Whether the stream's closing events arrived (so far): its answer is whole."""
        return self._call.meter.complete

    def _accept(self, event: object) -> dict[str, Any] | None:
        """The event for the caller, or None at the stream's end (then recorded); a stream that ended
        without its closing events raises its `StreamIncompleteError` instead."""
        if event is _DONE:
            ended = _ended(self._call, self._stream)
            if ended is not None:
                raise self._failed(ended)
            self._finish(error=None, closed_early=False)
            return None
        assert isinstance(event, dict)  # noqa: S101 - botocore yields dicts; narrows the type for mypy
        self._call.meter.observe(event)
        return event

    def _failed(self, exc: Exception) -> BaseException:
        """The typed error for a failure while reading; the stream is closed and the call recorded."""
        error = self._guard.translate(
            self._call,
            exc,
            mid_stream=True,
            events=self._call.meter.events,
            request_id=self._request_id,  # a stream's exception frame carries none of its own
        )
        self._finish(error=error, closed_early=False)
        return error

    def close(self) -> None:
        """Stop reading and release the connection; harmless when the stream already ended."""
        self._finish(error=None, closed_early=True)

    def _finish(self, *, error: BaseException | None, closed_early: bool) -> None:
        if self._done:
            return
        self._done = True
        self._pending = None
        # botocore's and aiobotocore's (aiohttp) close are both synchronous: drop the HTTP response now.
        _release(self._stream)
        self._guard.record_stream_end(
            self._call, request_id=self._request_id, error=error, closed_early=closed_early
        )

    def __del__(self) -> None:
        # An abandoned stream must not pin a pooled connection until the interpreter exits.
        if not getattr(self, "_done", True):
            with contextlib.suppress(Exception):  # nothing may escape a finalizer
                self._finish(error=None, closed_early=True)


class SafeEventStream(_StreamBase):
    """Iterates the same event dicts as botocore's EventStream; also a context manager with `close()`.

    Leaving early (break, an exception in the consumer, `close()`, garbage collection) closes the HTTP
    response at once, and the call's log event says `closed_early`.
    """

    __slots__ = ()
    _iterator: Iterator[dict[str, Any]]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # A generator, as botocore's EventStream.__iter__ is: far cheaper per event than a __next__ method,
        # and this is the per-event hot path.
        if self._done:
            return
        observe = self._call.meter.observe
        first, self._pending = self._pending, None
        if first is not None:
            accepted = self._accept(first)
            if accepted is None:
                return
            yield accepted
        try:
            for event in self._iterator:
                observe(event)
                yield event
        except Exception as exc:
            raise self._failed(exc) from exc
        self._accept(_DONE)

    def __enter__(self) -> SafeEventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get_initial_response(self) -> Any:
        return self._stream.get_initial_response()


class AsyncSafeEventStream(_StreamBase):
    """The async face: `async for` over the same event dicts as aiobotocore's AioEventStream.

    Also an async context manager, with `aclose()` (and a synchronous `close()`: releasing the connection
    needs no I/O). Leaving early (break, an exception, cancellation of the consuming task, `aclose()`,
    garbage collection) closes the HTTP response at once, and the call's log event says `closed_early`.
    """

    __slots__ = ()
    _iterator: AsyncIterator[dict[str, Any]]

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._done:
            raise StopAsyncIteration
        event, self._pending = self._pending, None
        if event is None:
            try:
                event = await anext(self._iterator, _DONE)
            except Exception as exc:
                raise self._failed(exc) from exc
            except BaseException:
                # Task cancellation (or KeyboardInterrupt) while waiting for the next event: the consumer is
                # gone, so release the connection now rather than when the stream object is collected.
                self.close()
                raise
        accepted = self._accept(event)
        if accepted is None:
            raise StopAsyncIteration
        return accepted

    async def aclose(self) -> None:
        """Stop reading and release the connection; harmless when the stream already ended."""
        self.close()
        # Finalise aiobotocore's event generator here rather than from the garbage collector's hook.
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> AsyncSafeEventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def get_initial_response(self) -> Any:
        return await self._stream.get_initial_response()
