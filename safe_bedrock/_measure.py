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


@dataclass(slots=True)
class StreamMeter:
    """Counts one stream's events as they pass, and picks up the totals Bedrock reports at its end."""

    events: int = 0
    payload_bytes: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    service_latency_ms: int | None = None
    complete: bool = False  # the closing event arrived (the metrics chunk, or Converse's metadata)

    def observe(self, event: dict[str, Any]) -> None:
        self.events += 1
        chunk = event.get("chunk")
        if chunk is not None:
            data = chunk.get("bytes") or b""
            self.payload_bytes += len(data)
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
            self.input_tokens = _int_or_none(usage.get("inputTokens"))
            self.output_tokens = _int_or_none(usage.get("outputTokens"))
            self.service_latency_ms = _int_or_none((metadata.get("metrics") or {}).get("latencyMs"))
            self.complete = True

    def _read_invocation_metrics(self, data: bytes) -> None:
        try:
            metrics = json.loads(data).get(_METRICS_KEY) or {}
        except (ValueError, AttributeError):
            return
        self.input_tokens = _int_or_none(metrics.get("inputTokenCount"))
        self.output_tokens = _int_or_none(metrics.get("outputTokenCount"))
        self.service_latency_ms = _int_or_none(metrics.get("invocationLatency"))
        self.complete = True
