"""The stream wrapper: boto3's iteration shape, typed mid-stream errors, measurement, release on exit."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

    from botocore.eventstream import EventStream

    from safe_bedrock._guard import Call, Guard

_DONE = object()


def first_event(
    guard: Guard, call: Call, stream: EventStream[Any]
) -> tuple[Iterator[dict[str, Any]], object]:
    """Read the first event inside the retried attempt, so a failure before it reaches the caller retries.

    Returns the live iterator and the first event (or `_DONE` for an empty stream). The stream is closed
    when the first read fails, so an abandoned attempt holds no connection.
    """
    iterator = iter(stream)
    try:
        event: object = next(iterator, _DONE)
    except Exception as exc:
        stream.close()
        raise guard.translate(call, exc, mid_stream=True, events=0) from exc
    call.first_event_at = time.monotonic()
    return iterator, event


class SafeEventStream:
    """Iterates the same event dicts as botocore's EventStream; also a context manager with `close()`.

    Leaving early (break, an exception in the consumer, `close()`, garbage collection) closes the HTTP
    response at once, and the call's log event says `closed_early`.
    """

    __slots__ = ("_call", "_done", "_guard", "_iterator", "_pending", "_request_id", "_stream")

    def __init__(
        self,
        *,
        guard: Guard,
        call: Call,
        stream: EventStream[Any],
        iterator: Iterator[dict[str, Any]],
        first: object,
        request_id: str | None,
    ) -> None:
        self._guard = guard
        self._call = call
        self._stream = stream
        self._iterator = iterator
        self._pending = first
        self._request_id = request_id
        self._done = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._done:
            raise StopIteration
        event = self._pending
        if event is not None:
            self._pending = None
        else:
            try:
                event = next(self._iterator, _DONE)
            except Exception as exc:
                error = self._guard.translate(
                    self._call, exc, mid_stream=True, events=self._call.meter.events
                )
                self._finish(error=error, closed_early=False)
                raise error from exc
        if event is _DONE:
            self._finish(error=None, closed_early=False)
            raise StopIteration
        assert isinstance(event, dict)  # noqa: S101 - botocore yields dicts; narrows the type for mypy
        self._call.meter.observe(event)
        return event

    def close(self) -> None:
        """Stop reading and release the connection; harmless when the stream already ended."""
        self._finish(error=None, closed_early=True)

    def _finish(self, *, error: BaseException | None, closed_early: bool) -> None:
        if self._done:
            return
        self._done = True
        self._stream.close()
        self._guard.record_stream_end(
            self._call, request_id=self._request_id, error=error, closed_early=closed_early
        )

    def __enter__(self) -> SafeEventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # An abandoned stream must not pin a pooled connection until the interpreter exits.
        if not getattr(self, "_done", True):
            with contextlib.suppress(Exception):  # nothing may escape a finalizer
                self._finish(error=None, closed_early=True)

    def get_initial_response(self) -> Any:
        return self._stream.get_initial_response()
