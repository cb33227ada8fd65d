"""Which models the fake serves, and how: Bedrock's answer to a call it would not serve, from the catalog.

Only ids the catalog can speak for are judged: a foundation-model or system inference-profile id (bare or
as an ARN). Provisioned, custom and imported models, application inference profiles and prompts are
account resources no snapshot knows, so the fake serves them as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from safe_bedrock._catalog import FAMILIES, Lifecycle, Model, family_of, load
from safe_bedrock._ids import ModelKind, base_model_id, parse_model_id
from safe_bedrock.errors import InvalidModelIdError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

_LIFECYCLES = get_args(Lifecycle)
Refusal = tuple[str, str]  # (error code, message variant in `_messages`)
_INVALID: Refusal = ("ValidationException", "invalid_model_id")
_RETIRED: Refusal = ("ResourceNotFoundException", "end_of_life")


def added_model(
    model_id: str,
    *,
    family: str | None = None,
    regions: Iterable[str] = (),
    streaming: bool = True,
    lifecycle: Lifecycle = "ACTIVE",
) -> Model:
    """The model a test passes to `models=` / `add_model()`, served on demand in `regions` (empty: every
    region); a bad argument raises ValueError naming it and the fix."""
    try:
        ref = parse_model_id(model_id, region="us-east-1")
    except InvalidModelIdError as exc:
        raise ValueError(f"add_model: {exc}") from None
    if ref.kind is not ModelKind.FOUNDATION_MODEL:
        raise ValueError(
            f"add_model: {model_id!r} is not a foundation-model id (provider.model[:version]); profiles, "
            "provisioned and custom models are served without adding them"
        )
    if family is not None and family not in FAMILIES:
        raise ValueError(f"add_model: family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if lifecycle not in _LIFECYCLES:
        raise ValueError(f"add_model: lifecycle must be one of {', '.join(_LIFECYCLES)}, got {lifecycle!r}")
    regions = (regions,) if isinstance(regions, str) else tuple(regions)
    model_id, family = ref.resource_id, family or family_of(ref.resource_id)
    text, provider = ("TEXT",), model_id.split(".")[0]
    return Model(model_id, provider, text, text, streaming, ("ON_DEMAND",), regions, lifecycle, family)


def refusal(model_id: str, *, region: str, operation: str, added: Mapping[str, Model]) -> Refusal | None:
    """(code, variant) of Bedrock's error for calling `model_id` from `region`, or None when it is served."""
    try:
        ref = parse_model_id(model_id, region=region)
    except InvalidModelIdError:
        return None  # the fake's own request validation answers malformed ids
    if ref.kind not in (ModelKind.FOUNDATION_MODEL, ModelKind.INFERENCE_PROFILE):
        return None
    mine = added.get(base_model_id(ref))  # a model a test added is served through its profiles too
    if mine is not None:
        if mine.lifecycle == "END_OF_LIFE":
            return _RETIRED
        return None if not mine.regions or region in mine.regions else _INVALID
    catalog = load()
    model = catalog.model(ref.resource_id)
    if model is None:
        return _INVALID
    if model.lifecycle == "END_OF_LIFE":
        return _RETIRED
    offered = catalog.offered(ref.resource_id, region)
    if offered is None:
        return _INVALID
    # CountTokens runs no inference: a profile-only model answers it by its bare id (per recorded traffic).
    on_demand = ref.kind is ModelKind.FOUNDATION_MODEL and operation != "CountTokens"
    if offered == "INFERENCE_PROFILE" and on_demand:
        return ("ValidationException", "inference_profile_required")
    return None
