"""Scripting a fake server that runs in another process: `connect(endpoint_url)` and the control API under it.

Each call is checked in the caller's process first, by the same code and with the same messages as
in-process. The control API (JSON over HTTP under PREFIX) is documented in docs/how-to/other-languages.md;
an optional `X-Safe-Bedrock-Origin: <file:line>` header names where the script was written.
"""

from __future__ import annotations

import base64
import functools
import inspect
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, replace
from typing import Any, TypeVar, cast

from safe_bedrock.testing._core import FakeBedrockCore
from safe_bedrock.testing._script import ANY, Script, Scripted, ScriptingAPI
from safe_bedrock.testing._wire import FakeRequest, Reply

PREFIX = "/__safe_bedrock/"
_READS = ["requests", "pending_responses"]
# Every public method of ScriptingAPI, so the handle keeps up with FakeBedrock's scripting.
_METHODS = [name for name, value in vars(ScriptingAPI).items() if callable(value) and name[0] != "_"]
_METHODS = [name for name in _METHODS if name not in _READS]
_ERRORS = {error.__name__: error for error in (ValueError, TypeError, AssertionError)}


def _encode(value: object) -> object:
    if value is ANY:
        return {"$any": True}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    return value  # anything JSON cannot carry fails in json.dumps with a TypeError naming its type


def _decode(value: object) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"$any"}:
            return ANY
        if value.keys() == {"$bytes"}:
            return base64.b64decode(value["$bytes"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


class _Capture(Script):
    """A script that keeps what the scripting methods add: (entry, times), times None for a route."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[tuple[Scripted, int | None]] = []

    def queue(self, entry: Scripted, *, times: int = 1) -> None:
        self.entries.append((entry, times))

    def add_route(self, entry: Scripted) -> None:
        self.entries.append((entry, None))


class _Local(ScriptingAPI):
    def __init__(self, core: FakeBedrockCore) -> None:
        self._core = core


def _run(method: str, arguments: Mapping[str, Any]) -> list[tuple[Scripted, int | None]]:
    """Call the scripting method on a scratch fake: its checks run, the entries it would add come back."""
    capture = _Capture()
    getattr(_Local(FakeBedrockCore(script=capture)), method)(**arguments)
    return capture.entries


# --- the server's side -----------------------------------------------------------------------------------


def answer(core: FakeBedrockCore, method: str, path: str, origin: str | None, body: bytes) -> Reply:
    """The fake server's reply to a control-API request (`path` starts with PREFIX)."""
    name = path[len(PREFIX) :].split("?", 1)[0]
    expected = "GET" if name in _READS else "POST"
    if name not in [*_METHODS, *_READS]:
        return _reply(404, error="NotFound", message=f"{name!r}: valid: {', '.join([*_METHODS, *_READS])}")
    if method != expected:
        return _reply(405, error="MethodNotAllowed", message=f"{name} takes {expected}, not {method}")
    api = _Local(core)
    if name == "requests":
        return _reply(200, result=[_encode(asdict(request)) for request in api.requests])
    if name == "pending_responses":
        return _reply(200, result=list(api.pending_responses()))
    try:
        arguments = _decode(json.loads(body or b"{}"))
        if not isinstance(arguments, dict):
            raise TypeError(f"the body must be a JSON object of {name}'s keyword arguments")
        entries = _run(name, arguments)  # the checks, and what the method adds to the script
        where = origin or "a control-API client"
        for entry, times in entries:
            # The entry names where the caller wrote it, not this server's thread.
            told = replace(entry, origin=f"{entry.origin.rsplit(' at ', 1)[0]} at {where}")
            if times is None:
                core.script.add_route(told)
            else:
                core.script.queue(told, times=times)
        if not entries:
            getattr(api, name)(**arguments)
    except AssertionError as exc:
        return _reply(409, error="AssertionError", message=str(exc))
    except (TypeError, ValueError) as exc:
        kind = "TypeError" if isinstance(exc, TypeError) else "ValueError"
        return _reply(400, error=kind, message=str(exc))
    return _reply(200, result=None)


def _reply(status: int, **payload: object) -> Reply:
    return Reply(
        status=status, headers={"Content-Type": "application/json"}, body=json.dumps(payload).encode()
    )


# --- the caller's side -----------------------------------------------------------------------------------

_F = TypeVar("_F", bound=Callable[..., None])


def _remote(method: _F) -> _F:
    name = method.__name__
    signature = inspect.signature(method)

    @functools.wraps(method)
    def call(self: RemoteFakeBedrock, *args: Any, **kwargs: Any) -> None:
        arguments = signature.bind(self, *args, **kwargs).arguments
        del arguments["self"]
        # A one-shot iterator (a generator of events) is read once, for the check and the request alike.
        arguments = {key: list(v) if isinstance(v, Iterator) else v for key, v in arguments.items()}
        if callable(arguments.get("handler")):
            raise TypeError(
                "route(handler=...) cannot script a fake server in another process: the callable would have"
                " to run there. Give each model a fixed answer with text=, body= or error=, or run"
                " FakeBedrockServer in this process."
            )
        entries = _run(name, arguments)  # the in-process checks, raising here with their own messages
        origin = entries[0][0].origin.rsplit(" at ", 1)[-1] if entries else None
        self._call("POST", name, arguments, origin=origin)

    return cast("_F", call)


class RemoteFakeBedrock(ScriptingAPI):
    """FakeBedrock's scripting and inspection for a fake server in another process (see `connect`)."""

    def __init__(self, endpoint_url: str, *, timeout: float = 10.0) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.timeout = timeout

    @property
    def requests(self) -> list[FakeRequest]:
        """Every Bedrock request the server received, oldest first."""
        return [FakeRequest(**_decode(request)) for request in self._call("GET", "requests")]

    def pending_responses(self) -> tuple[str, ...]:
        return tuple(self._call("GET", "pending_responses"))

    def _call(self, verb: str, name: str, arguments: object = None, *, origin: str | None = None) -> Any:
        import urllib.error
        import urllib.request  # only the caller's side needs an HTTP client

        data = None if arguments is None else json.dumps(_encode(arguments)).encode()
        headers = {"Content-Type": "application/json"} | ({"X-Safe-Bedrock-Origin": origin} if origin else {})
        request = urllib.request.Request(  # noqa: S310 - the URL of a fake server the caller named
            f"{self.endpoint_url}{PREFIX}{name}", data=data, method=verb, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - as above
                return json.loads(response.read())["result"]
        except urllib.error.HTTPError as exc:
            with exc:
                raw = exc.read()
            problem = json.loads(raw) if raw.startswith(b'{"error"') else {}
            if problem.get("error") not in _ERRORS:
                raise RuntimeError(
                    f"{self.endpoint_url} is not a safe-bedrock fake server with remote scripting (HTTP"
                    f" {exc.code} for {name}); start one with `safe-bedrock fake-server`"
                ) from None
            raise _ERRORS[problem["error"]](problem["message"]) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectionError(
                f"no fake server answers at {self.endpoint_url} ({reason}); start one with"
                " `safe-bedrock fake-server --port 0 --json` and connect to the endpoint_url it prints"
            ) from None

    def __repr__(self) -> str:
        return f"<RemoteFakeBedrock {self.endpoint_url}>"


# Each scripting method runs its in-process checks here, then is sent; mypy reads ScriptingAPI's signatures.
for _name in _METHODS:
    setattr(RemoteFakeBedrock, _name, _remote(getattr(ScriptingAPI, _name)))


def connect(endpoint_url: str, *, timeout: float = 10.0) -> RemoteFakeBedrock:
    """Script a fake server in another process (`safe-bedrock fake-server`) as FakeBedrock is scripted.

    `fake = connect("http://127.0.0.1:4010"); fake.add_response(text="Paris")`. ConnectionError at once
    when no fake server answers there; `route(handler=...)` needs the server in this process.
    Added in version 0.2.0.
    """
    fake = RemoteFakeBedrock(endpoint_url, timeout=timeout)
    fake.pending_responses()
    return fake
