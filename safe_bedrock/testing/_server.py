"""FakeBedrockServer: the fake Bedrock as a real HTTP/1.1 server on the loopback interface.

A thin transport over `FakeBedrockCore`, which owns everything Bedrock-specific; this module only speaks HTTP.
One thread per connection with HTTP/1.1 keep-alive, so boto3's connection pool reuses sockets as it does
against the real endpoint. Headers are assembled without `BaseHTTPRequestHandler.send_header`, which buffers
line by line and formats a Date every time. Nothing internal reaches the client as a traceback.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import struct
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from safe_bedrock._eventstream import exception_frame
from safe_bedrock.testing import _remote, _signing
from safe_bedrock.testing._control_plane import ControlPlane
from safe_bedrock.testing._core import FakeBedrockCore, error_reply, new_core, request_from_http
from safe_bedrock.testing._script import ScriptingAPI
from safe_bedrock.testing._session import isolated_client, isolated_session
from safe_bedrock.testing._wire import DEFAULT_REGION, ConnectionDrop, Reply, close_chunks

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    import boto3.session
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from typing_extensions import Self


# Bedrock's own limits are far below this; anything bigger is a broken or hostile client.
_MAX_BODY = 64 * 1024 * 1024
_POLL_INTERVAL = 0.05  # how quickly serve_forever notices stop()
_JOIN_TIMEOUT = 2.0
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, an abrupt cut


class _BadRequestError(Exception):
    """The bytes on the wire are not a request we can read (answered 400, connection closed)."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # stop() joins the connection threads itself, with a deadline, after waking them.
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: FakeBedrockServer) -> None:
        self.core = owner._core
        self.control_plane = owner.control_plane
        self.credentials = owner.credentials  # the keys whose signatures are verified (None: any key)
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        self.lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"fake-bedrock-conn-{client_address[1]}",
            daemon=True,
        )
        with self.lock:
            if self.core.closing.is_set():
                self.shutdown_request(request)
                return
            self.connections.add(request)
            self.threads.add(thread)
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        # A broken connection must not print a traceback from a thread: its errors are the client's business.
        try:
            with contextlib.suppress(Exception):
                self.finish_request(request, client_address)
        finally:
            self.shutdown_request(request)
            with self.lock:
                self.connections.discard(request)
                self.threads.discard(threading.current_thread())

    def end_connections(self, deadline: float) -> None:
        """Shut every open connection down (blocked reads and writes return at once); join the threads."""
        with self.lock:
            connections, threads = list(self.connections), list(self.threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "safe-bedrock-fake"
    sys_version = ""
    # Streams are many small writes; with Nagle's algorithm each would wait for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ARG002 - the stdlib's signature
        # A test double stays quiet; the request log (`.requests`) is the record.
        return

    def send_error(
        self,
        code: int,
        message: str | None = None,
        explain: str | None = None,  # noqa: ARG002 - HTML detail; an AWS-shaped reply has no room for it
    ) -> None:
        # Called by the stdlib for malformed request lines and headers: answer in AWS's JSON shape.
        code_name = "ValidationException" if code < 500 else "InternalServerException"
        text = message or _REASONS.get(code, "Bad request")
        reply = error_reply(code_name, text, request_id=self.server.core.next_request_id(), status=code)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._write_plain(reply)

    def _serve(self) -> None:
        core = self.server.core
        try:
            body = self._read_body()
        except _BadRequestError as exc:
            self.send_error(400, str(exc))  # AWS's JSON shape, and the connection closes
            return
        try:
            headers = dict(self.headers.items())
            if self.path.startswith(_remote.PREFIX):  # scripting from another process; never a Bedrock call
                origin = self.headers.get("X-Safe-Bedrock-Origin")
                self._write_plain(_remote.answer(core, self.command, self.path, origin, body))
                return
            request = request_from_http(method=self.command, raw_path=self.path, headers=headers, body=body)
            reply = None
            # The front door authenticates before Bedrock sees the call: a refused one is not recorded.
            refused = request.operation and _signing.check(
                self.command, self.path, request.headers, body, self.server.credentials
            )
            if refused:
                reply = error_reply(*refused, request_id=core.next_request_id(), status=403)
            elif not request.operation and self.server.control_plane is not None:
                # Not a bedrock-runtime route: maybe STS, IAM or the Bedrock control plane (for `check`).
                # Asked only now, so bedrock-runtime calls never pay for the control plane's routing.
                answer = self.server.control_plane.handle(self.command, self.path, headers, body)
                if answer is not None:
                    reply = Reply(*answer)  # (status, headers, body)
            if reply is None:
                reply = core.handle(request)
        except Exception:  # noqa: BLE001 - any bug in the fake becomes a 500, never a traceback on the wire
            reply = _internal_error(core)
        if reply.chunks is None:
            self._write_plain(reply)
        else:
            self._write_stream(reply, reply.chunks)

    # Every method goes to the core, which answers unknown routes with UnknownOperationException.
    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve  # noqa: N815 - http.server's names

    # --- reading ---------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise _BadRequestError(f"Content-Length {length_header!r} is not a number") from None
        if length < 0 or length > _MAX_BODY:
            raise _BadRequestError(f"Content-Length {length} is out of range (0 to {_MAX_BODY})")
        body = self.rfile.read(length)
        if len(body) != length:
            raise _BadRequestError(f"the body ended after {len(body)} of {length} bytes")
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequestError(f"invalid chunk size line {line[:40]!r}") from None
            if size == 0:
                break
            total += size
            if size < 0 or total > _MAX_BODY:
                raise _BadRequestError(f"chunked body larger than {_MAX_BODY} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.read(2) != b"\r\n":
                raise _BadRequestError("chunked body ended in the middle of a chunk")
            parts.append(chunk)
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailers: nothing Bedrock defines
        return b"".join(parts)

    # --- writing ---------------------------------------------------------------------------------------

    def _head(self, reply: Reply, framing: str) -> bytes:
        lines = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Unknown')}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in reply.headers.items())
        lines.append(framing)
        lines.append(f"Date: {_http_date()}\r\n")
        if self.close_connection:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    def _write_plain(self, reply: Reply) -> None:
        body = reply.body or b""
        head = self._head(reply, f"Content-Length: {len(body)}\r\n")
        self.wfile.write(head if self.command == "HEAD" else head + body)

    def _write_stream(self, reply: Reply, chunks: Iterable[bytes]) -> None:
        write = self.wfile.write
        iterator = iter(chunks)
        try:
            # The head waits for the first chunk, so a drop scripted before any event cuts a silent socket
            # (the client sees a connection error, as when Bedrock's front door fails) rather than a 200.
            try:
                first = next(iterator, b"")
            except ConnectionDrop:
                self._cut()
                return
            except Exception:  # noqa: BLE001 - nothing written yet: a plain 500 is still possible
                self._write_plain(_internal_error(self.server.core))
                return
            write(self._head(reply, "Transfer-Encoding: chunked\r\n"))
            try:
                for chunk in itertools.chain((first,), iterator):
                    if self.server.core.closing.is_set():
                        raise ConnectionDrop  # stop() in progress: end the stream now
                    if chunk:
                        write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            except ConnectionDrop:
                self._cut()
                return
            except OSError:
                raise
            except Exception:  # noqa: BLE001 - a bug mid-stream: end it the way Bedrock reports a failure
                frame = exception_frame("internalServerException", "The fake failed while streaming.")
                write(b"%x\r\n%b\r\n" % (len(frame), frame))
            write(b"0\r\n\r\n")
        except OSError:
            # The client went away (or stop() shut the socket): nothing more to say on this connection.
            self.close_connection = True
        finally:
            with contextlib.suppress(Exception):
                close_chunks(chunks)

    def _cut(self) -> None:
        """Abort the connection the way a crashed peer does: an RST, no chunked terminator."""
        self.close_connection = True
        conn: socket.socket = self.connection
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    # Formatting a Date header costs more than the rest of a small reply; once per second is enough.
    global _date_cache  # noqa: PLW0603 - a one-slot cache; a race only formats the same date twice
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)))
    return _date_cache[1]


def _credentials(credentials: Mapping[str, str] | None) -> dict[str, str] | None:
    pairs = dict(credentials) if isinstance(credentials, Mapping) else {}
    strings = all(isinstance(text, str) and text for pair in pairs.items() for text in pair)
    if credentials is not None and not (pairs and strings):
        raise ValueError(
            "credentials must map access key ids to secret access keys, e.g. {'AKIAEXAMPLE': 'secret'}, "
            "with at least one pair; pass None to accept any key"
        )
    return None if credentials is None else pairs


def _internal_error(core: FakeBedrockCore) -> Reply:
    return error_reply(
        "InternalServerException",
        "The fake Bedrock failed handling the request (a bug in safe-bedrock's fake: please report it).",
        request_id=core.next_request_id(),
        status=500,
    )


class FakeBedrockServer(ScriptingAPI):
    """The fake Bedrock on a real HTTP port, for any client: boto3 with endpoint_url, other SDKs, curl.

    ```python
    with FakeBedrockServer() as server:
        client = boto3.client("bedrock-runtime", endpoint_url=server.endpoint_url, region_name="us-east-1")
        client.converse(modelId="anthropic.claude-3-haiku-20240307-v1:0", messages=[...])
    ``` Added in version 0.1.0.
    """

    _core: FakeBedrockCore

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = DEFAULT_REGION,
        control_plane: ControlPlane | None = None,
        max_requests: int | None = None,
        credentials: Mapping[str, str] | None = None,
        models: Iterable[str] = (),
        strict_models: bool = True,
    ) -> None:
        """`max_requests`: keep only the newest N requests in `.requests` (for a long-running server).
        `models`, `strict_models`: which models are served, as for `FakeBedrock`.

        Every Bedrock request must be signed (SigV4, a presigned URL or a bearer API key), else it gets
        403 MissingAuthenticationTokenException. `credentials` ({access key id: secret access key}) makes
        the keys known: another key gets UnrecognizedClientException, a signature that does not verify
        InvalidSignatureException, and `client()` signs with the first key. Without it any key passes.
        """
        self.credentials = _credentials(credentials)
        self._core = new_core(max_requests=max_requests, models=models, strict_models=strict_models)
        # STS, IAM and Bedrock control-plane answers (what `safe-bedrock check` asks), following this fake's
        # principal and policy; script them through `server.control_plane`.
        self.control_plane = control_plane if control_plane is not None else ControlPlane(core=self._core)
        self.region = region
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and start serving in a background thread. Raises OSError if the port is taken."""
        with self._lock:
            if self._httpd is not None:
                return self
            httpd = _HTTPServer(self._address, self)
            self._core.closing.clear()
            thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL},
                name=f"fake-bedrock-server-{httpd.server_address[1]}",
                daemon=True,
            )
            thread.start()
            self._httpd, self._thread = httpd, thread
        return self

    def stop(self) -> None:
        """Stop serving: close the port, cut open connections (streams in flight included), join threads."""
        with self._lock:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
        if httpd is None or thread is None:
            return
        deadline = time.monotonic() + _JOIN_TIMEOUT
        # Scripted delays and streams watch the core's event: setting it ends them now; no thread sleeps on.
        self._core.closing.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(max(0.0, deadline - time.monotonic()))
        httpd.end_connections(deadline)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    # --- where it listens ----------------------------------------------------------------------------------

    def _bound(self) -> _HTTPServer:
        httpd = self._httpd
        if httpd is None:
            raise RuntimeError(
                "FakeBedrockServer is not running; use `with FakeBedrockServer() as s:` or .start()"
            )
        return httpd

    @property
    def host(self) -> str:
        return str(self._bound().server_address[0])

    @property
    def port(self) -> int:
        return int(self._bound().server_address[1])

    @property
    def endpoint_url(self) -> str:
        host = self.host
        if ":" in host:  # an IPv6 literal needs brackets in a URL
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def client(self, region_name: str | None = None, **kwargs: Any) -> BedrockRuntimeClient:
        """A real boto3 bedrock-runtime client pointed at this server, with fake credentials.

        `region_name` defaults to the server's `region`. Other keyword arguments go to
        `boto3.session.Session.client` (config, aws_access_key_id, ...) and win over the defaults. The session
        ignores the environment's AWS profile and files, so tests never pick up real credentials.
        """
        kwargs.setdefault("endpoint_url", self.endpoint_url)
        for name, value in self._keys().items():
            kwargs.setdefault(name, value)
        return isolated_client(region_name=region_name or self.region, **kwargs)

    def session(self, region_name: str | None = None) -> boto3.session.Session:
        """A boto3 Session with fake credentials that ignores the environment's AWS profile and files.

        A session cannot carry an endpoint, so pass this server's with it to whatever builds the client:
        `SafeBedrockClient(allow=[...], session=server.session(), endpoint_url=server.endpoint_url)` or
        `server.session().client("bedrock-runtime", endpoint_url=server.endpoint_url)`.
        """
        return isolated_session(region_name=region_name or self.region, **self._keys())

    def _keys(self) -> dict[str, str]:
        # With known credentials, the clients this server hands out sign with the first of them.
        for access_key, secret in (self.credentials or {}).items():
            return {"aws_access_key_id": access_key, "aws_secret_access_key": secret}
        return {}

    def __repr__(self) -> str:
        where = self.endpoint_url if self.running else "not running"
        return f"<FakeBedrockServer {where}>"
