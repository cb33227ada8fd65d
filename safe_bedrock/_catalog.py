"""The one model catalog: models, regions, lifecycle, inference profiles and the regions they route to.

The facts ship as a dated snapshot (``catalog.json`` in the package; its ``meta`` names the sources and
what is left out). ``SAFE_BEDROCK_CATALOG=/path/to/local.json`` points at a copy refreshed from the real
control plane by ``safe-bedrock catalog update`` (`from_control_plane` + `save`). Lookups are plain functions
of frozen data; only `load` and `save` touch files. Its geographies say where profiles route (`profiles+`,
policies); otherwise it informs warnings and suggestions only, never refusing an id it does not know.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from dataclasses import astuple, dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

ENV_VAR: Final = "SAFE_BEDROCK_CATALOG"
PACKAGED: Final = Path(__file__).with_name("catalog.json")
Lifecycle = Literal["ACTIVE", "LEGACY", "END_OF_LIFE"]
Offered = Literal["ON_DEMAND", "INFERENCE_PROFILE"]
# The InvokeModel body shapes the fake's responders speak; a model outside them has family None.
FAMILIES: Final = (
    "anthropic", "anthropic_text", "titan", "titan_embed", "nova", "llama", "mistral", "cohere_command",
    "cohere_embed", "jamba", "openai", "deepseek", "qwen", "writer", "stability",
)  # fmt: skip
# First match wins: an id's prefix implies its family (for models newer than the snapshot).
_FAMILY_PREFIXES: Final = (
    ("anthropic.claude-v2", "anthropic_text"), ("anthropic.claude-instant", "anthropic_text"),
    ("anthropic.", "anthropic"), ("amazon.titan-embed", "titan_embed"), ("amazon.titan-text", "titan"),
    ("amazon.nova-2-lite", "nova"), ("amazon.nova-lite", "nova"), ("amazon.nova-micro", "nova"),
    ("amazon.nova-pro", "nova"), ("amazon.nova-premier", "nova"), ("cohere.command-r", "cohere_command"),
    ("cohere.embed", "cohere_embed"), ("openai.gpt-oss", "openai"), ("meta.", "llama"),
    ("mistral.", "mistral"), ("ai21.jamba", "jamba"), ("deepseek.", "deepseek"), ("qwen.", "qwen"),
    ("writer.", "writer"), ("stability.", "stability"),
)  # fmt: skip
# The JSON keys of a model's and a profile's row, in the order of the dataclass fields.
_MODEL_KEYS: Final = (
    "id", "provider", "input", "output", "streaming", "inference", "regions", "lifecycle", "family",
)  # fmt: skip
_PROFILE_KEYS: Final = ("id", "geography", "model", "regions")


class CatalogError(ValueError):
    """A catalog file that cannot be used: the message names the file, the problem and the fix."""


@dataclass(frozen=True, slots=True)
class Model:
    """One foundation model. `regions`: where it is served in-Region (on demand); `inference_types`: some of
    ``ON_DEMAND``, ``INFERENCE_PROFILE``, ``PROVISIONED`` (no ``ON_DEMAND``: callable only via a profile)."""

    id: str
    provider: str
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    streaming: bool
    inference_types: tuple[str, ...]
    regions: tuple[str, ...]
    lifecycle: Lifecycle
    family: str | None


@dataclass(frozen=True, slots=True)
class Profile:
    """One system inference profile: ``us.anthropic...``; `regions` are those it routes between."""

    id: str
    geography: str
    model_id: str
    regions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Catalog:
    """The snapshot: look models and profiles up by id, where they are offered, what a geography routes to."""

    date: str
    models: Mapping[str, Model]
    profiles: Mapping[str, Profile]
    geographies: Mapping[str, tuple[str, ...]]
    meta: Mapping[str, Any] = field(default_factory=dict)
    _by_model: Mapping[str, tuple[Profile, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_model: dict[str, list[Profile]] = {}
        for profile in self.profiles.values():
            by_model.setdefault(profile.model_id, []).append(profile)
        object.__setattr__(self, "_by_model", MappingProxyType({k: tuple(v) for k, v in by_model.items()}))

    def model(self, model_id: str) -> Model | None:
        """The model with this id; for a system profile id, the model it serves."""
        profile = self.profiles.get(model_id)
        return self.models.get(profile.model_id if profile else model_id)

    def profile(self, profile_id: str) -> Profile | None:
        return self.profiles.get(profile_id)

    def profiles_of(self, model_id: str) -> tuple[Profile, ...]:
        """The system inference profiles that serve `model_id`, in id order."""
        return self._by_model.get(model_id, ())

    def closest(self, model_id: str, n: int = 3) -> tuple[str, ...]:
        """Up to `n` known model or profile ids closest to `model_id`, best first, for "did you mean"."""
        return tuple(difflib.get_close_matches(model_id, [*self.models, *self.profiles], n=n, cutoff=0.6))

    def offered(self, model_id: str, region: str) -> Offered | None:
        """How a client in `region` can call `model_id` (a model or profile id): ``"ON_DEMAND"`` by its bare
        id, ``"INFERENCE_PROFILE"`` only through a profile, None when the catalog knows no way."""
        profile = self.profiles.get(model_id)
        if profile is not None:
            return "INFERENCE_PROFILE" if region in profile.regions else None
        model = self.models.get(model_id)
        if model is None:
            return None
        if region in model.regions and "ON_DEMAND" in model.inference_types:
            return "ON_DEMAND"
        if any(region in p.regions for p in self.profiles_of(model_id)):
            return "INFERENCE_PROFILE"
        return None

    def family(self, model_id: str) -> str | None:
        """The InvokeModel body family of a model or profile id (None: unknown, or no body we model)."""
        model = self.model(model_id)
        return model.family if model is not None else None


def load(path: str | os.PathLike[str] | None = None) -> Catalog:
    """The catalog at `path`, else at ``$SAFE_BEDROCK_CATALOG``, else the packaged snapshot (read once)."""
    chosen = path if path is not None else os.environ.get(ENV_VAR) or None
    if chosen is None:
        return _read(str(PACKAGED), 0)
    where = Path(chosen)
    try:
        stamp = where.stat().st_mtime_ns
    except OSError as exc:
        raise _error(where, f"cannot be read ({exc.strerror})") from None
    return _read(str(where), stamp)


@functools.lru_cache(maxsize=4)
def _read(path: str, stamp: int) -> Catalog:  # noqa: ARG001 - the cache key: a rewritten file is read again
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        models = [_model(row) for row in raw["models"]]
        profiles = [Profile(*_fields(row, _PROFILE_KEYS)) for row in raw["profiles"]]
        geographies = {geo: tuple(regions) for geo, regions in raw["geographies"].items()}
        return _catalog(raw["meta"], models, profiles, geographies)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _error(Path(path), f"is not a safe-bedrock catalog ({type(exc).__name__}: {exc})") from None


def _error(path: Path, problem: str) -> CatalogError:
    return CatalogError(
        f"model catalog {path} {problem}. Fix: run `safe-bedrock catalog update --output {path}`, or unset "
        f"{ENV_VAR} to use the snapshot shipped with safe-bedrock"
    )


def _fields(row: Mapping[str, Any], keys: Sequence[str]) -> list[Any]:
    return [tuple(row[k]) if isinstance(row[k], list) else row[k] for k in keys]


def _model(row: Mapping[str, Any]) -> Model:
    if row["lifecycle"] not in ("ACTIVE", "LEGACY", "END_OF_LIFE") or row["family"] not in (*FAMILIES, None):
        raise ValueError(f"model {row['id']!r}: lifecycle {row['lifecycle']!r} or family {row['family']!r}")
    return Model(*_fields(row, _MODEL_KEYS))


def _catalog(
    meta: Mapping[str, Any], models: Iterable[Model], profiles: Iterable[Profile], geographies: Any
) -> Catalog:
    return Catalog(
        date=str(meta["date"]),
        models=MappingProxyType({m.id: m for m in sorted(models, key=lambda m: m.id)}),
        profiles=MappingProxyType({p.id: p for p in sorted(profiles, key=lambda p: p.id)}),
        geographies=MappingProxyType(dict(geographies)),
        meta=MappingProxyType(dict(meta)),
    )


def save(catalog: Catalog, path: str | os.PathLike[str]) -> None:
    """Write `catalog` as JSON in the packaged snapshot's format (one model or profile per line)."""

    def rows(items: Iterable[Model | Profile], keys: Sequence[str]) -> str:
        return ",\n".join(json.dumps(dict(zip(keys, astuple(item), strict=True))) for item in items)

    lines = [
        "{",
        f'"meta": {json.dumps({**catalog.meta, "date": catalog.date})},',
        f'"geographies": {json.dumps(dict(catalog.geographies))},',
        '"models": [',
        rows(catalog.models.values(), _MODEL_KEYS),
        '],\n"profiles": [',
        rows(catalog.profiles.values(), _PROFILE_KEYS),
        "]\n}\n",
    ]
    partial = Path(f"{path}.partial")  # then renamed: a process reading the file never sees half of it
    partial.write_text("\n".join(lines), encoding="utf-8")
    partial.replace(path)


def family_of(model_id: str) -> str | None:
    """The body family a model id's name implies, for models the snapshot does not know yet."""
    return next((family for prefix, family in _FAMILY_PREFIXES if model_id.startswith(prefix)), None)


def from_control_plane(
    replies: Mapping[str, tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]],
    *,
    date: str,
    base: Catalog | None = None,
) -> Catalog:
    """A catalog from the control plane's replies per region: ``{region: (modelSummaries,
    inferenceProfileSummaries)}`` as boto3's ``bedrock`` client returns them (``list_foundation_models``,
    ``list_inference_profiles``). The queried regions' facts replace `base`'s; the rest of `base` is kept."""
    models = dict(base.models) if base else {}
    regions = {m.id: set(m.regions) - set(replies) for m in models.values()}
    types: dict[str, dict[str, None]] = {}
    for region, (summaries, _) in replies.items():
        for s in summaries:
            model_id, old = s["modelId"], models.get(s["modelId"])
            types.setdefault(model_id, {}).update(dict.fromkeys(s.get("inferenceTypesSupported", ())))
            if "ON_DEMAND" in types[model_id] and "ON_DEMAND" in s.get("inferenceTypesSupported", ()):
                regions.setdefault(model_id, set()).add(region)
            status = s.get("modelLifecycle", {}).get("status", "ACTIVE")
            models[model_id] = Model(
                model_id, s.get("providerName", ""), tuple(s.get("inputModalities", ())),
                tuple(s.get("outputModalities", ())), bool(s.get("responseStreamingSupported", False)),
                tuple(types[model_id]), (), status if status in ("ACTIVE", "LEGACY") else "ACTIVE",
                old.family if old else family_of(model_id),
            )  # fmt: skip
    models = {k: replace(m, regions=tuple(sorted(regions.get(k, ())))) for k, m in models.items()}
    profiles = dict(base.profiles) if base else {}
    for region, (_, summaries) in replies.items():
        for s in summaries:
            if s.get("type", "SYSTEM_DEFINED") != "SYSTEM_DEFINED":
                continue  # application profiles belong to an account, not to the catalog
            profile_id, arns = s["inferenceProfileId"], [m["modelArn"] for m in s.get("models", ())]
            # Source region plus destinations; a global profile's region-less ARN adds no region.
            routed = {region, *(arn.split(":")[3] for arn in arns)} - {""}
            prior = profiles.get(profile_id)
            routed |= set(prior.regions) if prior else set()
            model_id = arns[0].rsplit("/", 1)[-1] if arns else (prior.model_id if prior else "")
            geography = profile_id.split(".", 1)[0]
            profiles[profile_id] = Profile(profile_id, geography, model_id, tuple(sorted(routed)))
    geographies = {g: set(r) for g, r in (base.geographies.items() if base else ())}
    for p in profiles.values():
        geographies.setdefault(p.geography, set()).update(() if p.geography == "global" else p.regions)
    meta = {**(base.meta if base else {}), "date": date, "refreshed_regions": sorted(replies)}
    routes = {g: tuple(sorted(r)) for g, r in sorted(geographies.items())}
    return _catalog(meta, models.values(), profiles.values(), routes)
