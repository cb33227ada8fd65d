"""What each bedrock-runtime operation is, read from botocore's service model (sans-I/O).

The service model is the source of truth: an operation addresses a model when its input has a `modelId`
member, and streams when its output has an event-stream member. An operation botocore adds later is
therefore guarded without a code change here.
"""

from __future__ import annotations

import functools
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


def _spec(service_model: ServiceModel, name: str) -> OperationSpec:
    operation = service_model.operation_model(name)
    members = operation.input_shape.members if operation.input_shape is not None else {}
    stream = operation.get_event_stream_output()
    stream_member = None
    if stream is not None and operation.output_shape is not None:
        stream_member = next(
            key for key, shape in operation.output_shape.members.items() if shape.name == stream.name
        )
    return OperationSpec(
        name=name,
        method=xform_name(name),
        model_member=MODEL_MEMBER if MODEL_MEMBER in members else None,
        action=action_for(name),
        stream_member=stream_member,
    )


@functools.lru_cache(maxsize=8)
def _specs_for(service_model: ServiceModel) -> Mapping[str, OperationSpec]:
    specs = (_spec(service_model, name) for name in service_model.operation_names)
    return {spec.method: spec for spec in specs}


def operation_specs(service_model: ServiceModel) -> Mapping[str, OperationSpec]:
    """Every operation of the service, keyed by its boto3 method name."""
    return _specs_for(service_model)
