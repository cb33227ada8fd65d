"""Reading what a call cost from what Bedrock answered (sans-I/O): request id, tokens, stream metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_METRICS_KEY = "amazon-bedrock-invocationMetrics"
_METRICS_MARK = _METRICS_KEY.encode()


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return None


def request_id_of(response: object) -> str | None:
    """The request id of a boto3 response dict or a ClientError's `.response` (None if it names none)."""
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    headers = metadata.get("HTTPHeaders")
    headers = headers if isinstance(headers, dict) else {}
    found = (metadata.get("RequestId"), headers.get("x-amzn-requestid"), headers.get("x-amz-request-id"))
    return next((value for value in found if isinstance(value, str) and value), None)


def tokens_of(response: dict[str, Any]) -> tuple[int | None, int | None]:
    """(input, output) token counts of a non-streaming response, wherever the operation reports them."""
    usage = response.get("usage")
    if isinstance(usage, dict):
        return _int_or_none(usage.get("inputTokens")), _int_or_none(usage.get("outputTokens"))
    if "inputTokens" in response:  # CountTokens
        return _int_or_none(response["inputTokens"]), None
    headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    return (
        _int_or_none(headers.get("x-amzn-bedrock-input-token-count")),
        _int_or_none(headers.get("x-amzn-bedrock-output-token-count")),
    )


# The keys that name an InvokeModelWithResponseStream chunk's family, for a chunk that carries no metrics:
# Anthropic Messages and Text Completions, Titan, Llama, Mistral, OpenAI-style chat (Mistral chat, gpt-oss,
# DeepSeek), and Nova's Converse-shaped chunks.
_FAMILY_KEYS = frozenset(
    {"type", "completion", "outputText", "generation", "outputs", "choices"}
    | {"messageStart", "contentBlockStart", "contentBlockDelta"}
    | {"contentBlockStop", "messageStop", "metadata"}
)


def _stopped(chunk: dict[str, Any]) -> bool:
    """Whether an InvokeModelWithResponseStream chunk is its family's last, by its stop marker."""
    if chunk.get("type") == "message_stop" or "messageStop" in chunk or "metadata" in chunk:
        return True
    if chunk.get("stop_reason") or chunk.get("completionReason") or chunk.get("finish_reason"):
        return True  # Anthropic text, Llama; Titan; Cohere and AI21 (whose shapes count only with metrics)
    choices = chunk.get("outputs") or chunk.get("choices")  # Mistral; OpenAI-style
    if isinstance(choices, list):
        return any(
            isinstance(choice, dict) and (choice.get("stop_reason") or choice.get("finish_reason"))
            for choice in choices
        )
    return False


@dataclass(slots=True)
class StreamMeter:
    """Counts one stream's events as they pass, and picks up the totals Bedrock reports at its end."""

    events: int = 0
    payload_bytes: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    complete: bool = False  # the closing event arrived (the metrics chunk, or Converse's metadata)
    last_chunk: bytes | None = None  # InvokeModelWithResponseStream: the latest chunk's bytes

    def observe(self, event: dict[str, Any]) -> None:
        self.events += 1
        chunk = event.get("chunk")
        if chunk is not None:
            data = chunk.get("bytes") or b""
            self.payload_bytes += len(data)
            self.last_chunk = data
            # Only the last chunk carries the metrics; a substring test keeps the other chunks unparsed.
            if _METRICS_MARK in data:
                self._read_invocation_metrics(data)
            return
        delta = event.get("contentBlockDelta")
        if delta is not None:
            text = (delta.get("delta") or {}).get("text")
            if text:
                self.payload_bytes += len(text.encode())
            return
        metadata = event.get("metadata")
        if metadata is not None:
            usage = metadata.get("usage") or {}
            self._totals(usage.get("inputTokens"), usage.get("outputTokens"))

    def _read_invocation_metrics(self, data: bytes) -> None:
        try:
            metrics = json.loads(data).get(_METRICS_KEY) or {}
        except (ValueError, AttributeError):
            return
        self._totals(metrics.get("inputTokenCount"), metrics.get("outputTokenCount"))

    def _totals(self, input_tokens: object, output_tokens: object) -> None:
        self.input_tokens, self.output_tokens = _int_or_none(input_tokens), _int_or_none(output_tokens)
        self.complete = True

    def closed(self) -> bool | None:
        """At the end: did the closing events arrive (see `StreamIncompleteError`)? None when the last chunk
        is of a family we do not know: that is never called incomplete."""
        if self.complete:
            return True
        data = self.last_chunk
        if data is None:
            return False  # no event at all (ConverseStream without metadata counts here too)
        try:
            chunk = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(chunk, dict) or not _FAMILY_KEYS.intersection(chunk):
            return None
        if _stopped(chunk):
            self.complete = True
            return True
        return False


@dataclass(slots=True)
class FrameTracker:
    """Follows the frame boundaries in the raw bytes (each frame's 4-byte length only), to tell a stream cut
    inside a frame; botocore parses and checks the frames themselves."""

    remaining: int = 0  # bytes of the current frame still to come (0: at a frame boundary)
    partial: int = 0  # bytes of the current frame received so far
    _prelude: bytes = b""  # the first bytes of a frame whose length is not known yet

    def feed(self, data: bytes) -> None:
        at, size = 0, len(data)
        while at < size:
            if self.remaining:
                step = min(self.remaining, size - at)
                self.remaining -= step
                self.partial = 0 if not self.remaining else self.partial + step
                at += step
                continue
            take = data[at : at + 4 - len(self._prelude)]
            self._prelude += take
            at += len(take)
            if len(self._prelude) < 4:
                self.partial = len(self._prelude)
                return
            self.remaining = max(int.from_bytes(self._prelude, "big") - 4, 0)
            self.partial = 4 if self.remaining else 0
            self._prelude = b""

    @property
    def inside_frame(self) -> bool:
        return bool(self.remaining or self._prelude)


def restate_retry_metadata(response: object, *, attempt: int, max_attempts: int) -> None:
    """Make `ResponseMetadata` say what raw boto3 says after `attempt` of `max_attempts` attempts.

    botocore runs each of our attempts with max attempts 1, so it counts `RetryAttempts: 0` and marks every
    answer `MaxAttemptsReached`; its standard mode marks only an answer to the last attempt allowed.
    """
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    if not isinstance(metadata, dict):
        return
    metadata["RetryAttempts"] = attempt - 1
    if attempt >= max_attempts:
        metadata["MaxAttemptsReached"] = True
    else:
        metadata.pop("MaxAttemptsReached", None)
