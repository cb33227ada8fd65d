"""The second decision: the request a botocore client is about to send (or presign) is checked again.

The method-level check (`Guard.begin`) decides on the caller's arguments. Between it and the socket,
botocore lets code change the request: handlers on `provide-client-params`, `before-parameter-build`,
`before-call`, `request-created`, `before-sign` or `before-send` can rewrite the modelId, the URL or the
body, and `generate_presigned_url` mints a URL that never passes a method at all. So the operation and
model are read back from the request itself (its method and URL path, matched against the routes of the
client's service model, and the body where the modelId travels there) and decided again:

- at the endpoint's send step, after every event handler has run, just before the HTTP session;
- on the URL `generate_presigned_url` returns, after every signing handler (a refused one raises instead
  of returning the URL).

A refusal raises `ModelNotAllowedError` (or `InvalidModelIdError` for an id that does not parse) and sends
nothing. Anything that cannot be read back (a path that is no operation of the service, another host) is
refused: it is not a request this client would build.

`guard(target, allow=...)` installs the same two checks on a boto3 or aiobotocore bedrock-runtime client
that an app or framework built, or on a session, so that every bedrock-runtime client created from it later
is guarded. Installing twice stacks the checks: each can only narrow what is sent.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from safe_bedrock._guard import ACTIVE, CURRENT, Call, Guard, coerce_allowlist, mark_refusal
from safe_bedrock._service import RUNTIME, operation_specs, operations_at
from safe_bedrock._translate import refused_request

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from safe_bedrock._allowlist import ModelAllowlist


_T = TypeVar("_T")
_INSTALLED = "_safe_bedrock_wire_checks"  # on the endpoint: its `_Checks`


def check_request(
    guard: Guard, method: str | None, url: str, body: object, *, host: str | None = None, record: bool = False
) -> None:
    """Decide again on a request as it will leave; raises (nothing is sent) when it must not.

    `method` None: a presigned URL, which may be sent as any operation on its path. `host`: a Host
    header, if the request carries one. `record`: also log a model's refusal as the call's event (for
    clients that have no shell of ours to do it).
    """

    def refuse(problem: str) -> Exception:
        exc = refused_request(problem, source=guard.allowlist.source, exceptions=guard.exceptions)
        mark_refusal(exc, "request")
        return exc

    parts, base = urlsplit(url), urlsplit(guard.endpoint)
    prefix = base.path.rstrip("/")
    if host is not None and host.lower() != parts.netloc.lower():
        raise refuse(f"the request was sent to host {host!r}, not to the client's endpoint")
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or not parts.path.startswith(prefix):
        raise refuse(f"the request was sent to {parts.scheme}://{parts.netloc}, not to the client's endpoint")
    operations = operations_at(guard.specs, method, parts.path[len(prefix) :])
    if not operations:
        raise refuse(f"{method or 'a request to'} {parts.path} is no operation of the service")
    for spec, labels in operations:
        if spec.model_member is None:
            continue
        if not spec.model_in_path and method is None:
            raise refuse(
                f"a presigned URL for {parts.path} could be sent as {spec.name}, whose model travels in "
                "the body, where no check can see it"
            )
        raw = unquote(labels[spec.model_member]) if spec.model_in_path else _body_member(body)
        model_id = raw if isinstance(raw, str) else None
        call = Call(spec=spec, ref=None, model_id=model_id, started=time.monotonic())
        guard.admit(call, raw, record=record)


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object's (key, value) pairs, as read: a JSON array stays a plain list."""


def _body_member(body: object) -> object:
    """modelId from a JSON request body (StartAsyncInvoke); None (then refused) unless there is one.

    Exactly one top-level key spelt `modelId` and no other spelling of it: JSON parsers disagree on
    which of two equal keys wins, and a case-insensitive one could read another.
    """
    if not isinstance(body, (bytes, str)):
        return None
    try:
        pairs = json.loads(body, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return None
    if type(pairs) is not _Pairs:
        return None
    named = [(key, value) for key, value in pairs if key.casefold() == "modelid"]
    return named[0][1] if len(named) == 1 and named[0][0] == "modelId" else None


def guard_for(client: Any, allowlist: ModelAllowlist, **settings: Any) -> Guard:
    """A client's rules: the allowlist bound to its region, its operations, endpoint and exceptions."""
    meta = client.meta
    return Guard(
        allowlist=allowlist.bind(region=meta.region_name, partition=meta.partition),
        region=meta.region_name,
        partition=meta.partition,
        exceptions=client.exceptions,
        specs=operation_specs(meta.service_model),
        endpoint=meta.endpoint_url,
        **settings,
    )


class _Checks:
    """The guards on one client: those `guard()` put there, and those of the shells wrapping it.

    Every `guard()` applies to every request (installing twice narrows). A shell's guard applies to the
    boto3 calls its own methods make (`ACTIVE` hands it to the call, which keeps it for all its requests,
    botocore's retries included), so several SafeBedrockClients may share one boto3 client, each with its
    own allowlist; any other request (a direct call, one made from inside a handler or another task)
    must satisfy every shell guard still alive (held by a shell or by a method taken from one).
    """

    def __init__(self) -> None:
        self.explicit: list[Guard] = []
        self.shells: weakref.WeakSet[Guard] = weakref.WeakSet()

    def check(self, method: str | None, url: str, body: object, host: str | None = None) -> None:
        current = CURRENT.get()
        with _LOCK:  # guards are added from other threads, and a weak set cannot be iterated meanwhile
            explicit, shells = list(self.explicit), list(self.shells)
        mine = current if any(rules is current for rules in shells) else None
        for rules in explicit:
            if rules is not mine:  # the shell logs its own call's refusal
                check_request(rules, method, url, body, host=host, record=mine is None)
        for rules in shells if mine is None else [mine]:
            check_request(rules, method, url, body, host=host)


_LOCK = threading.Lock()


def install(client: Any, rules: Guard, *, own_calls: bool = False) -> None:
    """Put the wire check on a botocore or aiobotocore bedrock-runtime client (in place).

    Two places, each the last step of its path: the endpoint's send step (after every event handler,
    just before the HTTP session) and the request signer's presigning (after every signing handler, on
    the URL it returns). `own_calls`: the rules of a SafeBedrockClient, held weakly and applied to its
    own calls; otherwise they apply to every request for the client's lifetime, as `guard()` installs them
    (rules for an allowlist already there are not added twice).
    """
    with _LOCK:
        endpoint = client._endpoint  # the send step: after every event handler
        checks: _Checks | None = getattr(endpoint, _INSTALLED, None)
        if checks is None:
            checks = _Checks()
            _wrap(client, checks)
            setattr(endpoint, _INSTALLED, checks)
        if own_calls:
            checks.shells.add(rules)
        elif all(existing.allowlist is not rules.allowlist for existing in checks.explicit):
            checks.explicit.append(rules)


def _wrap(client: Any, checks: _Checks) -> None:
    # Every step is an instance attribute of botocore's own objects, reached through every public path:
    # client.generate_presigned_url, the class's, and botocore.signers' all presign through the signer.
    endpoint, signer = client._endpoint, client._request_signer
    call, send, presign = (
        _weak(o, n)
        for o, n in ((client, "_make_api_call"), (endpoint, "_send"), (signer, "generate_presigned_url"))
    )

    def checked(request: Any) -> Any:
        # What is checked is what is sent: a copy in exact built-in types, so neither a str or bytes
        # subclass nor a thread changing the request after the check can show the check something else.
        # (Headers are shared: of them only Host could name a place, and it is checked.)
        sent = copy.copy(request)
        sent.method = _exact(request.method)
        sent.url = _exact(request.url)
        sent.body = _exact(request.body)
        host = _exact(request.headers.get("Host")) if hasattr(request.headers, "get") else None
        checks.check(
            sent.method, sent.url, sent.body, host.decode("latin-1") if isinstance(host, bytes) else host
        )
        return sent

    def check_url(url: str) -> str:
        exact = str.__str__(url)
        checks.check(None, exact, None)
        return exact

    def checked_send(request: Any) -> Any:  # aiobotocore's send returns the awaitable, checked already
        return send(checked(request))

    if _is_async(client):

        async def scoped_call_async(*args: Any) -> Any:
            with _scoped():
                return await call(*args)

        async def checked_presign_async(*args: Any, **kwargs: Any) -> str:
            return check_url(await presign(*args, **kwargs))

        client._make_api_call, signer.generate_presigned_url = scoped_call_async, checked_presign_async
    else:

        def scoped_call(*args: Any) -> Any:
            with _scoped():
                return call(*args)

        def checked_presign(*args: Any, **kwargs: Any) -> str:
            return check_url(presign(*args, **kwargs))

        client._make_api_call, signer.generate_presigned_url = scoped_call, checked_presign
    endpoint._send = checked_send


@contextlib.contextmanager
def _scoped() -> Iterator[None]:
    """A boto3 call takes the guard `ACTIVE` holds as its own (`CURRENT`), and nothing nested inherits it."""
    current, active = CURRENT.set(ACTIVE.get()), ACTIVE.set(None)
    try:
        yield
    finally:
        ACTIVE.reset(active)
        CURRENT.reset(current)


def _weak(obj: Any, name: str) -> Any:
    """`obj.name`, not keeping `obj` alive (stored back on it, a strong one would make a cycle). A method of
    the class is looked up there at each call, so what instruments the class (OpenTelemetry wraps
    `BaseClient._make_api_call`), before or after the guard, still runs; one set on `obj` itself is kept."""
    method = getattr(obj, name)
    if not inspect.ismethod(method) or method.__self__ is not obj:
        return method
    owner, own = weakref.ref(obj), method.__func__ if name in vars(obj) else None

    def call(*args: Any, **kwargs: Any) -> Any:
        me = owner()
        return (own or inspect.getattr_static(type(me), name)).__get__(me, type(me))(*args, **kwargs)

    return call


def _exact(value: Any) -> Any:
    """`value` as a plain str or bytes (whatever its class overrides), or as it is when it is neither."""
    if type(value) in {str, bytes}:  # immutable and exact already: nothing to copy (a prompt may be large)
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return memoryview(value).tobytes()
    return value


def _is_async(client: object) -> bool:
    module = sys.modules.get("aiobotocore.client")
    return module is not None and isinstance(client, module.AioBaseClient)


def guard(target: _T, *, allow: ModelAllowlist | Iterable[str]) -> _T:
    """Install safe-bedrock's wire check on a client or session an app or a framework built; returns it.

    `target` is a boto3, botocore or aiobotocore ``bedrock-runtime`` client or session (then every such
    client created from it afterwards). A request for a model outside `allow` raises `ModelNotAllowedError`
    and sends nothing; everything else stays boto3's. `SafeBedrockClient` adds typed errors, retries, logs.

    Added in version 0.2.0.
    """
    allowlist = coerce_allowlist(allow)
    meta = getattr(target, "meta", None)
    if meta is not None and getattr(meta, "service_model", None) is not None:
        if meta.service_model.service_name != RUNTIME:
            raise TypeError(
                f"guard() takes a {RUNTIME!r} client or a session, "
                f"not a {meta.service_model.service_name!r} client"
            )
        install(target, guard_for(target, allowlist))
        return target
    events = _session_events(target)
    if events is None:
        raise TypeError(
            f"guard() takes a boto3/botocore/aiobotocore {RUNTIME!r} client or session, "
            f"not {type(target).__name__}"
        )

    def add_check(base_classes: list[type], **_: Any) -> None:
        base_classes.insert(0, _guarding_base(allowlist))

    events.register(f"creating-client-class.{RUNTIME}", add_check, unique_id=f"{_INSTALLED}-{id(allowlist)}")
    return target


def _session_events(target: object) -> Any:
    # A boto3 Session has `.events`; a botocore (or aiobotocore) session has the emitter as a component.
    events = getattr(target, "events", None)
    if events is not None and callable(getattr(events, "register", None)):
        return events
    get_component = getattr(target, "get_component", None)
    if callable(get_component):
        return get_component("event_emitter")
    return None


def _guarding_base(allowlist: ModelAllowlist) -> type:
    """A base class for the client classes a session creates: it guards each client once it is built."""

    class GuardedClient:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            install(self, guard_for(self, allowlist))

    return GuardedClient
