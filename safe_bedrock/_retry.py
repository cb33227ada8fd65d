"""The retry policy: one decision, used by the sync and the async runner (tenacity stays in here).

What is retried: `TransientError` (throttling, model not ready, model timeout, service unavailable, internal
server error, model stream error) and connection-level failures (botocore `ConnectionError` and
`HTTPClientError`: endpoint unreachable, connect/read timeout, connection closed, response streaming error;
urllib3 `ProtocolError` and `ReadTimeoutError`, raised unwrapped while an event stream is read). Never
access, validation, not-found, quota or model errors: resending the same request cannot change their
answer. The runners see errors as the client raises them, so the client translates botocore errors
(`_translate.translate`) inside the retried function.

How long: at most `RetryConfig.attempts` attempts in all, and no new attempt once `RetryConfig.timeout`
seconds have passed since the first began (waits included). Between attempts the wait is exponential with
full jitter, `uniform(0, min(wait_max, wait_initial * wait_exp_base ** (n - 1)))` after the n-th attempt,
unless the error carries a `Retry-After` header (seconds or an HTTP date): then that, capped at `wait_max`.
Every wait is also capped at the time left.

Streams: a stream is retried only while nothing has reached the caller. The client opens the stream *and
reads its first event* inside the retried function (an `EventStreamError` as the first frame is a failure
of that attempt); once the first event is handed to the caller the stream lives outside the runner, so a
later failure propagates with `mid_stream=True` and is never retried: no silent duplicate answer.

No multiplied retries: botocore retries on its own too (3 attempts in its default "standard" mode).
`no_retry_config` turns that off for clients safe-bedrock builds; `botocore_retries_active` lets the client
warn once about a client that was handed in still retrying (each of our attempts may then be several).
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import sys
import time
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
    from types import TracebackType

__all__ = [
    "RetryConfig",
    "RetryDetails",
    "acall_with_retries",
    "botocore_retries_active",
    "call_with_retries",
    "is_testing",
    "is_transient",
    "next_wait",
    "no_retry_config",
    "parse_retry_after",
    "retry_after_of",
    "set_testing",
]

_T = TypeVar("_T")

# Connection-level failures: the request may not have reached Bedrock, or its answer was cut off before
# the caller saw any of it. HTTPClientError covers read timeouts, closed connections and broken streams;
# botocore's ConnectionError covers unreachable endpoints, connect timeouts, proxy and TLS failures. While
# an event stream is read, urllib3's own errors come through unwrapped: ProtocolError ("Response ended
# prematurely", "Connection broken") and ReadTimeoutError (no byte within read_timeout).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    BotocoreConnectionError,
    HTTPClientError,
    ProtocolError,
    Urllib3ReadTimeoutError,
    # An event-stream frame that fails its CRC or does not parse was damaged in transit. Streams are only
    # retried before their first event reaches the caller, so resending then duplicates nothing.
    EventStreamParserError,
)

# Exponents beyond this overflow a float long before any sane wait_max; the wait is wait_max by then.
_MAX_EXPONENT = 1000


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


def _as_float(value: float | timedelta) -> float:
    # RetryConfig stores float seconds; the annotation still admits the timedelta it was built from.
    return value.total_seconds() if isinstance(value, timedelta) else value


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryConfig:
    """How safe-bedrock retries transient failures.

    `attempts` counts every attempt including the first (1 = no retries). `timeout` caps the whole call,
    waits included: no attempt starts after it. Waits grow as `wait_initial * wait_exp_base ** (n - 1)`
    up to `wait_max`; with `wait_jitter` (the default) each wait is drawn uniformly between 0 and that
    value ("full jitter"), so clients throttled together do not come back together. A `Retry-After` sent
    by the service replaces the computed wait (capped at `wait_max`). Durations take seconds or a
    `datetime.timedelta`; they are stored as float seconds.
    """

    attempts: int = 3
    timeout: float | timedelta = 45.0
    wait_initial: float | timedelta = 0.5
    wait_max: float | timedelta = 10.0
    wait_exp_base: float = 2.0
    wait_jitter: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise TypeError(f"RetryConfig.attempts takes an int, not {type(self.attempts).__name__}")
        if self.attempts < 1:
            raise ValueError(
                f"RetryConfig.attempts counts the first attempt too, so it must be >= 1, got {self.attempts}"
                " (use RetryConfig.disabled() for no retries)"
            )
        timeout = _seconds("timeout", self.timeout)
        if timeout == 0:
            raise ValueError(
                "RetryConfig.timeout must be > 0 seconds: it caps the whole call, waits included"
            )
        wait_initial = _seconds("wait_initial", self.wait_initial)
        wait_max = _seconds("wait_max", self.wait_max)
        if wait_max < wait_initial:
            raise ValueError(
                f"RetryConfig.wait_max ({wait_max}s) is below wait_initial ({wait_initial}s); "
                "wait_max caps every wait, so raise it or lower wait_initial"
            )
        base = self.wait_exp_base
        if isinstance(base, bool) or not isinstance(base, (int, float)):
            raise TypeError(f"RetryConfig.wait_exp_base takes a float, not {type(base).__name__}")
        if not math.isfinite(base) or base < 1:
            raise ValueError(f"RetryConfig.wait_exp_base must be >= 1 (1 = constant waits), got {base!r}")
        if not isinstance(self.wait_jitter, bool):
            raise TypeError(f"RetryConfig.wait_jitter takes a bool, not {type(self.wait_jitter).__name__}")
        # Normalised so that equal policies compare equal whichever unit they were written in.
        object.__setattr__(self, "timeout", timeout)
        object.__setattr__(self, "wait_initial", wait_initial)
        object.__setattr__(self, "wait_max", wait_max)
        object.__setattr__(self, "wait_exp_base", float(base))

    @classmethod
    def disabled(cls) -> RetryConfig:
        """One attempt, no retries."""
        return cls(attempts=1)


@dataclass(frozen=True, slots=True)
class RetryDetails:
    """Handed to `on_retry` before each wait: what failed, and how long the runner waits now."""

    attempt: int  # the attempt that just failed, 1-based
    wait: float  # seconds the runner waits before the next attempt (0 in testing mode)
    elapsed: float  # seconds since the first attempt began
    retry_after: float | None  # what the service asked for, in seconds, when it did
    error: BaseException


# ---------------------------------------------------------------------------------------------------------
# The testing switch (modelled on stamina.set_testing)


@dataclass(frozen=True, slots=True)
class _Testing:
    attempts: int | None


_testing: _Testing | None = None


class _TestingSwitch:
    """What `set_testing` returns: the switch is already flipped; used as a context manager it flips back."""

    __slots__ = ("_previous",)

    def __init__(self, previous: _Testing | None) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        global _testing  # noqa: PLW0603 - one process-wide switch, like stamina's
        _testing = self._previous


def set_testing(enabled: bool, *, attempts: int | None = None) -> _TestingSwitch:  # noqa: FBT001 - stamina's shape
    """Turn testing mode on or off: no waiting between attempts (and, with `attempts`, that many at most).

    `set_testing(True)` takes effect at once; `with set_testing(True): ...` restores the previous mode on
    exit. `attempts=1` turns retries off entirely; `None` keeps each client's configured attempts.
    """
    global _testing  # noqa: PLW0603 - one process-wide switch, like stamina's
    if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1):
        raise ValueError(f"set_testing(attempts=...) takes an int >= 1 or None, got {attempts!r}")
    previous = _testing
    _testing = _Testing(attempts=attempts) if enabled else None
    return _TestingSwitch(previous)


def is_testing() -> bool:
    """Whether testing mode (no waits) is on."""
    return _testing is not None


# ---------------------------------------------------------------------------------------------------------
# The decision (sans-I/O)


def is_transient(exc: BaseException) -> bool:
    """The default retry rule: transient service errors and connection failures, nothing else."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, CONNECTION_ERRORS):
        return True
    # The async client's transport raises aiohttp's own errors while reading a body; look them up only when
    # aiohttp is already loaded, so the sync client never imports it.
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is not None:
        return isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError))
    return False


def parse_retry_after(value: object, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP date; None when unreadable.

    `now` is the wall clock (`time.time()`) an HTTP date is measured against; a date in the past means 0.
    """
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; an obsolete form without a zone means the same
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def retry_after_of(exc: BaseException, *, now: float) -> float | None:
    """The Retry-After an error's HTTP response carried, in seconds (botocore keeps the response)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    metadata = response.get("ResponseMetadata")
    headers = metadata.get("HTTPHeaders") if isinstance(metadata, dict) else None
    if not isinstance(headers, dict):
        return None
    value = headers.get("retry-after")
    if value is None:  # botocore lower-cases header names; a hand-built response may not
        value = next(
            (v for k, v in headers.items() if isinstance(k, str) and k.lower() == "retry-after"), None
        )
    return None if value is None else parse_retry_after(value, now=now)


def backoff(config: RetryConfig, *, attempt: int, rand: Callable[[], float] = random.random) -> float:
    """The computed wait after the `attempt`-th failure (1-based), before the Retry-After and time caps."""
    wait_max = _as_float(config.wait_max)
    exponent = min(attempt - 1, _MAX_EXPONENT)
    try:
        ceiling = min(wait_max, _as_float(config.wait_initial) * config.wait_exp_base**exponent)
    except OverflowError:
        ceiling = wait_max
    return rand() * ceiling if config.wait_jitter else ceiling


def next_wait(
    config: RetryConfig,
    *,
    attempt: int,
    elapsed: float,
    retry_after: float | None,
    max_attempts: int | None = None,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None to give up (for a retryable error).

    `attempt` is the number of attempts made so far, `elapsed` the seconds since the first began,
    `retry_after` what the service asked for (seconds), `max_attempts` an override of `config.attempts`.
    """
    limit = config.attempts if max_attempts is None else max_attempts
    if attempt >= limit:
        return None
    remaining = _as_float(config.timeout) - elapsed
    if remaining <= 0:
        return None
    if retry_after is not None:
        wait = min(retry_after, _as_float(config.wait_max))
    else:
        wait = backoff(config, attempt=attempt, rand=rand)
    return max(0.0, min(wait, remaining))


class _Run:
    """One call's retry state; its `decide` is the single decision both runners (and tenacity) consult."""

    __slots__ = (
        "attempts",
        "clock",
        "config",
        "is_retryable",
        "max_attempts",
        "now",
        "on_retry",
        "pending",
        "rand",
        "started",
        "testing",
    )

    def __init__(
        self,
        config: RetryConfig,
        *,
        is_retryable: Callable[[BaseException], bool],
        on_retry: Callable[[RetryDetails], None] | None,
        clock: Callable[[], float],
        now: Callable[[], float],
        rand: Callable[[], float],
    ) -> None:
        if not isinstance(config, RetryConfig):
            raise TypeError(f"config= takes a RetryConfig, not {type(config).__name__}")
        testing = _testing  # read once: a call keeps the mode it started in
        self.config = config
        self.is_retryable = is_retryable
        self.on_retry = on_retry
        self.clock = clock
        self.now = now
        self.rand = rand
        self.testing = testing is not None
        self.max_attempts = testing.attempts if testing is not None else None
        self.started = clock()
        self.attempts = 0
        self.pending: RetryDetails | None = None

    @property
    def single(self) -> bool:
        limit = self.config.attempts if self.max_attempts is None else self.max_attempts
        return limit <= 1

    def decide(self, exc: BaseException) -> RetryDetails | None:
        """After a failed attempt: the wait before the next one, or None to raise `exc` as it is."""
        self.pending = None
        # KeyboardInterrupt, SystemExit and task cancellation always go straight through.
        if not isinstance(exc, Exception) or not self.is_retryable(exc):
            return None
        elapsed = self.clock() - self.started
        retry_after = retry_after_of(exc, now=self.now())
        wait = next_wait(
            self.config,
            attempt=self.attempts,
            elapsed=elapsed,
            retry_after=retry_after,
            max_attempts=self.max_attempts,
            rand=self.rand,
        )
        if wait is None:
            return None
        if self.testing:
            wait = 0.0
        self.pending = RetryDetails(
            attempt=self.attempts, wait=wait, elapsed=elapsed, retry_after=retry_after, error=exc
        )
        return self.pending

    # tenacity's hooks, all reading the one decision. tenacity asks `retry` first, then `wait`, then
    # `stop`; a retryable error we give up on answers "do not retry", which makes tenacity re-raise the
    # error itself (never a tenacity.RetryError).
    def _retry(self, state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        error = outcome.exception()
        return error is not None and self.decide(error) is not None

    def _wait(self, _state: tenacity.RetryCallState) -> float:
        return self.pending.wait if self.pending is not None else 0.0

    def _before_sleep(self, _state: tenacity.RetryCallState) -> None:
        if self.on_retry is not None and self.pending is not None:
            self.on_retry(self.pending)

    def retrying_kwargs(self) -> dict[str, Any]:
        return {
            "retry": self._retry,
            "wait": self._wait,
            "stop": tenacity.stop_never,
            "before_sleep": self._before_sleep,
            "reraise": True,
        }


def _no_sleep(_seconds: float) -> None:
    return None


async def _no_async_sleep(_seconds: float) -> None:
    return None


def call_with_retries(
    fn: Callable[[], _T],
    *,
    config: RetryConfig,
    is_retryable: Callable[[BaseException], bool] = is_transient,
    on_retry: Callable[[RetryDetails], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], float] = time.time,
    rand: Callable[[], float] = random.random,
) -> tuple[_T, int]:
    """Call `fn` under the policy; returns its result and the number of attempts it took.

    The final error is raised as `fn` raised it (never wrapped). `sleep`, `clock`, `now` and `rand` are
    seams for tests; the defaults are the real ones.
    """
    run = _Run(config, is_retryable=is_retryable, on_retry=on_retry, clock=clock, now=now, rand=rand)
    run.attempts = 1
    # The first attempt runs outside tenacity: building a Retrying costs ~13 us, and most calls succeed at
    # once. Its failure goes through the same `decide` as every later one.
    if run.single:
        return fn(), 1
    try:
        return fn(), 1
    except Exception as exc:
        details = run.decide(exc)
        if details is None:
            raise
    if on_retry is not None:
        on_retry(details)
    if not run.testing:
        sleep(details.wait)

    def attempt() -> _T:
        run.attempts += 1
        return fn()

    retrying = tenacity.Retrying(sleep=_no_sleep if run.testing else sleep, **run.retrying_kwargs())
    return retrying(attempt), run.attempts


async def acall_with_retries(
    fn: Callable[[], Awaitable[_T]],
    *,
    config: RetryConfig,
    is_retryable: Callable[[BaseException], bool] = is_transient,
    on_retry: Callable[[RetryDetails], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], float] = time.time,
    rand: Callable[[], float] = random.random,
) -> tuple[_T, int]:
    """`call_with_retries` for a coroutine function; waits with `asyncio.sleep` (tenacity's AsyncRetrying)."""
    run = _Run(config, is_retryable=is_retryable, on_retry=on_retry, clock=clock, now=now, rand=rand)
    run.attempts = 1
    if run.single:
        return await fn(), 1
    try:
        return await fn(), 1
    except Exception as exc:
        details = run.decide(exc)
        if details is None:
            raise
    if on_retry is not None:
        on_retry(details)
    if not run.testing:
        await sleep(details.wait)

    async def attempt() -> _T:
        run.attempts += 1
        return await fn()

    retrying = tenacity.AsyncRetrying(
        sleep=_no_async_sleep if run.testing else sleep, **run.retrying_kwargs()
    )
    result: _T = await retrying(attempt)
    return result, run.attempts


# ---------------------------------------------------------------------------------------------------------
# botocore's own retries


def _total_attempts(retries: object) -> int | None:
    """botocore's total attempts from a `retries` dict (`max_attempts` there counts retries only)."""
    if not isinstance(retries, dict):
        return None
    total = retries.get("total_max_attempts")
    if isinstance(total, int) and not isinstance(total, bool):
        return total
    extra = retries.get("max_attempts")
    if isinstance(extra, int) and not isinstance(extra, bool):
        return extra + 1
    return None


def botocore_retries_active(client: object) -> bool:
    """Whether a boto3/aiobotocore client still retries on its own (so our attempts would multiply).

    botocore resolves the retry settings when it builds a client (Config, then AWS_MAX_ATTEMPTS /
    ~/.aws/config) into `client.meta.config.retries`; with no attempt count there, its mode's default
    applies (3 for "standard" and "adaptive", 5 for "legacy"), which retries.
    """
    meta = getattr(client, "meta", None)
    config = getattr(meta, "config", None)
    total = _total_attempts(getattr(config, "retries", None))
    return total is None or total > 1


def no_retry_config(config: Config | None) -> Config:
    """The user's Config (or a new one) with botocore's retries off: one attempt per safe-bedrock attempt.

    The retry mode the user chose is kept (adaptive mode's client-side rate limiting still applies);
    attempt counts are replaced, since safe-bedrock's RetryConfig is the one place attempts are set.
    """
    if config is not None and not isinstance(config, Config):
        raise TypeError(f"config= takes a botocore.config.Config, not {type(config).__name__}")
    retries: dict[str, Any] = {}
    theirs = getattr(config, "retries", None)  # botocore-stubs do not declare Config's option attributes
    if isinstance(theirs, dict):
        retries = {k: v for k, v in theirs.items() if k not in {"max_attempts", "total_max_attempts"}}
    retries["total_max_attempts"] = 1
    mine = Config(retries=cast("Any", retries))
    return mine if config is None else config.merge(mine)
