"""FakeBedrock's answers for aiobotocore clients: the async-only pieces, loaded when one is attached.

aiobotocore awaits its HTTP session's `send`, and reads the `raw` of the response like aiohttp's
ClientResponse: `await raw.read()`, `raw.content.read(n)` / `at_eof()`, `raw.content.iter_chunks()`,
`raw.close()`. Everything else is FakeBedrock's.

The core is synchronous and sleeps through scripted delays (`threading.Event.wait`), so each blocking step
(answering a request, pulling a paced stream's next chunk) runs on a short-lived daemon thread while the event
loop goes on. Daemon threads rather than the loop's default executor: a task cancelled mid-delay leaves its
thread to finish the delay alone, without holding up the loop's shutdown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from aiobotocore.awsrequest import AioAWSResponse
from aiobotocore.session import AioSession

from safe_bedrock.testing._session import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, ISOLATED_SESSION_VARS, isolate
from safe_bedrock.testing._wire import ConnectionDrop, ReadTimeout, close_chunks, start

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from botocore.awsrequest import AWSPreparedRequest, HTTPHeaders

    from safe_bedrock.testing._wire import Reply


_T = TypeVar("_T")
# aiobotocore depends on aiohttp; its errors are what the async client meets mid-body over a real connection.
# Imported by name so that mypy in the main environment (stubs for aiobotocore, no aiohttp) is satisfied.
_aiohttp: Any = importlib.import_module("aiohttp")


def isolated_aio_session(*, region_name: str) -> AioSession:
    """An AioSession with fake static credentials that reads nothing from the environment's AWS config."""
    session = AioSession(session_vars=ISOLATED_SESSION_VARS)
    isolate(session)
    session.set_config_variable("region", region_name)
    session.set_credentials(FAKE_ACCESS_KEY, FAKE_SECRET_KEY)
    return session


def answerer(
    receive: Callable[[AWSPreparedRequest], tuple[str, Reply]],
) -> Callable[..., Awaitable[AioAWSResponse]]:
    """The coroutine `send` of an aiobotocore client's HTTP session, over the fake's blocking `receive`."""

    async def answer(request: AWSPreparedRequest, **_: Any) -> AioAWSResponse:
        url, reply = await _in_thread(receive, request)
        # A body or a built list of frames never sleeps; a generator may (scripted pacing, drops).
        blocking = reply.chunks is not None and not isinstance(reply.chunks, (list, tuple))
        chunks, source = await _in_thread(start, reply, url) if blocking else start(reply, url)
        headers: HTTPHeaders = reply.headers  # type: ignore[assignment]  # copied into a case-insensitive dict
        return AioAWSResponse(url, reply.status, headers, _Raw(chunks, source, url, blocking=blocking))

    return answer


class _Raw:
    """The part of aiohttp's ClientResponse (and of its StreamReader, `content`) that aiobotocore reads.

    The core's chunk generator is only ever advanced by one thread at a time; a `close()` that arrives while a
    pull is in flight (a cancelled consumer) is carried out by that pull when its chunk arrives.
    """

    __slots__ = ("_blocking", "_buffer", "_chunks", "_closed", "_eof", "_lock", "_pulling", "_source", "url")

    def __init__(self, chunks: Iterator[bytes], source: Iterator[bytes], url: str, *, blocking: bool) -> None:
        self._chunks = chunks
        self._source = source  # what close() closes (a reply's generator)
        self.url = url
        self._blocking = blocking
        self._buffer = b""
        self._eof = False
        self._closed = False
        self._pulling = False
        self._lock = threading.Lock()

    @property
    def content(self) -> _Raw:
        return self

    def at_eof(self) -> bool:
        return self._eof and not self._buffer

    async def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or not self._buffer):
            await self._fill()
        if n < 0:
            n = len(self._buffer)
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    async def iter_chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
        while data := await self.read(1 << 30):  # all that is buffered: one chunk as the core made it
            yield data, True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._eof = True
            if self._pulling:
                return  # the pull in flight closes the generator when its chunk arrives
        close_chunks(self._source)

    release = close

    async def _fill(self) -> None:
        with self._lock:
            if self._closed:
                self._eof = True
                return
            self._pulling = True
        try:
            chunk = await _in_thread(self._next) if self._blocking else self._next()
        except ReadTimeout as exc:
            # What aiohttp raises when no byte arrives within the socket read timeout.
            raise _aiohttp.ServerTimeoutError(f"Timeout on reading data from socket ({exc})") from exc
        except ConnectionDrop as exc:
            # What aiohttp raises when the peer closes before the body is complete.
            raise _aiohttp.ClientPayloadError(f"Response payload is not completed: {exc}") from exc
        if chunk is None:
            self._eof = True
        else:
            self._buffer += chunk

    def _next(self) -> bytes | None:
        try:
            return next(self._chunks, None)
        finally:
            with self._lock:
                self._pulling = False
                closed = self._closed
            if closed:
                close_chunks(self._source)


async def _in_thread(function: Callable[..., _T], *args: Any) -> _T:
    future: concurrent.futures.Future[_T] = concurrent.futures.Future()

    def run() -> None:
        # A task cancelled meanwhile cancelled the future too: nobody waits for the result any more.
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            try:
                result = function(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task, whatever it is
                future.set_exception(exc)
            else:
                future.set_result(result)

    threading.Thread(target=run, name="safe-bedrock-fake-aio", daemon=True).start()
    return await asyncio.wrap_future(future)
