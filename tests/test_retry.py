"""The retry policy: what is retried, how often, how long it waits, and the testing switch."""

from __future__ import annotations

import asyncio
import email.utils
import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    EventStreamError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from safe_bedrock import errors
from safe_bedrock._retry import (
    RetryConfig,
    acall_with_retries,
    call_with_retries,
    is_testing,
    is_transient,
    parse_retry_after,
    retry_after_of,
    set_testing,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

URL = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse"


@pytest.fixture(autouse=True)
def _testing_off() -> Iterator[None]:
    # Every test starts and ends with the process-wide switch off, whatever a failing test left behind.
    with set_testing(False):
        yield


def throttled(**fields: Any) -> errors.ThrottlingError:
    return errors.ThrottlingError(
        code="ThrottlingException", message="Too many requests", operation="Converse", **fields
    )


def with_retry_after(value: str) -> errors.ThrottlingError:
    # The shape botocore gives a 429: lower-cased header names under ResponseMetadata.HTTPHeaders.
    response = {
        "Error": {"Code": "ThrottlingException", "Message": "Too many requests"},
        "ResponseMetadata": {
            "RequestId": "req-1",
            "HTTPStatusCode": 429,
            "HTTPHeaders": {"x-amzn-errortype": "ThrottlingException", "retry-after": value},
        },
    }
    return throttled(response=response, http_status=429)


class Script:
    """A function that fails with the given errors in turn, then returns "done"; counts its calls."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


class Clock:
    """A monotonic clock the test moves: each attempt and each sleep advance it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run(
    fn: Callable[[], str], config: RetryConfig, clock: Clock | None = None, **kwargs: Any
) -> tuple[str, int]:
    """Call `fn` under the policy on the test's clock; returns its result and the attempts it took."""
    clock = clock or Clock()
    attempts = 0

    def attempt() -> str:
        nonlocal attempts
        attempts += 1
        return fn()

    return call_with_retries(attempt, config=config, sleep=clock.sleep, clock=clock, **kwargs), attempts


# ---------------------------------------------------------------------------------------------------------
# RetryConfig


def test_config_defaults_are_three_attempts_within_45_seconds() -> None:
    config = RetryConfig()
    assert (config.attempts, config.timeout, config.wait_initial, config.wait_max) == (3, 45.0, 0.5, 10.0)
    assert (config.wait_exp_base, config.wait_jitter) == (2.0, 1.0)  # wait_jitter in seconds, as in stamina


def test_config_takes_timedeltas_and_equals_the_same_policy_in_seconds() -> None:
    config = RetryConfig(
        timeout=timedelta(seconds=45),
        wait_initial=timedelta(milliseconds=500),
        wait_jitter=timedelta(seconds=1),
    )
    assert config == RetryConfig()
    assert (config.timeout, config.wait_jitter) == (45.0, 1.0)


def test_config_is_frozen_and_keyword_only() -> None:
    config = RetryConfig()
    with pytest.raises(AttributeError):
        config.attempts = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        RetryConfig(5)  # type: ignore[misc]


def old_style(jitter: bool) -> RetryConfig:
    return RetryConfig(wait_jitter=jitter)


@pytest.mark.parametrize(("old", "new"), [(True, 1.0), (False, 0.0)])
def test_a_bool_wait_jitter_still_works_with_a_deprecation_warning_pointing_at_the_caller(
    old: bool,
    new: float,
) -> None:
    with pytest.warns(
        DeprecationWarning, match=rf"write wait_jitter={new}, which is what {old} means now"
    ) as caught:
        config = old_style(old)
    (warning,) = caught
    assert "wait_jitter is the most seconds of random jitter added to each wait" in str(warning.message)
    assert (warning.filename, warning.lineno) == (__file__, old_style.__code__.co_firstlineno + 1)
    assert config == RetryConfig(wait_jitter=new)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"attempts": 0}, ValueError, "counts the first attempt too"),
        ({"attempts": 1.5}, TypeError, "attempts takes an int"),
        ({"attempts": True}, TypeError, "attempts takes an int"),
        ({"timeout": 0}, ValueError, "timeout must be > 0"),
        ({"timeout": -1.0}, ValueError, "finite number of seconds >= 0"),
        ({"timeout": math.inf}, ValueError, "finite number of seconds"),
        ({"timeout": "45"}, TypeError, "float or a datetime.timedelta, not str"),
        ({"wait_initial": math.nan}, ValueError, "finite"),
        ({"wait_initial": 5.0, "wait_max": 1.0}, ValueError, r"wait_max \(1.0s\) is below wait_initial"),
        ({"wait_exp_base": 0.5}, ValueError, "wait_exp_base must be >= 1"),
        ({"wait_exp_base": "2"}, TypeError, "wait_exp_base takes a float"),
        ({"wait_jitter": "full"}, TypeError, "wait_jitter takes seconds as a float or a datetime.timedelta"),
        ({"wait_jitter": -0.5}, ValueError, "wait_jitter must be a finite number of seconds >= 0"),
    ],
)
def test_config_rejects_nonsense_with_a_message_naming_the_field(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        RetryConfig(**kwargs)


def test_disabled_config_makes_exactly_one_attempt() -> None:
    script = Script(throttled())
    with pytest.raises(errors.ThrottlingError):
        run(script, RetryConfig.disabled())
    assert script.calls == 1
    assert RetryConfig.disabled().attempts == 1


# ---------------------------------------------------------------------------------------------------------
# What is retried


def test_a_transient_error_is_retried_until_the_call_succeeds() -> None:
    clock = Clock()
    script = Script(throttled(), throttled())
    assert run(script, RetryConfig(), clock) == ("done", 3)
    assert len(clock.sleeps) == 2


def test_a_first_attempt_success_reports_one_attempt_and_never_sleeps() -> None:
    clock = Clock()
    assert run(Script(), RetryConfig(), clock) == ("done", 1)
    assert clock.sleeps == []


def test_the_attempt_cap_raises_the_last_error_itself_after_that_many_attempts() -> None:
    last = throttled()
    script = Script(throttled(), throttled(), throttled(), last)
    clock = Clock()
    with pytest.raises(errors.ThrottlingError) as caught:
        run(script, RetryConfig(attempts=4), clock)
    assert caught.value is last  # never a tenacity RetryError, never a wrapper
    assert script.calls == 4
    assert len(clock.sleeps) == 3


TRANSIENT = [
    errors.ThrottlingError,
    errors.ModelNotReadyError,
    errors.ModelTimeoutError,
    errors.ServiceUnavailableError,
    errors.InternalServerError,
    errors.ModelStreamError,
]


@pytest.mark.parametrize("klass", TRANSIENT)
def test_every_transient_error_class_is_retried(klass: type[errors.TransientError]) -> None:
    script = Script(klass(code="X", message="m", operation="InvokeModel"))
    assert run(script, RetryConfig()) == ("done", 2)


CONNECTION = [
    EndpointConnectionError(endpoint_url=URL),
    ConnectTimeoutError(endpoint_url=URL),
    ReadTimeoutError(endpoint_url=URL),
    ConnectionClosedError(endpoint_url=URL),
    ResponseStreamingError(error=ProtocolError("Connection broken: IncompleteRead")),
    ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer")),
    # What botocore lets through while reading an event stream: a cut connection, a silent server.
    ProtocolError("Response ended prematurely"),
    Urllib3ReadTimeoutError(None, "/model/m/converse-stream", "Read timed out."),
]


@pytest.mark.parametrize("error", CONNECTION, ids=lambda e: type(e).__name__)
def test_connection_failures_are_retried(error: Exception) -> None:
    assert is_transient(error)
    assert run(Script(error), RetryConfig()) == ("done", 2)


NOT_RETRIED = [
    errors.AccessDeniedError(code="AccessDeniedException", message="no", operation="Converse"),
    errors.MissingPermissionError(code="AccessDeniedException", message="no", operation="Converse"),
    errors.ExpiredCredentialsError(code="ExpiredTokenException", message="expired", operation="Converse"),
    errors.ModelNotAllowedError(code="AccessDeniedException", message="not allowed", operation="Converse"),
    errors.InvalidRequestError(code="ValidationException", message="bad", operation="Converse"),
    errors.ModelNotFoundError(code="ResourceNotFoundException", message="none", operation="Converse"),
    errors.QuotaExceededError(code="ServiceQuotaExceededException", message="quota", operation="Converse"),
    errors.ModelError(code="ModelErrorException", message="model", operation="Converse"),
    errors.InvalidModelIdError(model_id="x y", problem="contains a space", fix="remove it"),
    ValueError("a bug in the caller"),
]


@pytest.mark.parametrize("error", NOT_RETRIED, ids=lambda e: type(e).__name__)
def test_access_validation_not_found_and_other_errors_are_never_retried(error: Exception) -> None:
    script = Script(error)
    clock = Clock()
    with pytest.raises(type(error)) as caught:
        run(script, RetryConfig(attempts=5), clock)
    assert caught.value is error
    assert script.calls == 1
    assert clock.sleeps == []


def test_a_retry_flag_on_a_non_transient_class_does_not_make_it_retried() -> None:
    # The class is the contract: access errors stay final even if a response claimed otherwise.
    error = errors.AccessDeniedError(
        code="AccessDeniedException", message="no", operation="X", retryable=True
    )
    assert not is_transient(error)


def test_an_interrupt_goes_straight_through_without_a_retry() -> None:
    script = Script(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run(script, RetryConfig(attempts=5))
    assert script.calls == 1


def test_a_custom_rule_decides_instead_of_the_default() -> None:
    script = Script(ValueError("flaky"), ValueError("flaky"))
    result = run(script, RetryConfig(), is_retryable=lambda exc: isinstance(exc, ValueError))
    assert result == ("done", 3)


# ---------------------------------------------------------------------------------------------------------
# How long it waits


def failing(times: int) -> Script:
    return Script(*(throttled() for _ in range(times)))


def test_waits_grow_exponentially_up_to_wait_max_without_jitter() -> None:
    clock = Clock()
    run(failing(7), RetryConfig(attempts=8, wait_jitter=0, timeout=1000), clock)
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_a_huge_attempt_number_waits_wait_max_instead_of_overflowing() -> None:
    clock = Clock()  # 10.0 ** 400 overflows a float
    run(failing(400), RetryConfig(attempts=401, wait_jitter=0, wait_exp_base=10.0, timeout=1e9), clock)
    assert clock.sleeps[-1] == 10.0


@settings(max_examples=100, deadline=None)
@given(
    failures=st.integers(min_value=1, max_value=30),
    wait_initial=st.floats(min_value=0, max_value=5),
    extra=st.floats(min_value=0, max_value=60),
    base=st.floats(min_value=1, max_value=5),
    jitter=st.floats(min_value=0, max_value=10),
)
def test_jitter_adds_up_to_wait_jitter_seconds_to_the_exponential_wait_within_wait_max(
    failures: int, wait_initial: float, extra: float, base: float, jitter: float
) -> None:
    wait_max = wait_initial + extra
    config = RetryConfig(
        attempts=failures + 1,
        timeout=1e9,
        wait_initial=wait_initial,
        wait_max=wait_max,
        wait_exp_base=base,
        wait_jitter=jitter,
    )
    clock = Clock()
    run(failing(failures), config, clock)
    for n, wait in enumerate(clock.sleeps, start=1):
        exponential = wait_initial * base ** (n - 1)
        assert min(wait_max, exponential) <= wait <= min(wait_max, exponential + jitter)


@settings(max_examples=200, deadline=None)
@given(
    elapsed=st.floats(min_value=0, max_value=100),
    retry_after=st.none() | st.floats(min_value=0, max_value=1e6),
)
def test_a_wait_never_exceeds_wait_max_nor_the_time_left(elapsed: float, retry_after: float | None) -> None:
    clock = Clock()
    error = throttled() if retry_after is None else with_retry_after(repr(retry_after))
    script = Script(error)

    def slow_first_attempt() -> str:
        if script.calls == 0:
            clock.now += elapsed
        return script()

    config = RetryConfig(attempts=10, timeout=45)
    if elapsed >= 45:
        with pytest.raises(errors.ThrottlingError):
            run(slow_first_attempt, config, clock)
        assert clock.sleeps == []
    else:
        assert run(slow_first_attempt, config, clock) == ("done", 2)
        assert 0 <= clock.sleeps[0] <= min(10.0, 45 - elapsed)


def test_the_total_time_cap_stops_retrying_once_the_time_is_spent() -> None:
    clock = Clock()

    def slow_failure() -> str:
        clock.now += 20  # each attempt takes 20 s before failing
        raise throttled()

    with pytest.raises(errors.ThrottlingError):
        run(slow_failure, RetryConfig(attempts=10, timeout=45, wait_jitter=0), clock)
    # 20 s, wait 0.5, 40.5 s, wait 1, 61.5 s: past 45 s, so no fourth attempt.
    assert clock.sleeps == [0.5, 1.0]


def test_the_last_wait_is_cut_to_the_time_left() -> None:
    clock = Clock()
    calls = []

    def slow_failure() -> str:
        calls.append(clock.now)
        clock.now += 44
        raise throttled()

    config = RetryConfig(attempts=10, timeout=45, wait_initial=5, wait_jitter=0)
    with pytest.raises(errors.ThrottlingError):
        run(slow_failure, config, clock)
    assert clock.sleeps == [1.0]
    assert calls == [0.0, 45.0]


# ---------------------------------------------------------------------------------------------------------
# Retry-After


def test_retry_after_seconds_replace_the_computed_wait() -> None:
    clock = Clock()
    run(Script(with_retry_after("3")), RetryConfig(), clock)
    assert clock.sleeps == [3.0]


def test_retry_after_is_capped_at_wait_max() -> None:
    clock = Clock()
    run(Script(with_retry_after("120")), RetryConfig(wait_max=10), clock)
    assert clock.sleeps == [10.0]


def test_retry_after_is_capped_at_the_time_left() -> None:
    clock = Clock()
    clock.now = 0.0

    def fail_late() -> str:
        if clock.now == 0.0:
            clock.now = 43.0
            raise with_retry_after("8")
        return "done"

    assert run(fail_late, RetryConfig(timeout=45, wait_max=30), clock) == ("done", 2)
    assert clock.sleeps == [2.0]


def test_retry_after_as_an_http_date_waits_until_that_date() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    clock = Clock()
    run(Script(with_retry_after(date)), RetryConfig(), clock, now=lambda: now)
    assert clock.sleeps == [7.0]


def test_an_unreadable_retry_after_falls_back_to_the_backoff() -> None:
    clock = Clock()
    run(Script(with_retry_after("soon")), RetryConfig(wait_jitter=0), clock)
    assert clock.sleeps == [0.5]


def test_retry_after_is_read_from_a_botocore_client_error_too() -> None:
    error = ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "slow down"},
            "ResponseMetadata": {"HTTPStatusCode": 429, "HTTPHeaders": {"Retry-After": "4"}},
        },
        "InvokeModel",
    )
    assert retry_after_of(error, now=0.0) == 4.0


def test_a_mid_stream_error_has_no_retry_after() -> None:
    error = EventStreamError({"Error": {"Code": "throttlingException", "Message": "slow"}}, "ConverseStream")
    assert retry_after_of(error, now=0.0) is None


@settings(max_examples=200, deadline=None)
@given(seconds=st.integers(min_value=0, max_value=10**7))
def test_parse_retry_after_reads_delay_seconds(seconds: int) -> None:
    assert parse_retry_after(str(seconds), now=0.0) == seconds
    assert parse_retry_after(f" {seconds} ", now=0.0) == seconds


@settings(max_examples=200, deadline=None)
@given(
    now=st.integers(min_value=0, max_value=4_000_000_000),
    delta=st.integers(min_value=-(10**6), max_value=10**6),
)
def test_parse_retry_after_reads_http_dates_and_a_past_date_means_now(now: int, delta: int) -> None:
    date = email.utils.formatdate(now + delta, usegmt=True)
    assert parse_retry_after(date, now=float(now)) == max(0, delta)


@pytest.mark.parametrize("value", ["", "   ", "-1", "nan", "inf", "soon", "Mon, 99 Foo 2024", None, 3])
def test_parse_retry_after_rejects_what_it_cannot_read(value: object) -> None:
    assert parse_retry_after(value, now=0.0) is None


# ---------------------------------------------------------------------------------------------------------
# The testing switch


def test_testing_mode_retries_without_waiting() -> None:
    clock = Clock()
    with set_testing(True):
        assert is_testing()
        assert run(Script(with_retry_after("30"), throttled()), RetryConfig(), clock) == ("done", 3)
    assert clock.sleeps == [0.0, 0.0]
    assert not is_testing()


def test_testing_mode_with_attempts_overrides_each_config() -> None:
    with set_testing(True, attempts=1):
        script = Script(throttled())
        with pytest.raises(errors.ThrottlingError):
            run(script, RetryConfig(attempts=5))
        assert script.calls == 1
    with set_testing(True, attempts=4):
        assert run(Script(throttled(), throttled(), throttled()), RetryConfig(attempts=2)) == ("done", 4)


def test_set_testing_takes_effect_at_once_and_the_context_restores_the_previous_mode() -> None:
    set_testing(True)
    assert is_testing()
    with set_testing(False):
        assert not is_testing()
    assert is_testing()
    set_testing(False)
    assert not is_testing()


def test_testing_mode_really_skips_time_sleep() -> None:
    # With the real sleep: three attempts against a 10 s Retry-After finish at once.
    with set_testing(True):
        result = call_with_retries(
            Script(with_retry_after("10"), with_retry_after("10")), config=RetryConfig()
        )
    assert result == "done"


@pytest.mark.parametrize("attempts", [0, -1, True, 1.5])
def test_set_testing_rejects_a_bad_attempt_count(attempts: Any) -> None:
    with pytest.raises(ValueError, match="attempts"):
        set_testing(True, attempts=attempts)
    assert not is_testing()


def test_the_client_takes_only_a_retry_config() -> None:
    from safe_bedrock import SafeBedrockClient

    with pytest.raises(TypeError, match=r"retry= takes a RetryConfig, not dict"):
        SafeBedrockClient(allow=["amazon.nova-lite-v1:0"], region_name="us-east-1", retry={"attempts": 3})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------
# Streams: retried only before the first event reaches the caller


def test_a_stream_failing_before_its_first_event_is_retried_and_after_it_is_not() -> None:
    opened: list[list[object]] = []
    plans: list[list[object]] = [
        [errors.ModelStreamError(code="modelStreamErrorException", message="x", operation="ConverseStream")],
        ["first", "second", throttled()],
    ]

    def open_stream() -> tuple[object, Iterator[object]]:
        # The client's retried function: open the stream *and* read its first event.
        plan = plans.pop(0)
        opened.append(plan)

        def events() -> Iterator[object]:
            for item in plan:
                if isinstance(item, BaseException):
                    raise item
                yield item

        iterator = events()
        return next(iterator), iterator

    (first, rest), attempts = run(open_stream, RetryConfig())  # type: ignore[arg-type]
    assert (first, attempts, len(opened)) == ("first", 2, 2)
    assert next(rest) == "second"
    with pytest.raises(errors.ThrottlingError):  # after the first event: propagates, no new stream
        next(rest)
    assert len(opened) == 2


# ---------------------------------------------------------------------------------------------------------
# The async runner shares the decision


class AsyncScript(Script):
    async def acall(self) -> str:
        return self()


def arun(script: AsyncScript, config: RetryConfig, **kwargs: Any) -> tuple[tuple[str, int], list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    result = asyncio.run(acall_with_retries(script.acall, config=config, sleep=sleep, **kwargs))
    return (result, script.calls), sleeps


def test_async_runner_retries_transient_errors_with_the_same_waits() -> None:
    result, sleeps = arun(AsyncScript(throttled(), with_retry_after("3")), RetryConfig(wait_jitter=0))
    assert result == ("done", 3)
    assert sleeps == [0.5, 3.0]


def test_async_runner_awaits_what_a_plain_function_returns_as_the_client_passes_it() -> None:
    # The client hands over `lambda: _attempt(...)`: not a coroutine function, but it returns a coroutine.
    script = AsyncScript(throttled())
    with set_testing(True):
        result = asyncio.run(acall_with_retries(lambda: script.acall(), config=RetryConfig()))  # noqa: PLW0108
    assert (result, script.calls) == ("done", 2)


def test_async_runner_raises_the_last_error_at_the_attempt_cap() -> None:
    last = throttled()
    script = AsyncScript(throttled(), last)
    with pytest.raises(errors.ThrottlingError) as caught:
        arun(script, RetryConfig(attempts=2))
    assert caught.value is last
    assert script.calls == 2


def test_async_runner_never_retries_access_errors() -> None:
    script = AsyncScript(errors.AccessDeniedError(code="AccessDeniedException", message="no", operation="X"))
    with pytest.raises(errors.AccessDeniedError):
        arun(script, RetryConfig(attempts=5))
    assert script.calls == 1


def test_async_runner_lets_cancellation_through_at_once() -> None:
    script = AsyncScript(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        arun(script, RetryConfig(attempts=5))
    assert script.calls == 1


def test_async_runner_in_testing_mode_does_not_wait() -> None:
    with set_testing(True):
        result, sleeps = arun(AsyncScript(with_retry_after("30")), RetryConfig())
    assert result == ("done", 2)
    assert sleeps == [0.0]


def test_async_runner_with_retries_disabled_makes_one_attempt() -> None:
    result, _ = arun(AsyncScript(), RetryConfig.disabled())
    assert result == ("done", 1)
