"""opentelemetry-instrumentation-botocore traces Bedrock calls with `gen_ai.*` attributes, as the
OpenTelemetry how-to promises: for a plain boto3 client, and through SafeBedrockClient and guard().
A refused call sends nothing, so it leaves no span of its own: it is an event on the current span.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.instrumentation.botocore")

from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from safe_bedrock import ModelNotAllowedError, SafeBedrockClient, guard
from safe_bedrock.testing import FakeBedrock

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    BotocoreInstrumentor().instrument(tracer_provider=provider)
    yield exporter
    BotocoreInstrumentor().uninstrument()


def plain(fake: FakeBedrock) -> Any:
    return fake.client()


def wrapper(fake: FakeBedrock) -> Any:
    return SafeBedrockClient(allow=[HAIKU], session=fake.session(), region_name="us-east-1")


def guarded(fake: FakeBedrock) -> Any:
    return guard(fake.client(), allow=[HAIKU])


@pytest.mark.parametrize(
    "build",
    [
        plain,
        wrapper,
        guarded,
    ],
)
def test_a_converse_call_leaves_a_gen_ai_span(
    exporter: InMemorySpanExporter, build: Callable[[FakeBedrock], Any]
) -> None:
    with FakeBedrock() as fake:
        fake.add_response(text="Paris")
        build(fake).converse(modelId=HAIKU, messages=[{"role": "user", "content": [{"text": "Capital?"}]}])

    [span] = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["gen_ai.request.model"] == HAIKU
    assert span.attributes["gen_ai.operation.name"] == "chat"
    assert span.attributes["gen_ai.usage.output_tokens"] == 1


@pytest.mark.parametrize("build", [wrapper, guarded])
def test_a_refused_call_is_an_event_on_the_current_span(
    exporter: InMemorySpanExporter, build: Callable[[FakeBedrock], Any]
) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with FakeBedrock() as fake:
        client = build(fake)
        tracer = provider.get_tracer("app")
        with tracer.start_as_current_span("handle-request"), pytest.raises(ModelNotAllowedError):
            client.converse(modelId="meta.llama3-70b-instruct-v1:0", messages=[])
        assert fake.requests == []

    # On guard()'s plain client the instrumentor's span is current when the request is refused.
    events = [event for span in exporter.get_finished_spans() for event in span.events]
    [event] = [event for event in events if event.name == "safe_bedrock.refused"]
    assert dict(event.attributes or {}) == {
        "safe_bedrock.operation": "Converse",
        "safe_bedrock.error": "ModelNotAllowedError",
        "safe_bedrock.model_arn": "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-70b-instruct-v1:0",
    }


def test_the_instrumentation_added_after_the_guard_still_traces() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with FakeBedrock() as fake:
        client = guard(fake.client(), allow=[HAIKU])
        BotocoreInstrumentor().instrument(tracer_provider=provider)
        try:
            fake.add_response(text="Paris")
            client.converse(modelId=HAIKU, messages=[{"role": "user", "content": [{"text": "Capital?"}]}])
        finally:
            BotocoreInstrumentor().uninstrument()
    [span] = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["gen_ai.request.model"] == HAIKU
