"""AsyncSafeBedrockClient: aiobotocore's bedrock-runtime client with a guard at the door (the async shell).

The rules are the sync client's, from the same code (`Guard`, the retry policy, the stream wrapper): this
module only awaits. Needs the `aio` extra (aiobotocore): `pip install 'safe-bedrock[aio]'`.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

try:
    from aiobotocore.client import AioBaseClient
    from aiobotocore.session import AioSession
except ImportError as exc:  # pragma: no cover - only without the extra
    raise ImportError(
        "AsyncSafeBedrockClient needs aiobotocore: install the extra with pip install 'safe-bedrock[aio]'"
    ) from exc

from safe_bedrock._client import SERVICE, GuardedShell, check_wrapped_client
from safe_bedrock._guard import coerce_allowlist
from safe_bedrock._retry import acall_with_retries, no_retry_config
from safe_bedrock._stream import awrap_stream
from safe_bedrock._translate import CREDENTIALS_ERRORS, credentials_error

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from botocore.config import Config
    from types_aiobotocore_bedrock_runtime import BedrockRuntimeClient

    from safe_bedrock._allowlist import ModelAllowlist
    from safe_bedrock._guard import Call
    from safe_bedrock._observe import BodyLogging, CallHook
    from safe_bedrock._retry import RetryConfig
    from safe_bedrock._service import OperationSpec

    # A user's type checker sees aiobotocore's methods, arguments and return types (types-aiobotocore).
    _ClientBase = BedrockRuntimeClient
else:
    _ClientBase = object


class AsyncSafeBedrockClient(GuardedShell, _ClientBase):
    """The async twin of `SafeBedrockClient`, on aiobotocore: the same methods with `await`/`async for`.

    ```python
    async with AsyncSafeBedrockClient(allow=["anthropic.claude-3-haiku-20240307-v1:0"],
                                      region_name="us-east-1") as client:
        response = await client.converse_stream(modelId=..., messages=[...])
        async with response["stream"] as events:
            async for event in events:
                ...
    ```

    Built this way it creates (and on exit closes) its own aiobotocore client, with botocore's retries
    off. Or wrap one you built: `AsyncSafeBedrockClient(allow=[...], client=aio_client)`, usable at once;
    `close()` then closes that client too, as the sync client does. The same allowlist, typed errors
    (mid-stream included), retry policy, log event and hooks as the sync client. Added in version 0.1.0.
    """

    def __init__(
        self,
        *,
        allow: ModelAllowlist | Iterable[str],
        client: Any = None,
        session: AioSession | None = None,
        region_name: str | None = None,
        config: Config | None = None,
        endpoint_url: str | None = None,
        retry: RetryConfig | None = None,
        hooks: Sequence[CallHook] = (),
        body_logging: BodyLogging | None = None,
    ) -> None:
        allowlist = coerce_allowlist(allow)
        self._stack: contextlib.AsyncExitStack | None = None
        if client is not None:
            building = session is not None or region_name is not None or config is not None or endpoint_url
            check_wrapped_client(client, building=building, kind="aiobotocore", stacklevel=2)
            if not isinstance(client, AioBaseClient):
                raise TypeError(
                    "client= must be an aiobotocore client (from AioSession().create_client(...)); "
                    "wrap a boto3 client with SafeBedrockClient instead"
                )
            self._wrap(client, allowlist=allowlist, retry=retry, hooks=hooks, body_logging=body_logging)
            return
        if session is not None and not isinstance(session, AioSession):
            raise TypeError(f"session= takes an aiobotocore AioSession, not {type(session).__name__}")
        self._client = None
        # Kept until __aenter__: aiobotocore creates clients inside an async context manager.
        self._pending: tuple[AioSession, dict[str, Any], ModelAllowlist, dict[str, Any]] = (
            session or AioSession(),
            {"region_name": region_name, "config": no_retry_config(config), "endpoint_url": endpoint_url},
            allowlist,
            {"retry": retry, "hooks": hooks, "body_logging": body_logging},
        )

    def _inner(self) -> Any:
        if self._client is None:
            raise RuntimeError(
                "AsyncSafeBedrockClient builds its aiobotocore client when entered: use "
                "`async with AsyncSafeBedrockClient(allow=[...], region_name=...) as client:`, "
                "or pass client= an aiobotocore bedrock-runtime client"
            )
        return self._client

    async def __aenter__(self) -> AsyncSafeBedrockClient:
        if self._client is None:
            session, create, allowlist, settings = self._pending
            stack = contextlib.AsyncExitStack()
            try:
                inner = await stack.enter_async_context(session.create_client(SERVICE, **create))
            except CREDENTIALS_ERRORS as exc:  # partial credentials in the environment fail here already
                await stack.aclose()
                raise credentials_error(exc, operation=None, endpoint_url=create["endpoint_url"]) from exc
            self._stack = stack
            self._wrap(inner, allowlist=allowlist, **settings)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # aiobotocore's close is a coroutine where botocore's is not; its own stubs ignore the same override.
    async def close(self) -> None:  # type: ignore[override]
        """Close the aiobotocore client (its connection pool)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        elif self._client is not None:
            await self._client.close()

    def __repr__(self) -> str:
        if self._client is None:
            return "<AsyncSafeBedrockClient (not entered)>"
        return f"<AsyncSafeBedrockClient region={self._guard.region!r} allow={self._guard.allowlist!r}>"

    def _guarded(self, spec: OperationSpec) -> Callable[..., Awaitable[Any]]:
        operation, guard, member = getattr(self._client, spec.method), self._guard, spec.stream_member

        async def attempt(call: Call, kwargs: dict[str, Any]) -> Any:
            with guard.attempt(call):
                response = await operation(**kwargs)
            return response if member is None else await awrap_stream(guard, call, response, member)

        async def method(**kwargs: Any) -> Any:
            call = guard.begin(spec, kwargs)
            try:
                response = await acall_with_retries(lambda: attempt(call, kwargs), config=guard.retry)
            except BaseException as exc:
                guard.failed(call, exc)
                raise
            return guard.succeeded(call, response)

        return method
