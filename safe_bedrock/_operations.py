"""What each bedrock-runtime operation is, read from botocore's service model (sans-I/O).

The service model is the source of truth: an operation addresses a model when its input has a `modelId`
member, and streams when its output has an event-stream member. An operation botocore adds later is
therefore guarded without a code change here, at the method call and on the wire: each operation's HTTP
route (method and request URI) is read from the same model, so the request about to be sent can be mapped
back to its operation and model.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore import xform_name

from safe_bedrock._policy import action_for

if TYPE_CHECKING:
    from collections.abc import Mapping

    from botocore.model import ServiceModel

MODEL_MEMBER = "modelId"


@dataclass(frozen=True, slots=True)
class OperationSpec:
    name: str  # botocore operation name, e.g. "InvokeModel"
    method: str  # boto3 method name, e.g. "invoke_model"
    model_member: str | None  # input member naming the model, None when the operation addresses none
    action: str  # the IAM action the operation needs
    stream_member: str | None  # output member holding the event stream, None for plain responses
    http_method: str = "POST"
    route: re.Pattern[str] | None = None  # the request URI's path as a regex, its labels as named groups
    model_in_path: bool = (
        True  # modelId is a URI label (InvokeModel, ...) or a body member (StartAsyncInvoke)
    )


def _spec(service_model: ServiceModel, name: str) -> OperationSpec:
    operation = service_model.operation_model(name)
    members = operation.input_shape.members if operation.input_shape is not None else {}
    stream = operation.get_event_stream_output()
    stream_member = None
    if stream is not None and operation.output_shape is not None:
        stream_member = next(
            key for key, shape in operation.output_shape.members.items() if shape.name == stream.name
        )
    model = members.get(MODEL_MEMBER)
    return OperationSpec(
        name=name,
        method=xform_name(name),
        model_member=MODEL_MEMBER if model is not None else None,
        action=action_for(name),
        stream_member=stream_member,
        http_method=operation.http.get("method", "POST"),
        route=_route(operation.http.get("requestUri", "/")),
        model_in_path=model is not None and model.serialization.get("location") == "uri",
    )


def _route(request_uri: str) -> re.Pattern[str]:
    # "/model/{modelId}/invoke" -> r"/model/(?P<modelId>[^/]+)/invoke"; a greedy label "{key+}" spans "/".
    # The query string is not part of the route: it never names the operation.
    path = request_uri.partition("?")[0]
    pattern = ""
    for literal, label in re.findall(r"([^{]*)(?:\{([^}]*)\})?", path):
        pattern += re.escape(literal)
        if label:
            name, greedy = label.rstrip("+"), label.endswith("+")
            pattern += f"(?P<{name}>{'.+' if greedy else '[^/]+'})"
    return re.compile(pattern)


@functools.lru_cache(maxsize=8)
def _specs_for(service_model: ServiceModel) -> Mapping[str, OperationSpec]:
    specs = (_spec(service_model, name) for name in service_model.operation_names)
    return {spec.method: spec for spec in specs}


def operation_specs(service_model: ServiceModel) -> Mapping[str, OperationSpec]:
    """Every operation of the service, keyed by its boto3 method name."""
    return _specs_for(service_model)


def operations_at(
    specs: Mapping[str, OperationSpec], method: str | None, path: str
) -> list[tuple[OperationSpec, dict[str, str]]]:
    """The operations a request's method and (still URL-encoded) path address, with their path labels.

    One for a request; a presigned URL (method None) may be used for every operation on its path.
    """
    found = []
    for spec in specs.values():
        if method in {spec.http_method, None} and spec.route is not None:
            match = spec.route.fullmatch(path)
            if match is not None:
                found.append((spec, match.groupdict()))
                if method is not None:  # a method and a path name one operation
                    break
    return found
