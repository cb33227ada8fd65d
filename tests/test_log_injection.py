"""Nothing request-derived forges a log line: a model id (or a Bedrock message) holding line breaks,
carriage returns, terminal escapes or Unicode line separators is escaped before it reaches a log line, an
error's text or the CLI, so every call is exactly one line in whatever formatter the app configured."""

from __future__ import annotations

import io
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from safe_bedrock import BedrockServiceError, InvalidModelIdError, SafeBedrockClient
from safe_bedrock._allowlist import Decision
from safe_bedrock._ids import parse_model_id
from safe_bedrock._observe import BodyLogging, CallDetails, escape_controls, summarize_body
from safe_bedrock._translate import refused
from safe_bedrock.cli._output import Output, describe
from safe_bedrock.testing import FakeBedrock
from tests.clienthelpers import HAIKU, messages, safe_client

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

FORGED = "INFO safe_bedrock bedrock.call operation=Converse outcome=ok forged=yes"
HOSTILE_IDS = [
    f"{HAIKU}\n{FORGED}",
    f"{HAIKU}\r{FORGED}",
    f"{HAIKU}\r\n{FORGED}",
    f"{HAIKU}\x1b[2K\x1b[1G{FORGED}",  # erase the line on a terminal, then write a forged one
    f"{HAIKU}\u2028{FORGED}",
    f"{HAIKU}\u2029{FORGED}",
    f"{HAIKU}\x85{FORGED}",
    f"{HAIKU}\t\x00\x0b\x0c\x1c\u202e{FORGED}",
    # Without spaces too: a formatter that quotes values holding spaces must not be what saves the day.
    f"{HAIKU}\nCRITICAL:root:forged=yes",
    f"{HAIKU}\u2028CRITICAL:root:forged=yes",
]
RAW_CONTROLS = ("\n", "\r", "\x1b", "\u2028", "\u2029", "\x85", "\x00", "\x0b", "\x0c", "\x1c", "\u202e")


def assert_no_raw_control(text: str) -> None:
    for char in RAW_CONTROLS:
        assert char not in text, f"raw {char!r} in {text!r}"


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as fake:
        yield fake


@pytest.fixture
def client(fake: FakeBedrock) -> SafeBedrockClient:
    return safe_client(fake, allow=[HAIKU])


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    structlog.reset_defaults()
    logger = logging.getLogger("safe_bedrock")
    level = logger.level
    yield
    structlog.reset_defaults()
    logger.setLevel(level)


def stdlib_lines(call: Callable[[], object], *, fmt: str) -> list[str]:
    """What one call writes through a stdlib handler with `fmt`, split as a log reader would split it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(fmt))
    logger = logging.getLogger("safe_bedrock")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        call()
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert_no_raw_control(text[:-1])  # all but the handler's own line end
    return text.splitlines()  # splits on \r, \x85, \u2028 and the others too


def structlog_lines(call: Callable[[], object], renderer: Any) -> list[str]:
    stream = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.add_log_level, renderer],
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    call()
    text = stream.getvalue()
    assert_no_raw_control(text[:-1])
    return text.splitlines()


def refused_call(client: SafeBedrockClient, model_id: str) -> Callable[[], object]:
    def call() -> None:
        with pytest.raises(InvalidModelIdError):
            client.converse(modelId=model_id, messages=messages())

    return call


# -- a hostile model id, through a real client -------------------------------------------------------------


@pytest.mark.parametrize("model_id", HOSTILE_IDS)
@pytest.mark.parametrize(
    "fmt",
    [
        "%(levelname)s %(name)s %(message)s",
        "%(levelname)s model=%(model_id)s cause=%(cause)s %(message)s",  # the record attributes too
    ],
)
def test_a_hostile_model_id_is_one_stdlib_log_line(
    client: SafeBedrockClient, model_id: str, fmt: str
) -> None:
    (line,) = stdlib_lines(refused_call(client, model_id), fmt=fmt)
    assert line.startswith("WARNING ")
    assert "outcome=refused" in line
    assert "\\n" in line or "\\r" in line or "\\x" in line or "\\u" in line  # escaped, still readable


@pytest.mark.parametrize("model_id", HOSTILE_IDS)
def test_a_hostile_model_id_is_one_structlog_console_line(client: SafeBedrockClient, model_id: str) -> None:
    renderer = structlog.dev.ConsoleRenderer(colors=False)
    (line,) = structlog_lines(refused_call(client, model_id), renderer)
    assert "bedrock.call" in line
    assert "outcome=refused" in line


@pytest.mark.parametrize("model_id", HOSTILE_IDS)
def test_a_hostile_model_id_is_one_structlog_json_line(client: SafeBedrockClient, model_id: str) -> None:
    (line,) = structlog_lines(refused_call(client, model_id), structlog.processors.JSONRenderer())
    event = json.loads(line)
    assert event["outcome"] == "refused"
    assert event["model_id"] == escape_controls(model_id)
    assert_no_raw_control(event["model_id"])


@pytest.mark.parametrize("model_id", HOSTILE_IDS)
def test_the_error_for_a_hostile_model_id_shows_it_escaped(client: SafeBedrockClient, model_id: str) -> None:
    with pytest.raises(InvalidModelIdError) as caught:
        client.converse(modelId=model_id, messages=messages())
    error = caught.value
    for text in (str(error), repr(error), json.dumps(error.fields(), ensure_ascii=False), error.problem):
        assert_no_raw_control(text)
    assert error.fields()["model_id"].startswith(HAIKU + "\\")
    assert error.model_id == model_id  # the attribute is the very value that was passed


def test_a_hook_sees_the_model_id_escaped(fake: FakeBedrock) -> None:
    seen: list[CallDetails] = []
    client = safe_client(fake, allow=[HAIKU], hooks=[seen.append])
    refused_call(client, HOSTILE_IDS[0])()
    (details,) = seen
    assert details.model_id == f"{HAIKU}\\n{FORGED}"


# -- Bedrock's own text ------------------------------------------------------------------------------------

HOSTILE_MESSAGE = f"Malformed input request\n{FORGED}\r\x1b[31mred\u2028{FORGED}"


def failing_call(client: SafeBedrockClient) -> Callable[[], object]:
    def call() -> None:
        with pytest.raises(BedrockServiceError):
            client.converse(modelId=HAIKU, messages=messages())

    return call


def test_a_hostile_bedrock_message_stays_out_of_error_text(
    fake: FakeBedrock, client: SafeBedrockClient
) -> None:
    fake.add_client_error("ValidationException", HOSTILE_MESSAGE)
    with pytest.raises(BedrockServiceError) as caught:
        client.converse(modelId=HAIKU, messages=messages())
    error = caught.value
    fields = error.fields()
    for text in (str(error), repr(error), error.message, *(v for v in fields.values() if isinstance(v, str))):
        assert_no_raw_control(text)
    assert "Malformed input request\\n" in str(error)
    assert error.response["Error"]["Message"] == HOSTILE_MESSAGE  # botocore's response, as botocore built it


@pytest.mark.parametrize(
    "configure",
    [
        lambda call: stdlib_lines(call, fmt="%(levelname)s %(message)s"),
        lambda call: structlog_lines(call, structlog.dev.ConsoleRenderer(colors=False)),
        lambda call: structlog_lines(call, structlog.processors.JSONRenderer()),
    ],
    ids=["stdlib", "console", "json"],
)
def test_a_hostile_bedrock_message_is_one_log_line(
    fake: FakeBedrock, client: SafeBedrockClient, configure: Callable[[Callable[[], object]], list[str]]
) -> None:
    fake.add_client_error("ValidationException", HOSTILE_MESSAGE)
    (line,) = configure(failing_call(client))
    assert "bedrock.call" in line


def test_opted_in_bodies_are_escaped_too(fake: FakeBedrock) -> None:
    client = safe_client(fake, allow=[HAIKU], body_logging=BodyLogging())
    prompt = f"hi\n{FORGED}\u2028{FORGED}"

    def call() -> None:
        client.invoke_model(modelId=HAIKU, body=prompt.encode())

    fake.add_response(body={"ok": True})
    (line,) = stdlib_lines(call, fmt="%(message)s")
    assert "request_body='hi\\" in line  # escaped (and, holding spaces, quoted as repr quotes)
    assert summarize_body(prompt, config=BodyLogging()) == escape_controls(prompt)


# -- the CLI and the escaping itself -----------------------------------------------------------------------


@pytest.mark.parametrize("json_mode", [False, True])
@pytest.mark.parametrize("scripted", [False, True], ids=["hostile-id", "hostile-message"])
def test_the_cli_reports_a_hostile_id_or_message_on_one_line(
    fake: FakeBedrock, client: SafeBedrockClient, json_mode: bool, scripted: bool
) -> None:
    if scripted:
        fake.add_client_error("ValidationException", HOSTILE_MESSAGE)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever the CLI would meet
        client.converse(modelId=HAIKU if scripted else HOSTILE_IDS[4], messages=messages())
    stderr, stdout = io.StringIO(), io.StringIO()
    Output(command="invoke", json_mode=json_mode, stdout=stdout, stderr=stderr).problem(
        describe(caught.value)
    )
    if json_mode:
        error = json.loads(stdout.getvalue())["error"]
        for value in error.values():
            assert_no_raw_control(str(value))
    else:
        problem, fix = stderr.getvalue().rstrip("\n").split("\n")  # the problem, and its fix
        assert_no_raw_control(problem)
        assert fix.startswith("  fix: ")


def test_escaping_is_what_repr_shows_and_leaves_printable_text_alone() -> None:
    assert escape_controls("a\nb\rc\td\x1be\u2028f\x00") == "a\\nb\\rc\\td\\x1be\\u2028f\\x00"
    assert escape_controls("Grüße, 東京 — ok 'quoted' \\ back") == "Grüße, 東京 — ok 'quoted' \\ back"
    assert escape_controls(escape_controls("x\ny")) == "x\\ny"


def test_a_refusal_built_here_is_safe_in_its_response_too() -> None:
    ref = parse_model_id("anthropic.claude-3-opus-20240229-v1:0", region="us-east-1")
    decision = Decision(allowed=False, matched=None, closest=(HAIKU,), entry_to_add=ref.raw)
    error = refused(ref, operation="Converse", decision=decision, source="file /etc/allow\n\x1b[2Klist.txt")
    for text in (str(error), repr(error), error.message, error.response["Error"]["Message"], error.fix):
        assert_no_raw_control(text)
    assert "allow\\n\\x1b[2Klist.txt" in error.message
