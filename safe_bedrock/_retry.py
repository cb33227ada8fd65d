"""The retry policy, run by tenacity for the sync and the async client alike (tenacity stays in here).

Whether: `is_transient` (transient service errors and connection failures, nothing else). When:
`RetryConfig` (stamina's parameters and backoff, through tenacity's strategies) or `Retry-After`. Streams:
the client reads the first event inside the retried function, so only a failure before anything reached
the caller is retried. One policy: `no_retry_config` turns botocore's own retries off.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar, cast

import tenacity
from botocore.config import Config
from botocore.eventstream import ParserError as EventStreamParserError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from botocore.exceptions import HTTPClientError
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from safe_bedrock.errors import TransientError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


_T = TypeVar("_T")

# The request may not have reached Bedrock, or its answer was cut off before the caller saw any of it.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    BotocoreConnectionError,  # unreachable endpoint, connect timeout, proxy and TLS failures
    HTTPClientError,  # read timeout, closed connection, broken response stream
    ProtocolError,  # while an event stream is read: "Response ended prematurely", "Connection broken"
    Urllib3ReadTimeoutError,  # while an event stream is read: no byte within read_timeout
    EventStreamParserError,  # a frame that fails its CRC or does not parse was damaged in transit
)


def _seconds(name: str, value: object) -> float:
    """Seconds as a float from a float/int or a timedelta (stamina's convention), finite and >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, timedelta)):
        raise TypeError(
            f"RetryConfig.{name} takes seconds as a float or a datetime.timedelta, not {type(value).__name__}"
        )
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"RetryConfig.{name} must be a finite number of seconds >= 0, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryConfig:
    """How safe-bedrock retries transient failures; the parameters mean what they mean in stamina.

    `attempts` counts every attempt including the first (1 = no retries). `timeout` caps the whole call,
    waits included: no attempt starts after it. The wait after the n-th failed attempt is
    `min(wait_max, wait_initial * wait_exp_base ** (n - 1) + uniform(0, wait_jitter))`; a `Retry-After`
    sent by the service replaces it (capped at `wait_max`). Durations take seconds or a
    `datetime.timedelta`; they are stored as float seconds.

    Added in version 0.1.0.
    """

    attempts: int = 3
    timeout: float | timedelta = 45.0
    wait_initial: float | timedelta = 0.5
    wait_max: float | timedelta = 10.0
    wait_exp_base: float = 2.0
    wait_jitter: float | timedelta = 1.0

    def __post_init__(self) -> None:
        attempts, base = self.attempts, self.wait_exp_base
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise TypeError(f"RetryConfig.attempts takes an int, not {type(attempts).__name__}")
        if attempts < 1:
            raise ValueError(
                f"RetryConfig.attempts counts the first attempt too, so it must be >= 1, got {attempts}"
                " (use RetryConfig.disabled() for no retries)"
            )
        if isinstance(base, bool) or not isinstance(base, (int, float)):
            raise TypeError(f"RetryConfig.wait_exp_base takes a float, not {type(base).__name__}")
        if not math.isfinite(base) or base < 1:
            raise ValueError(f"RetryConfig.wait_exp_base must be >= 1 (1 = constant waits), got {base!r}")
        if isinstance(self.wait_jitter, bool):
            warnings.warn(
                f"RetryConfig(wait_jitter={self.wait_jitter}) is deprecated: wait_jitter is the most seconds "
                f"of random jitter added to each wait now, as in stamina; write wait_jitter="
                f"{float(self.wait_jitter)}, which is what {self.wait_jitter} means now",
                DeprecationWarning,
                stacklevel=3,  # __post_init__ <- the dataclass __init__ <- the caller
            )
            object.__setattr__(self, "wait_jitter", float(self.wait_jitter))
        # Stored as float seconds, so equal policies compare equal whichever unit they were written in.
        for name in ("timeout", "wait_initial", "wait_max", "wait_jitter"):
            object.__setattr__(self, name, _seconds(name, getattr(self, name)))
        object.__setattr__(self, "wait_exp_base", float(base))
        timeout, initial, wait_max, _ = self._durations
        if timeout == 0:
            raise ValueError("RetryConfig.timeout must be > 0 seconds: it caps the whole call, waits too")
        if wait_max < initial:
            raise ValueError(
                f"RetryConfig.wait_max ({wait_max}s) is below wait_initial ({initial}s); "
                "wait_max caps every wait, so raise it or lower wait_initial"
            )

    @property
    def _durations(self) -> tuple[float, float, float, float]:  # stored as float seconds by __post_init__
        durations = (self.timeout, self.wait_initial, self.wait_max, self.wait_jitter)
        return cast("tuple[float, float, float, float]", durations)

    @classmethod
    def disabled(cls) -> RetryConfig:
        """One attempt, no retries."""
        return cls(attempts=1)


# The testing switch, as process-wide as stamina's: None when off, else (attempts override or None,).
_testing: tuple[int | None] | None = None


def _switch(state: tuple[int | None] | None) -> None:
    global _testing  # noqa: PLW0603 - one process-wide switch, like stamina's
    _testing = state


def set_testing(enabled: bool, *, attempts: int | None = None) -> contextlib.AbstractContextManager[object]:  # noqa: FBT001 - stamina's shape
    """Turn testing mode on or off: no waiting between attempts (and, with `attempts`, that many at most).

    `set_testing(True)` takes effect at once; `with set_testing(True): ...` restores the previous mode on
    exit. `attempts=1` turns retries off entirely; `None` keeps each client's configured attempts.
    Added in version 0.1.0.
    """
    if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1):
        raise ValueError(f"set_testing(attempts=...) takes an int >= 1 or None, got {attempts!r}")
    restore = contextlib.ExitStack()
    restore.callback(_switch, _testing)
    _switch((attempts,) if enabled else None)
    return restore


def is_testing() -> bool:
    """Whether testing mode (no waits) is on."""
    return _testing is not None


def is_transient(exc: BaseException) -> bool:
    """The default retry rule: transient service errors and connection failures, nothing else."""
    if isinstance(exc, (TransientError, *CONNECTION_ERRORS)):
        return True
    aiohttp = sys.modules.get("aiohttp")  # the async client's transport; the sync client never imports it
    return aiohttp is not None and isinstance(
        exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)
    )


def parse_retry_after(value: object, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP date; None when unreadable.

    `now` is the wall clock (`time.time()`) an HTTP date is measured against; a date in the past means 0.
    """
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if not isinstance(text, str):
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text.strip())
        except (TypeError, ValueError, IndexError):
            return None
        # RFC 9110 dates are GMT; an obsolete form without a zone means the same.
        return max(0.0, when.replace(tzinfo=when.tzinfo or timezone.utc).timestamp() - now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def retry_after_of(exc: BaseException | None, *, now: float) -> float | None:
    """The Retry-After an error's HTTP response carried, in seconds (botocore keeps the response)."""
    response = getattr(exc, "response", None)
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    headers = metadata.get("HTTPHeaders") if isinstance(metadata, dict) else None
    if not isinstance(headers, dict):
        return None
    # botocore lower-cases header names; a hand-built response may not.
    value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == "retry-after"), None)
    return None if value is None else parse_retry_after(value, now=now)


def max_attempts(config: RetryConfig) -> int:
    """How many attempts one call may make under `config` (testing mode's `attempts` overrides it)."""
    return config.attempts if _testing is None or _testing[0] is None else _testing[0]


def _policy(
    config: RetryConfig,
    is_retryable: Callable[[BaseException], bool],
    clock: Callable[[], float],
    now: Callable[[], float],
) -> dict[str, Any]:
    """tenacity's arguments for one call: our rule says whether, the backoff or Retry-After how long."""
    testing = _testing  # read once: a call keeps the mode it started in
    attempts = max_attempts(config)
    timeout, initial, wait_max, jitter = config._durations
    # stamina's backoff, min(wait_max, wait_initial * wait_exp_base ** (n - 1) + uniform(0, wait_jitter)),
    # from tenacity strategies every tenacity since 8.2 has (the sum is capped at wait_max below).
    exponential = tenacity.wait_exponential(multiplier=initial, max=wait_max, exp_base=config.wait_exp_base)
    backoff = exponential + tenacity.wait_random(0, jitter)
    started = clock()

    def retry(state: tenacity.RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome is not None else None
        # KeyboardInterrupt, SystemExit and task cancellation always go straight through.
        return isinstance(error, Exception) and is_retryable(error)

    def wait(state: tenacity.RetryCallState) -> float:
        if testing is not None:
            return 0.0
        retry_after = retry_after_of(state.outcome.exception() if state.outcome else None, now=now())
        seconds = backoff(state) if retry_after is None else retry_after
        return max(0.0, min(seconds, wait_max, timeout - (clock() - started)))

    def stop(state: tenacity.RetryCallState) -> bool:
        return state.attempt_number >= attempts or clock() - started >= timeout

    # A retryable error we give up on is raised as it is (reraise), never as a tenacity.RetryError.
    return {"retry": retry, "wait": wait, "stop": stop, "reraise": True}


def call_with_retries(
    fn: Callable[[], _T],
    *,
    config: RetryConfig,
    is_retryable: Callable[[BaseException], bool] = is_transient,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], float] = time.time,
) -> _T:
    """`fn()` under the policy; the final error is raised as `fn` raised it. sleep/clock/now: test seams."""
    return tenacity.Retrying(sleep=sleep, **_policy(config, is_retryable, clock, now))(fn)


async def acall_with_retries(
    fn: Callable[[], Awaitable[_T]],
    *,
    config: RetryConfig,
    is_retryable: Callable[[BaseException], bool] = is_transient,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], float] = time.time,
) -> _T:
    """`call_with_retries` for a function returning an awaitable (a lambda, too), waiting with `sleep`."""

    async def attempt() -> _T:  # tenacity awaits only what a coroutine function returns
        return await fn()

    retrying = tenacity.AsyncRetrying(sleep=sleep, **_policy(config, is_retryable, clock, now))
    return cast("_T", await retrying(attempt))


def botocore_retries_active(client: object) -> bool:
    """Whether a boto3/aiobotocore client still retries on its own (so our attempts would multiply).

    botocore resolves Config, AWS_MAX_ATTEMPTS and ~/.aws/config into `client.meta.config.retries`, where
    `max_attempts` counts retries only; with no count there, its mode's default (3 or 5 attempts) retries.
    """
    retries = getattr(getattr(getattr(client, "meta", None), "config", None), "retries", None)
    retries = retries if isinstance(retries, dict) else {}
    total, extra = retries.get("total_max_attempts"), retries.get("max_attempts")
    return total > 1 if isinstance(total, int) else extra > 0 if isinstance(extra, int) else True


def no_retry_config(config: Config | None) -> Config:
    """The user's Config (or a new one) with botocore's retries off: one attempt per safe-bedrock attempt.

    The retry mode is kept (adaptive mode's client-side rate limiting still applies); attempt counts go.
    """
    if config is not None and not isinstance(config, Config):
        raise TypeError(f"config= takes a botocore.config.Config, not {type(config).__name__}")
    theirs = getattr(config, "retries", None)  # botocore-stubs do not declare Config's option attributes
    kept = {k: v for k, v in (theirs or {}).items() if k not in {"max_attempts", "total_max_attempts"}}
    mine = Config(retries=cast("Any", {**kept, "total_max_attempts": 1}))
    return mine if config is None else config.merge(mine)
