"""Default answers of the fake, in the shape each provider family uses on Bedrock. Deterministic, no I/O.

The answer is `"You said: <last user text>"`, so an app's test can assert on what its code did with it.
Tokens are one per word or punctuation mark; a `max_tokens`-style limit cuts the answer with the family's
"stopped at the limit" reason. Bodies are validated as Bedrock does; a `BadRequest` carries the
ValidationException message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import struct
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from json.encoder import encode_basestring_ascii
from typing import Any

from safe_bedrock._catalog import family_of as catalog_family_of
from safe_bedrock._catalog import load
from safe_bedrock._ids import geographies

_TOKEN = re.compile(r"\w+|[^\w\s]")
# A stream piece: a word with the whitespace before it, the way model streams usually cut text; the last
# piece also takes the trailing whitespace.
_PIECE = re.compile(r"\s*\S+(?:\s+\Z)?|\s+\Z")
ANSWER_PREFIX = "You said: "
_MAX_ECHO_WORDS = 60


compact_json = json.JSONEncoder(separators=(",", ":")).encode

# Text deltas are most of a stream's events: they are built from byte templates around the JSON-escaped
# piece (encode_basestring_ascii is json's own C escaper), several times faster than encoding a dict each.
_ANTHROPIC_DELTA = (b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":', b"}}")
_NOVA_DELTA = (b'{"contentBlockDelta":{"delta":{"text":', b'},"contentBlockIndex":0}}')
# Real ConverseStream payloads have sorted keys and end in "p", a random-length padding (a prefix of _PAD).
_CONVERSE_DELTA = (b'{"contentBlockIndex":0,"delta":{"text":', b'},"p":"')
_PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _deltas(template: tuple[bytes, bytes], pieces: Sequence[str]) -> list[bytes]:
    head, tail = template
    return [head + encode_basestring_ascii(piece).encode() + tail for piece in pieces]


class BadRequest(Exception):  # noqa: N818 - mirrors Bedrock's ValidationException, carried as its message
    """The request is invalid; str(exc) is the ValidationException message Bedrock would send."""


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    pieces: tuple[str, ...]  # how a stream splits the text; "".join(pieces) == text
    input_tokens: int
    output_tokens: int
    truncated: bool  # stopped at the request's token limit
    echo: Mapping[str, object] = field(default_factory=dict)  # request-dependent Converse reply fields


def _malformed(detail: str) -> BadRequest:
    return BadRequest(f"Malformed input request: {detail}, please reformat your input and try again.")


def _invalid(value: str, must: str) -> BadRequest:
    message = f"1 validation error detected: Value {value} failed to satisfy constraint: Member must {must}"
    return BadRequest(message)


# Bodies are parsed JSON, so each value is exactly one of these types (or None).
_JSON_TYPES: dict[type[object], str] = {dict: "JSONObject", list: "JSONArray", str: "String", bool: "Boolean"}
_JSON_TYPES |= dict.fromkeys((int, float), "Number")


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), "Null")


def parse_json_body(body: bytes, *, invoke: bool) -> Mapping[str, object]:
    """Parse a JSON object body or raise BadRequest with the message Bedrock gives for that body."""
    try:
        value = json.loads(body) if body else None
    except ValueError:
        if invoke:
            raise _malformed("A JSONObject text must begin with '{' at 1 [character 2 line 1]") from None
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(value, Mapping):
        if invoke:
            raise _malformed(f"#: expected type: JSONObject, found: {_json_type(value)}")
        raise BadRequest(f"The request body must be a JSON object, found: {_json_type(value)}.")
    return value


# --- families -------------------------------------------------------------------------------------------


def bare_id(model_id: str) -> str:
    # arn:...:foundation-model/x, arn:...:inference-profile/us.x -> x; us.x -> x
    tail = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    geography, _, rest = tail.partition(".")
    return rest if geography in geographies() else tail


# Application inference profiles, provisioned and custom models hide the family: go by the body's keys.
_BODY_FAMILIES = (
    ("anthropic_version", "anthropic"),
    ("schemaVersion", "nova"),
    ("inferenceConfig", "nova"),
    ("inputText", "titan"),
    ("texts", "cohere_embed"),
    ("message", "cohere_command"),
    ("messages", "anthropic"),
    ("prompt", "llama"),
)
_CHAT = frozenset({"openai", "qwen", "writer", "jamba"})  # OpenAI chat-completions bodies
_CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")
_UNSTREAMABLE = frozenset({"titan_embed", "cohere_embed", "stability"})
# (finished, cut at the token limit) stop reasons of each family
_STOPS = {
    "anthropic": ("end_turn", "max_tokens"),
    "anthropic_text": ("stop_sequence", "max_tokens"),
    "nova": ("end_turn", "max_tokens"),
    "titan": ("FINISH", "LENGTH"),
    "cohere_command": ("COMPLETE", "MAX_TOKENS"),
}


def _stop(family: str, answer: Answer) -> str:
    return _STOPS.get(family, ("stop", "length"))[answer.truncated]


def _known_family(model_id: str) -> str | None:
    bare = bare_id(model_id)
    return load().family(bare) or catalog_family_of(bare)


def family_of(model_id: str, payload: Mapping[str, object], family: str | None = None) -> str:
    """The InvokeModel body family: `family` when known (a test's own model), else the model catalog's,
    else by the body's keys (application profiles, provisioned and custom models hide the model)."""
    family = family or _known_family(model_id)
    if family == "anthropic" and "prompt" in payload and "messages" not in payload:
        return "anthropic_text"  # Claude models answered the legacy text-completions body too
    if family is not None:
        return family
    for key, family in _BODY_FAMILIES:
        if key in payload:
            return family
    raise _malformed(
        "#: the request matches no model request schema (expected messages, prompt or inputText)"
    )


def _required(payload: Mapping[str, object], key: str, kind: type[Any]) -> Any:
    value = payload.get(key)
    if value is None:
        raise _malformed(f"#: required key [{key}] not found")
    if not isinstance(value, kind):
        raise _malformed(f"#/{key}: expected type: {_JSON_TYPES[kind]}, found: {_json_type(value)}")
    return value


def _text_of_content(content: object, *, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):  # Writer takes one {"text": ...} block as the content
        content = [content]
    if not isinstance(content, list):
        raise _malformed(f"{where}: expected type: JSONArray, found: {_json_type(content)}")
    for i, block in enumerate(content):
        if not isinstance(block, Mapping):
            raise _malformed(f"{where}/{i}: expected type: JSONObject, found: {_json_type(block)}")
    return " ".join(block["text"] for block in content if isinstance(block.get("text"), str))


def _messages(
    payload: Mapping[str, object], *, allow_string: bool, roles: Sequence[str] = ("user", "assistant")
) -> str:
    messages = _required(payload, "messages", list)
    if not messages:
        raise _malformed("#/messages: expected minimum item count: 1, found: 0")
    last_user = ""
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise _malformed(f"#/messages/{i}: expected type: JSONObject, found: {_json_type(message)}")
        role = message.get("role")
        if role not in roles:
            raise _malformed(f"#/messages/{i}/role: {role!r} is not a valid enum value")
        content = message.get("content")
        if content is None:
            raise _malformed(f"#/messages/{i}: required key [content] not found")
        if isinstance(content, str) and not allow_string:
            raise _malformed(f"#/messages/{i}/content: expected type: JSONArray, found: String")
        if role == "user":
            last_user = _text_of_content(content, where=f"#/messages/{i}/content")
    return last_user


def _all_text(node: object) -> str:
    """Every text the model reads in messages or system blocks: plain strings and "text" fields."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return " ".join(_all_text(item) for item in node)
    if isinstance(node, Mapping):
        text = node.get("text")
        return text if isinstance(text, str) else _all_text(node.get("content"))
    return ""


def _input_text(payload: Mapping[str, object]) -> str:
    # What Converse and Nova count as input tokens: the system blocks and every message.
    return f"{_all_text(payload.get('system'))} {_all_text(payload.get('messages'))}"


def _limit(payload: Mapping[str, object], *keys: str) -> int | None:
    node: object = payload
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node if isinstance(node, int) and not isinstance(node, bool) else None


def _prompt_and_limit(family: str, payload: Mapping[str, object]) -> tuple[str, str, int | None]:
    """(prompt text to answer, all input text for token counting, output token limit)."""
    if family == "anthropic":
        _required(payload, "anthropic_version", str)
        if "max_tokens" not in payload:
            raise _malformed("#: required key [max_tokens] not found")
        prompt = _messages(payload, allow_string=True)
        system = payload.get("system")
        system_text = _text_of_content(system, where="#/system") if system else ""
        return prompt, f"{system_text} {_all_text(payload.get('messages'))}", _limit(payload, "max_tokens")
    if family == "nova":
        prompt = _messages(payload, allow_string=False)
        return prompt, _input_text(payload), _limit(payload, "inferenceConfig", "maxTokens")
    if family in _CHAT:
        limit = _limit(payload, "max_completion_tokens")
        limit = _limit(payload, "max_tokens") if limit is None else limit
        prompt = _messages(payload, allow_string=True, roles=_CHAT_ROLES)
        return prompt, _all_text(payload["messages"]), limit
    if family in ("titan", "titan_embed"):
        text = _required(payload, "inputText", str)
        return text, text, _limit(payload, "textGenerationConfig", "maxTokenCount")
    if family == "cohere_command":
        message = _required(payload, "message", str)
        return message, f"{_all_text(payload.get('preamble'))} {message}", _limit(payload, "max_tokens")
    if family == "cohere_embed":
        _required(payload, "input_type", str)
        text = " ".join(t for t in _required(payload, "texts", list) if isinstance(t, str))
        return text, text, None
    # llama, mistral, anthropic_text, deepseek, stability: a prompt string
    prompt = _required(payload, "prompt", str)
    limit_key = {"llama": "max_gen_len", "anthropic_text": "max_tokens_to_sample"}.get(family, "max_tokens")
    return _strip_template(prompt), prompt, _limit(payload, limit_key)


_TEMPLATE_MARKS = re.compile(
    r"<\|start_header_id\|>\w*<\|end_header_id\|>|<[|\uff5c][^|\uff5c]*[|\uff5c]>|\[/?INST\]|</?s>|\n\nHuman:|\n\nAssistant:|^Human:|Assistant:\s*$|<<SYS>>|<</SYS>>"
)


def _strip_template(prompt: str) -> str:
    # Llama/Mistral/DeepSeek/Claude-text prompts wrap the user text in chat-template markers: echo the text.
    return " ".join(_TEMPLATE_MARKS.sub(" ", prompt).split())


def _answer(
    prompt: str, input_text: str, limit: int | None, text: str | None, pieces: Sequence[str] | None
) -> Answer:
    # Scripted pieces are sent as given; a text (scripted, or the echo of the prompt) is cut at the limit.
    if text is None:
        words = prompt.split()
        echo = " ".join(words[:_MAX_ECHO_WORDS]) + (" ..." if len(words) > _MAX_ECHO_WORDS else "")
        text = ANSWER_PREFIX + (echo or "(empty prompt)")
    chosen = tuple(pieces) if pieces is not None else tuple(_PIECE.findall(text))
    truncated = pieces is None and limit is not None and 0 <= limit < len(chosen)
    if truncated:
        chosen = chosen[:limit]
    return Answer("".join(chosen), chosen, max(1, len(_TOKEN.findall(input_text))), len(chosen), truncated)


def answer_for(
    operation: str,
    model_id: str,
    payload: Mapping[str, object],
    *,
    text: str | None = None,
    pieces: Sequence[str] | None = None,
    family: str | None = None,
) -> tuple[str, Answer]:
    """Validate the body and build the answer: (family, answer); family is "converse" for Converse ops.
    `family`: the body family of a model a test added (else the catalog's, see `family_of`)."""
    if operation in ("Converse", "ConverseStream"):
        prompt = _converse_prompt(payload, model_id)
        limit = _limit(payload, "inferenceConfig", "maxTokens")
        answer = _answer(prompt, _input_text(payload), limit, text, pieces)
        return "converse", replace(answer, echo=_echoes(model_id, payload, answer))
    family = family_of(model_id, payload, family)
    if operation == "InvokeModelWithResponseStream" and family in _UNSTREAMABLE:
        raise BadRequest("The model is unsupported for streaming.")
    prompt, input_text, limit = _prompt_and_limit(family, payload)
    return family, _answer(prompt, input_text, limit, text, pieces)


def _echoes(model_id: str, payload: Mapping[str, object], answer: Answer) -> dict[str, object]:
    """The Converse reply fields that depend on the request, as Bedrock sends them."""
    echo = {key: payload[key] for key in ("performanceConfig", "serviceTier") if key in payload}
    guardrail = payload.get("guardrailConfig")
    if isinstance(guardrail, Mapping) and guardrail.get("trace") in ("enabled", "enabled_full"):
        name = str(guardrail.get("guardrailIdentifier", "")).rsplit("/", 1)[-1]
        seen, said = _assessment(len(_input_text(payload).strip())), _assessment(len(answer.text))
        echo["trace"] = {"guardrail": {"inputAssessment": {name: seen}, "outputAssessments": {name: [said]}}}
    paths = payload.get("additionalModelResponseFieldPaths")
    if isinstance(paths, list) and paths:
        # The pointers name fields of the model's own reply (an id hiding the family reads as Anthropic's).
        native = invoke_body(family_of(model_id, {"messages": []}), answer, model_id, {})
        # Recorded: asked for, the key is always there; a plain name (no JSON Pointer) that the request's
        # additionalModelRequestFields holds came back as that field's value.
        sent = payload.get("additionalModelRequestFields")
        sent = sent if isinstance(sent, Mapping) else {}
        plain: object = next((sent[path] for path in paths if isinstance(path, str) and path in sent), {})
        echo["additionalModelResponseFields"] = _pick(native, paths) or plain
    return echo


def _assessment(characters: int) -> dict[str, object]:
    # A guardrail that let everything through: only its metrics, no policy findings.
    return {
        "invocationMetrics": {
            "guardrailProcessingLatency": 40 + characters // 50,
            "usage": _guardrail_usage(characters // 1000 + 1),
            "guardrailCoverage": {"textCharacters": {"guarded": characters, "total": characters}},
        }
    }


def _pick(native: Mapping[str, object], paths: Sequence[object]) -> dict[str, object]:
    """The fields of the model's own reply that JSON Pointers name; a path naming nothing is ignored."""
    picked: dict[str, Any] = {}
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/"):
            continue  # recorded: Bedrock answers 200 to a path that is no JSON Pointer (the docs say 400)
        keys = [key.replace("~1", "/").replace("~0", "~") for key in path[1:].split("/")]
        node: object = native
        for key in keys:
            if not isinstance(node, Mapping) or key not in node:
                break
            node = node[key]
        else:
            target = picked
            for key in keys[:-1]:
                target = target.setdefault(key, {})
            target[keys[-1]] = node
    return picked


def _converse_prompt(payload: Mapping[str, object], model_id: str) -> str:
    messages = payload.get("messages")
    if messages is None:
        raise _invalid("null at 'messages'", "not be null")
    if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
        raise BadRequest(
            "The value of 'messages' must be a list of messages, each an object with role and content."
        )
    # Claude takes a conversation that opens with the assistant's turn (recorded Bedrock traffic shows it).
    if not messages or (messages[0].get("role") != "user" and _known_family(model_id) != "anthropic"):
        raise BadRequest(
            "A conversation must start with a user message. Try again with a conversation that starts with a"
            " user message."
        )
    prompt = ""
    for i, message in enumerate(messages):
        role = message.get("role")
        where = f"at 'messages.{i + 1}.member"
        if role not in ("user", "assistant"):
            raise _invalid(f"'{role}' {where}.role'", "satisfy enum value set: [user, assistant]")
        content = message.get("content")
        if not isinstance(content, list):
            raise _invalid(f"{where}.content'", "not be null and must be a list of content blocks")
        if role == "user":
            prompt = " ".join(
                b["text"] for b in content if isinstance(b, Mapping) and isinstance(b.get("text"), str)
            )
    return prompt


# --- bodies and stream events per family -------------------------------------------------------------


def _model_name(model_id: str) -> str:
    # Anthropic answers name the model without the provider prefix and version suffix.
    bare = bare_id(model_id)
    return bare.split(".", 1)[-1].split("-v", 1)[0] if "." in bare else bare


def latency_ms(answer: Answer) -> tuple[int, int]:
    """(firstByteLatency, invocationLatency) in ms: fixed numbers that grow with the answer, for realism."""
    first = 120 + answer.input_tokens // 10
    return first, first + 15 * answer.output_tokens


def _embedding(text: str, dimensions: int) -> list[float]:
    # A stable unit-ish vector from the text's hash: same text, same vector.
    seed = hashlib.sha256(text.encode()).digest()
    raw = (seed * (dimensions * 4 // len(seed) + 1))[: dimensions * 4]
    values = [((v % 2000) - 1000) / 1000.0 for v in struct.unpack(f">{dimensions}I", raw)]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in values]


def _uid(answer: Answer, model_id: str, salt: str = "") -> str:
    return str(uuid.UUID(hashlib.sha256(f"{salt}{model_id}\0{answer.text}".encode()).hexdigest()[:32]))


# A 1x1 PNG: image models answer with base64 images, and a test rarely looks past the format.
_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
_CREATED = 1_735_689_600  # chat-completions "created": fixed, so equal requests get equal bytes


def _chat_head(family: str, answer: Answer, model_id: str, kind: str) -> dict[str, object]:
    head: dict[str, object] = {"id": f"chatcmpl-{_uid(answer, model_id).replace('-', '')}"}
    if family != "jamba":  # Jamba's envelope has no object/created
        head |= {"object": kind, "created": _CREATED}
    return {**head, "model": bare_id(model_id)}


# The families whose stream sends one plain chunk per piece: (text, stop reason, input tokens, output tokens)
# -> chunk. Llama's, Mistral's and DeepSeek's InvokeModel body is such a chunk holding the whole answer.
_Envelope = Callable[[str, "str | None", "int | None", int], dict[str, object]]
_PIECE_CHUNKS: dict[str, _Envelope] = {
    "llama": lambda text, stop, tokens_in, tokens_out: {
        "generation": text,
        "prompt_token_count": tokens_in,
        "generation_token_count": tokens_out,
        "stop_reason": stop,
    },
    "mistral": lambda text, stop, _in, _out: {"outputs": [{"text": text, "stop_reason": stop}]},
    "deepseek": lambda text, stop, _in, _out: {"choices": [{"text": text, "stop_reason": stop}]},
    "titan": lambda text, stop, tokens_in, tokens_out: {
        "outputText": text,
        "index": 0,
        "totalOutputTextTokenCount": tokens_out,
        "completionReason": stop,
        **({} if tokens_in is None else {"inputTextTokenCount": tokens_in}),
    },
    "anthropic_text": lambda text, stop, _in, _out: {"completion": text, "stop_reason": stop, "stop": None},
}


def invoke_body(
    family: str, answer: Answer, model_id: str, payload: Mapping[str, object]
) -> dict[str, object]:
    """The InvokeModel response body."""
    stop = _stop(family, answer)
    if family == "anthropic":
        return {
            "id": f"msg_bdrk_{_uid(answer, model_id).replace('-', '')[:24]}",
            "type": "message",
            "role": "assistant",
            "model": _model_name(model_id),
            "content": [{"type": "text", "text": answer.text}],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens},
        }
    if family == "anthropic_text":
        return {
            "type": "completion",
            "completion": " " + answer.text,
            "stop_reason": stop,
            "stop": None if answer.truncated else "\n\nHuman:",
        }
    if family == "titan":
        return {
            "inputTextTokenCount": answer.input_tokens,
            "results": [
                {"tokenCount": answer.output_tokens, "outputText": answer.text, "completionReason": stop}
            ],
        }
    if family == "titan_embed":
        dimensions = _limit(payload, "dimensions") or (1024 if "v2" in model_id else 1536)
        text = payload.get("inputText")
        return {
            "embedding": _embedding(text if isinstance(text, str) else "", dimensions),
            "inputTextTokenCount": answer.input_tokens,
        }
    if family == "nova":
        return _converse_shape(answer, cacheReadInputTokenCount=0, cacheWriteInputTokenCount=0)
    if family in _CHAT:
        usage = {"prompt_tokens": answer.input_tokens, "completion_tokens": answer.output_tokens}
        body = _chat_head(family, answer, model_id, "chat.completion")
        body["choices"] = [
            {"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": stop}
        ]
        body["usage"] = {**usage, "total_tokens": answer.input_tokens + answer.output_tokens}
        if family == "jamba":
            body["meta"] = {"requestDurationMillis": latency_ms(answer)[1]}
        return body
    if family == "cohere_command":
        history = payload.get("chat_history")
        user = {"role": "USER", "message": payload.get("message", "")}
        return {
            "response_id": _uid(answer, model_id, "response"),
            "text": answer.text,
            "generation_id": _uid(answer, model_id),
            "chat_history": [
                *(history if isinstance(history, list) else []),
                user,
                {"role": "CHATBOT", "message": answer.text},
            ],
            "finish_reason": stop,
        }
    if family == "cohere_embed":
        texts = [t for t in payload.get("texts") or () if isinstance(t, str)]  # type: ignore[attr-defined]
        return {
            "embeddings": [_embedding(text, 1024) for text in texts],
            "id": _uid(answer, model_id),
            "response_type": "embeddings_floats",
            "texts": texts,
        }
    if family == "stability":
        seed = _limit(payload, "seed") or int(_uid(answer, model_id)[:8], 16)
        return {"seeds": [seed], "finish_reasons": [None], "images": [_PNG]}
    return _PIECE_CHUNKS[family](answer.text, stop, answer.input_tokens, answer.output_tokens)


def invoke_stream_chunks(family: str, answer: Answer, model_id: str) -> list[dict[str, object] | bytes]:
    """The chunks of InvokeModelWithResponseStream (dicts, or JSON bytes for text deltas); the last one
    carries amazon-bedrock-invocationMetrics."""
    first_byte, total = latency_ms(answer)
    metrics = {
        "amazon-bedrock-invocationMetrics": {
            "inputTokenCount": answer.input_tokens,
            "outputTokenCount": answer.output_tokens,
            "invocationLatency": total,
            "firstByteLatency": first_byte,
        }
    }
    stop = _stop(family, answer)
    if family == "anthropic":
        message = invoke_body(family, answer, model_id, {})
        message.update(
            content=[], stop_reason=None, usage={"input_tokens": answer.input_tokens, "output_tokens": 1}
        )
        return [
            {"type": "message_start", "message": message},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            *_deltas(_ANTHROPIC_DELTA, answer.pieces),
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": answer.output_tokens},
            },
            {"type": "message_stop", **metrics},
        ]
    if family == "nova":
        usage = {"inputTokens": answer.input_tokens, "outputTokens": answer.output_tokens}
        return [
            {"messageStart": {"role": "assistant"}},
            *_deltas(_NOVA_DELTA, answer.pieces),
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": stop}},
            {"metadata": {"usage": usage, "metrics": {}, "trace": {}}, **metrics},
        ]
    if family == "cohere_command":
        start = {"is_finished": False, "event_type": "stream-start", "generation_id": _uid(answer, model_id)}
        texts = [{"is_finished": False, "event_type": "text-generation", "text": p} for p in answer.pieces]
        response = invoke_body(family, answer, model_id, {})
        end = {"is_finished": True, "event_type": "stream-end", "response": response, "finish_reason": stop}
        return [start, *texts, {**end, **metrics}]
    pieces = answer.pieces or ("",)
    plain: list[dict[str, object]]
    if family in _CHAT:
        head = _chat_head(family, answer, model_id, "chat.completion.chunk")
        deltas = [{"role": "assistant", "content": pieces[0]}, *({"content": p} for p in pieces[1:])]
        choices: list[dict[str, object]] = [{"index": 0, "delta": d, "finish_reason": None} for d in deltas]
        choices[-1]["finish_reason"] = stop
        plain = [{**head, "choices": [choice]} for choice in choices]
    else:
        # The stop reason comes with the last piece, the input tokens with the first.
        chunk, last = _PIECE_CHUNKS[family], len(pieces) - 1
        plain = [
            chunk(piece, stop if i == last else None, None if i else answer.input_tokens, i + 1)
            for i, piece in enumerate(pieces)
        ]
    plain[-1].update(metrics)
    return list(plain)


def _converse_shape(answer: Answer, **usage: int) -> dict[str, object]:
    # Nova's InvokeModel body is Converse's body without metrics, with cache counts in its usage.
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": answer.text}]}},
        "stopReason": _stop("nova", answer),
        "usage": {
            "inputTokens": answer.input_tokens,
            "outputTokens": answer.output_tokens,
            "totalTokens": answer.input_tokens + answer.output_tokens,
            **usage,
        },
    }


def converse_body(answer: Answer) -> dict[str, object]:
    return {**_converse_shape(answer), "metrics": {"latencyMs": latency_ms(answer)[1]}, **answer.echo}


def pads(seed: str | bytes) -> Iterator[str]:
    """The `p` padding of successive stream events: random lengths, seeded so equal requests match."""
    rng = random.Random(seed)  # noqa: S311 - padding, not a secret
    while True:
        yield _PAD[: rng.randint(2, len(_PAD) - 1)]


def converse_stream_events(answer: Answer) -> list[tuple[str, dict[str, object] | bytes]]:
    """(event type, payload) pairs of ConverseStream; text delta payloads come as JSON bytes."""
    pad = pads(answer.text)

    def padded(body: Mapping[str, object]) -> dict[str, object]:
        return dict(sorted({**body, "p": next(pad)}.items()))

    echo = dict(answer.echo)
    extra = echo.pop("additionalModelResponseFields", None)
    stop: dict[str, object] = {"stopReason": _stop("nova", answer)}
    if extra is not None:  # the stream sends requested model fields with messageStop
        stop["additionalModelResponseFields"] = extra
    usage = _converse_shape(answer)["usage"]
    return [
        ("messageStart", padded({"role": "assistant"})),
        *(
            ("contentBlockDelta", d + next(pad).encode() + b'"}')
            for d in _deltas(_CONVERSE_DELTA, answer.pieces)
        ),
        ("contentBlockStop", padded({"contentBlockIndex": 0})),
        ("messageStop", padded(stop)),
        ("metadata", padded({"usage": usage, "metrics": {"latencyMs": latency_ms(answer)[1]}, **echo})),
    ]


def count_tokens_body(model_id: str, payload: Mapping[str, object]) -> dict[str, object]:
    """CountTokens: {"inputTokens": n}, counted the way the other answers count input."""
    source = payload.get("input")
    if not isinstance(source, Mapping) or not ({"invokeModel", "converse"} & set(source)):
        raise _invalid("null at 'input'", "not be null and must contain one of invokeModel, converse")
    invoke = source.get("invokeModel")
    if isinstance(invoke, Mapping):
        raw = invoke.get("body")
        try:
            decoded = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
        except ValueError:
            raise BadRequest("The invokeModel body is not valid base64.") from None
        _, answer = answer_for("InvokeModel", model_id, parse_json_body(decoded, invoke=True))
    else:
        converse = source.get("converse")
        _, answer = answer_for("Converse", model_id, converse if isinstance(converse, Mapping) else {})
    return {"inputTokens": answer.input_tokens}


def apply_guardrail_body(payload: Mapping[str, object]) -> dict[str, object]:
    content = payload.get("content")
    if not isinstance(content, list):
        raise _invalid("null at 'content'", "not be null")
    if payload.get("source") not in ("INPUT", "OUTPUT"):
        raise _invalid("at 'source'", "satisfy enum value set: [INPUT, OUTPUT]")
    units = max(1, sum(len(json.dumps(block)) for block in content) // 1000 + 1)
    return {"usage": _guardrail_usage(units), "action": "NONE", "outputs": [], "assessments": []}


def _guardrail_usage(units: int) -> dict[str, int]:
    usage = dict.fromkeys(("topicPolicyUnits", "contentPolicyUnits", "wordPolicyUnits"), units)
    usage["sensitiveInformationPolicyUnits"] = units
    return usage | dict.fromkeys(("sensitiveInformationPolicyFreeUnits", "contextualGroundingPolicyUnits"), 0)


def start_async_invoke_body(payload: Mapping[str, object], *, region: str, account: str) -> dict[str, object]:
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return {"invocationArn": f"arn:aws:bedrock:{region}:{account}:async-invoke/{digest}"}
