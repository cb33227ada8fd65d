"""SafeBedrockClient: boto3's bedrock-runtime client with a guard at the door (the sync shell)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Final

import boto3

from safe_bedrock._guard import coerce_allowlist
from safe_bedrock._retry import RetryConfig, botocore_retries_active, call_with_retries, no_retry_config
from safe_bedrock._service import RUNTIME, OperationSpec, operation_specs
from safe_bedrock._stream import wrap_stream
from safe_bedrock._translate import CREDENTIALS_ERRORS, credentials_error
from safe_bedrock._wire import guard_for, install

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from botocore.config import Config
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

    from safe_bedrock._allowlist import ModelAllowlist
    from safe_bedrock._guard import Call, Guard
    from safe_bedrock._observe import BodyLogging, CallHook

    # A user's type checker sees exactly boto3's methods, arguments and return types.
    _ClientBase = BedrockRuntimeClient
else:
    _ClientBase = object

SERVICE: Final = RUNTIME
# The boto3 client's members besides its operations, reachable through the wrapper as they are. None can
# send a request for a model on its own: a presigned URL is checked when minted (`_wire.py`), and a
# handler registered on `meta.events` acts before the wire check, which reads the request as it leaves.
PASS_THROUGH: Final = frozenset(
    {"close", "exceptions", "generate_presigned_url", "meta"}
    | {"can_paginate", "get_paginator", "get_waiter", "waiter_names"}  # paginators and waiters
)


def check_wrapped_client(client: Any, *, building: object, kind: str, stacklevel: int) -> Any:
    """A client handed in as client= (boto3 or aiobotocore): the right service; warns if it retries.

    `stacklevel` counts from the caller of this function, as if it called `warnings.warn` itself.
    """
    if building:
        raise TypeError(
            f"pass either client= (an existing {kind} client) or session=/region_name=/config=/"
            "endpoint_url= to build one, not both"
        )
    meta = getattr(client, "meta", None)
    service = getattr(getattr(meta, "service_model", None), "service_name", None)
    if service != SERVICE:
        raise TypeError(f"client= must be a {kind} {SERVICE!r} client, got {client!r}")
    if botocore_retries_active(client):
        warnings.warn(
            "the bedrock-runtime client passed as client= still retries on its own, so each of "
            "safe-bedrock's attempts may be several; build it with "
            "Config(retries={'total_max_attempts': 1}) or let safe-bedrock build it",
            UserWarning,
            stacklevel=stacklevel + 1,
        )
    return client


class GuardedShell:
    """What the sync and the async shell share: the wrapped client, its guard, and method lookup.

    A shell supplies `_guarded(spec)`, the callable that runs one operation under the guard.
    """

    _client: Any
    _guard: Guard
    _specs: Mapping[str, OperationSpec]

    def _wrap(
        self,
        inner: Any,
        *,
        allowlist: ModelAllowlist,
        retry: RetryConfig | None,
        hooks: Sequence[CallHook],
        body_logging: BodyLogging | None,
    ) -> None:
        if retry is not None and not isinstance(retry, RetryConfig):
            raise TypeError(f"retry= takes a RetryConfig, not {type(retry).__name__}")
        self._client = inner
        # Only what this botocore exposes as methods (it models operations it cannot call, such as
        # bidirectional streams, without a method).
        specs = operation_specs(inner.meta.service_model)
        self._specs = {name: spec for name, spec in specs.items() if hasattr(type(inner), name)}
        self._guard = guard_for(
            inner, allowlist, hooks=tuple(hooks), body_logging=body_logging, retry=retry or RetryConfig()
        )
        # Decided twice: at the method (below) and on the request as it leaves, which also covers calls
        # made on `.client`, presigned URLs and whatever event handlers do to the request in between.
        install(inner, self._guard, own_calls=True)

    def _inner(self) -> Any:
        return self._client

    @property
    def allowlist(self) -> ModelAllowlist:
        self._inner()
        return self._guard.allowlist

    @property
    def client(self) -> Any:
        """The wrapped boto3 client, for code that needs it raw (a framework's `client=`).

        Its calls skip this client's typed errors, retries and log event, but not the allowlist: from
        the moment it is handed out, every request it sends (and every URL it presigns) is checked on the
        wire against this client's allowlist, for as long as it lives.
        """
        inner = self._inner()
        install(inner, self._guard)
        return inner

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never recurse through a half-built instance
            raise AttributeError(name)
        inner = self._inner()
        spec = self._specs.get(name)
        if spec is None:
            if name not in PASS_THROUGH:
                raise AttributeError(
                    f"{type(self).__name__} has no attribute {name!r} (only the operations and "
                    f"{', '.join(sorted(PASS_THROUGH))} of the boto3 client are reachable through it)"
                )
            return getattr(inner, name)
        method = self._guarded(spec)
        method.__name__ = spec.method
        method.__qualname__ = f"{type(self).__name__}.{spec.method}"
        method.__doc__ = getattr(inner, spec.method).__doc__
        # Cached on the instance: later lookups skip __getattr__ (a benign race between threads).
        object.__setattr__(self, name, method)
        return method

    def __dir__(self) -> Iterable[str]:
        specs = getattr(self, "_specs", {})  # what __getattr__ answers, nothing it would refuse
        return sorted({*super().__dir__(), *specs, *PASS_THROUGH})

    def _guarded(self, spec: OperationSpec) -> Callable[..., Any]:
        raise NotImplementedError


class SafeBedrockClient(GuardedShell, _ClientBase):
    """A drop-in for `boto3.client("bedrock-runtime")` that only calls allowlisted models.

    Every operation of the service is here with boto3's arguments and return values. Calls that address
    a model are checked against the allowlist before anything is sent; errors are raised as the typed
    errors of `safe_bedrock.errors` (still botocore `ClientError`s); transient failures are retried by one
    policy; every call leaves one log event. Added in version 0.1.0.
    """

    def __init__(
        self,
        *,
        allow: ModelAllowlist | Iterable[str],
        client: Any = None,
        session: boto3.session.Session | None = None,
        region_name: str | None = None,
        config: Config | None = None,
        endpoint_url: str | None = None,
        retry: RetryConfig | None = None,
        hooks: Sequence[CallHook] = (),
        body_logging: BodyLogging | None = None,
    ) -> None:
        allowlist = coerce_allowlist(allow)
        if client is not None:
            building = session is not None or region_name is not None or config is not None or endpoint_url
            inner = check_wrapped_client(client, building=building, kind="boto3", stacklevel=2)
        else:
            session = session or boto3.session.Session()
            try:
                inner = session.client(
                    SERVICE,
                    region_name=region_name,
                    config=no_retry_config(config),
                    endpoint_url=endpoint_url,
                )
            except CREDENTIALS_ERRORS as exc:  # partial credentials in the environment fail here already
                raise credentials_error(exc, operation=None, endpoint_url=endpoint_url) from exc
        self._wrap(inner, allowlist=allowlist, retry=retry, hooks=hooks, body_logging=body_logging)

    def __repr__(self) -> str:
        return f"<SafeBedrockClient region={self._guard.region!r} allow={self._guard.allowlist!r}>"

    def __enter__(self) -> SafeBedrockClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the boto3 client's connections, as boto3's `close()` does."""
        self._client.close()

    def _guarded(self, spec: OperationSpec) -> Callable[..., Any]:
        operation, guard, member = getattr(self._client, spec.method), self._guard, spec.stream_member

        def attempt(call: Call, kwargs: dict[str, Any]) -> Any:
            with guard.attempt(call):
                response = operation(**kwargs)
            return response if member is None else wrap_stream(guard, call, response, member)

        def method(**kwargs: Any) -> Any:
            call = guard.begin(spec, kwargs)
            try:
                response = call_with_retries(lambda: attempt(call, kwargs), config=guard.retry)
            except BaseException as exc:
                guard.failed(call, exc)
                raise
            return guard.succeeded(call, response)

        return method
