"""The one reader of botocore's service models and shipped data: operations, routes, statuses, partitions.

An operation addresses a model when its input has a `modelId` member, and streams when its output has an
event-stream member, so one botocore adds later is guarded without a change here; its HTTP route maps a
request back to its operation and model. The data is read through one loader, not a botocore session,
whose `get_service_model` raises ProfileNotFound when AWS_PROFILE names a missing profile.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

from botocore import xform_name

if TYPE_CHECKING:
    from collections.abc import Mapping

    from botocore.loaders import Loader
    from botocore.model import ServiceModel


RUNTIME: Final = "bedrock-runtime"
MODEL_MEMBER: Final = "modelId"
# Operations IAM authorizes under another operation's action (AWS documents Converse under InvokeModel).
_AUTHORIZED_AS: Final = {"Converse": "InvokeModel", "ConverseStream": "InvokeModelWithResponseStream"}


@functools.cache
def loader() -> Loader:
    """The process's botocore data loader (honours AWS_DATA_PATH, as botocore's own sessions do)."""
    from botocore.loaders import create_loader  # botocore's data loads only when needed

    return create_loader(os.environ.get("AWS_DATA_PATH"))


@functools.cache
def service_model(service_name: str = RUNTIME) -> ServiceModel:
    """A service's model as botocore ships it (latest API version), parsed once per process."""
    from botocore.model import ServiceModel

    return ServiceModel(loader().load_service_model(service_name, "service-2"), service_name)


def data(name: str) -> Any:
    """A botocore data file such as "partitions" or "endpoints", parsed once per process."""
    return loader().load_data(name)


# Partitions and the modelId rule


@functools.cache
def _partitions() -> tuple[tuple[str, frozenset[str], re.Pattern[str]], ...]:
    rows = [
        (p["id"], frozenset(p.get("regions", {})), re.compile(p["regionRegex"]))
        for p in data("partitions")["partitions"]
    ]
    # Explicit region lists first, the "aws" catch-all regex last.
    return tuple(sorted(rows, key=lambda row: row[0] == "aws"))


@functools.lru_cache(maxsize=256)
def partition_of(region: str) -> str:
    """The partition a region belongs to: ``"cn-north-1"`` -> ``"aws-cn"``; unknown shapes -> ``"aws"``."""
    rows = _partitions()
    for name, regions, _ in rows:
        if region in regions:
            return name
    for name, _, regex in rows:
        if regex.match(region):
            return name
    return "aws"


@functools.cache
def model_id_rule() -> tuple[re.Pattern[str], int]:
    """The modelId pattern and maximum length of the service model (botocore does not enforce them)."""
    shape = service_model().operation_model("InvokeModel").input_shape
    metadata = shape.members[MODEL_MEMBER].metadata  # type: ignore[union-attr]  # InvokeModel has an input
    return re.compile(metadata["pattern"]), int(metadata["max"])


def max_model_id_length() -> int:
    """The longest modelId the service model allows."""
    return model_id_rule()[1]


# Errors


@functools.cache
def modeled_statuses() -> dict[str, int]:
    """Each modeled error code's HTTP status ("ThrottlingException": 429)."""
    return {shape.name: shape.metadata["error"]["httpStatusCode"] for shape in service_model().error_shapes}


def modeled_status(code: str) -> int | None:
    """The modeled HTTP status of a code, also in the lowerCamel form mid-stream codes take."""
    return modeled_statuses().get(code[:1].upper() + code[1:])


@functools.cache
def stream_operations() -> frozenset[str]:
    """The operations that answer with an event stream (and send none: not the bidirectional one)."""
    model = service_model()
    ops = (model.operation_model(name) for name in model.operation_names)
    return frozenset(op.name for op in ops if op.has_event_stream_output and not op.has_event_stream_input)


@functools.cache
def stream_exceptions(operation: str | None = None) -> Mapping[str, str]:
    """Mid-stream exceptions of one operation (None: of every one): lowerCamel member name (what
    :exception-type carries) -> error code, sorted by member name."""
    model = service_model()
    found: dict[str, str] = {}
    for name in model.operation_names if operation is None else (operation,):
        stream = model.operation_model(name).get_event_stream_output()
        members = stream.members.items() if stream is not None else ()  # type: ignore[attr-defined]  # a StructureShape
        found.update((member, shape.name) for member, shape in members if shape.metadata.get("exception"))
    return dict(sorted(found.items()))


# Operations and their routes


def action_for(operation: str) -> str:
    """The IAM action a bedrock-runtime operation needs (Converse is authorized as InvokeModel, ...)."""
    return "bedrock:" + _AUTHORIZED_AS.get(operation, operation)


@dataclass(frozen=True, slots=True)
class OperationSpec:
    name: str  # botocore operation name, e.g. "InvokeModel"
    method: str  # boto3 method name, e.g. "invoke_model"
    model_member: str | None  # input member naming the model, None when the operation addresses none
    action: str  # the IAM action the operation needs
    stream_member: str | None  # output member holding the event stream, None for plain responses
    http_method: str
    route: re.Pattern[str]  # the request URI's path as a regex, its labels as named groups
    model_in_path: bool  # modelId is a URI label (InvokeModel, ...) or a body member (StartAsyncInvoke)


def _spec(model: ServiceModel, name: str) -> OperationSpec:
    operation = model.operation_model(name)
    members = operation.input_shape.members if operation.input_shape is not None else {}
    stream = operation.get_event_stream_output()
    stream_member = None
    if stream is not None and operation.output_shape is not None:
        stream_member = next(
            key for key, shape in operation.output_shape.members.items() if shape.name == stream.name
        )
    model_id = members.get(MODEL_MEMBER)
    return OperationSpec(
        name=name,
        method=xform_name(name),
        model_member=MODEL_MEMBER if model_id is not None else None,
        action=action_for(name),
        stream_member=stream_member,
        http_method=operation.http.get("method", "POST"),
        route=_route_regex(operation.http.get("requestUri", "/")),
        model_in_path=model_id is not None and model_id.serialization.get("location") == "uri",
    )


def _route_regex(request_uri: str) -> re.Pattern[str]:
    # "/model/{modelId}/invoke" -> r"/model/(?P<modelId>[^/]+)/invoke"; a greedy label "{key+}" spans "/".
    # The query string is not part of the route: it never names the operation.
    pattern = ""
    for literal, label in re.findall(r"([^{]*)(?:\{([^}]*)\})?", request_uri.partition("?")[0]):
        pattern += re.escape(literal)
        if label:
            pattern += f"(?P<{label.rstrip('+')}>{'.+' if label.endswith('+') else '[^/]+'})"
    return re.compile(pattern)


@functools.lru_cache(maxsize=8)
def operation_specs(model: ServiceModel) -> Mapping[str, OperationSpec]:
    """Every operation of the service, keyed by its boto3 method name; routes without labels first, so a
    literal path is never taken for a label's value."""
    specs = sorted((_spec(model, name) for name in model.operation_names), key=lambda s: s.route.groups)
    return {spec.method: spec for spec in specs}


def operations_at(
    specs: Mapping[str, OperationSpec], method: str | None, path: str
) -> list[tuple[OperationSpec, dict[str, str]]]:
    """The operations a request's method and (still URL-encoded) path address, with their path labels.

    One for a request; a presigned URL (method None) may be used for every operation on its path.
    """
    found = []
    for spec in specs.values():
        if method in {spec.http_method, None}:
            match = spec.route.fullmatch(path)
            if match is not None:
                found.append((spec, match.groupdict()))
                if method is not None:  # a method and a path name one operation
                    break
    return found


def route(method: str, raw_path: str, service: str = RUNTIME) -> tuple[str, dict[str, str]] | None:
    """The operation a received request line names and its URL-decoded path labels; None if none."""
    found = _route(method.upper(), raw_path.partition("?")[0], service)
    return None if found is None else (found[0], dict(found[1]))


@functools.lru_cache(maxsize=1024)
def _route(method: str, path: str, service: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    # Cached: a test suite calls the same few models over and over, and routing is a pure function.
    found = operations_at(operation_specs(service_model(service)), method, path)
    if not found:
        return None
    spec, labels = found[0]
    return spec.name, tuple((key, unquote(value)) for key, value in labels.items())
