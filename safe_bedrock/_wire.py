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

import copy
import json
import sys
import time
import weakref
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from safe_bedrock._guard import Call, Guard, coerce_allowlist
from safe_bedrock._service import RUNTIME, operation_specs, operations_at
from safe_bedrock._translate import refused_request

if TYPE_CHECKING:
    from collections.abc import Iterable

    from safe_bedrock._allowlist import ModelAllowlist

__all__ = ["ACTIVE", "check_request", "guard", "guard_for", "install"]

_T = TypeVar("_T")
_INSTALLED = "_safe_bedrock_wire_checks"  # on the endpoint: its `_Checks`


def check_request(guard: Guard, method: str | None, url: str, body: object, *, record: bool = False) -> None:
    """Decide again on a request as it will leave; raises (nothing is sent) when it must not.

    `record`: also log the refusal as the call's event (for clients that have no shell of ours to do it).
    """
    parts = urlsplit(url)
    base = urlsplit(guard.endpoint)
    prefix = base.path.rstrip("/")
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or not parts.path.startswith(prefix):
        problem = f"the request was sent to {parts.scheme}://{parts.netloc}, not to the client's endpoint"
        raise refused_request(problem, source=guard.allowlist.source, exceptions=guard.exceptions)
    operations = operations_at(guard.specs, method, parts.path[len(prefix) :])
    if not operations:
        problem = f"{method or 'a request to'} {parts.path} is no operation of the service"
        raise refused_request(problem, source=guard.allowlist.source, exceptions=guard.exceptions)
    for spec, labels in operations:
        if spec.model_member is not None:
            raw = unquote(labels[spec.model_member]) if spec.model_in_path else _body_member(body)
            model_id = raw if isinstance(raw, str) else None
            call = Call(spec=spec, ref=None, model_id=model_id, started=time.monotonic())
            guard.admit(call, raw, record=record)


def _body_member(body: object) -> object:
    """modelId from a JSON request body (StartAsyncInvoke); None (then refused) unless there is one.

    Exactly one top-level key spelt `modelId` and no other spelling of it: JSON parsers disagree on
    which of two equal keys wins, and a case-insensitive one could read another. A presigned URL has no
    body, and whoever holds it may send any: such operations are never presigned.
    """
    if not isinstance(body, (bytes, str)):
        return None
    try:
        pairs = json.loads(body, object_pairs_hook=list)
    except ValueError:
        return None
    if not isinstance(pairs, list):
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
    request its own call sends (`ACTIVE` names it for one request per attempt), so several
    SafeBedrockClients may share one boto3 client, each with its own allowlist; any other request on the
    boto3 client (a direct call, one made from inside a handler) must satisfy every live shell wrapping it.
    """

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.explicit: list[Guard] = []
        self.shells: weakref.WeakKeyDictionary[object, Guard] = weakref.WeakKeyDictionary()

    def check(self, method: str | None, url: str, body: object) -> None:
        for rules in self.explicit:
            check_request(rules, method, url, body, record=True)
        active = ACTIVE.get()
        if active is not None and active.endpoint == self.endpoint:
            ACTIVE.set(None)  # spent: a nested call made while this one runs is decided as a direct one
            check_request(active, method, url, body)
            return
        for rules in list(self.shells.values()):
            check_request(rules, method, url, body)


# The guard of the shell whose call is about to send its request in this thread or task (see `_Checks`).
ACTIVE: ContextVar[Guard | None] = ContextVar("safe_bedrock_active_guard", default=None)


def install(client: Any, rules: Guard, *, shell: object = None) -> None:
    """Put the wire check on a botocore or aiobotocore bedrock-runtime client (in place).

    Two places, each the last step of its path: the endpoint's send step (after every event handler,
    just before the HTTP session) and the request signer's presigning (after every signing handler, on
    the URL it returns). `shell`: the SafeBedrockClient these rules belong to, held weakly (None: the
    rules apply to every request for the client's lifetime, as `guard()` installs them).
    """
    endpoint = client._endpoint  # the send step: after every event handler
    checks: _Checks | None = getattr(endpoint, _INSTALLED, None)
    if checks is None:
        checks = _Checks(client.meta.endpoint_url)
        _wrap_send(client, checks)
        setattr(endpoint, _INSTALLED, checks)
    if shell is not None:
        checks.shells[shell] = rules
    elif all(existing is not rules for existing in checks.explicit):
        checks.explicit.append(rules)


def _wrap_send(client: Any, checks: _Checks) -> None:
    # Both steps are instance attributes of botocore's own objects, reached through every public path:
    # client.generate_presigned_url, the class's, and botocore.signers' all presign through the signer.
    endpoint, signer = client._endpoint, client._request_signer
    send, presign = endpoint._send, signer.generate_presigned_url

    def checked(request: Any) -> Any:
        # What is checked is what is sent: a copy in exact built-in types, so neither a str or bytes
        # subclass nor a thread changing the request after the check can show the check something else.
        # (Headers are shared: none of them names the model.)
        sent = copy.copy(request)
        sent.method = _exact(request.method)
        sent.url = _exact(request.url)
        sent.body = _exact(request.body)
        checks.check(sent.method, sent.url, sent.body)
        return sent

    def check_url(url: str) -> str:
        exact = str.__str__(url)
        checks.check(None, exact, None)  # a presigned URL may be used with any method
        return exact

    if _is_async(client):

        async def checked_send_async(request: Any) -> Any:
            return await send(checked(request))

        async def checked_presign_async(*args: Any, **kwargs: Any) -> str:
            return check_url(await presign(*args, **kwargs))

        endpoint._send, signer.generate_presigned_url = checked_send_async, checked_presign_async
    else:

        def checked_send(request: Any) -> Any:
            return send(checked(request))

        def checked_presign(*args: Any, **kwargs: Any) -> str:
            return check_url(presign(*args, **kwargs))

        endpoint._send, signer.generate_presigned_url = checked_send, checked_presign


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

    `target` is a boto3 (or botocore) ``bedrock-runtime`` client, an aiobotocore one, or a boto3, botocore
    or aiobotocore session, in which case every ``bedrock-runtime`` client created from it afterwards is
    guarded. A request for a model outside `allow` raises `ModelNotAllowedError` and sends nothing, on
    every operation and for presigned URLs, whatever event handlers did to the request. The client is not
    wrapped: its methods, retries and errors stay boto3's, except that a refusal is the typed error (and
    is logged as a refused call). For the typed errors, retries and log event of every call, use
    `SafeBedrockClient`.

    .. versionadded:: 0.2.0
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
