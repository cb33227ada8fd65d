"""ModelAllowlist: which models a client may call, decided before anything is sent.

What entries mean, the data-residency rule (`profiles+`), deny by default, the broad-entry rule and the
sources are the README's "The allowlist"; this module is their one implementation. Streaming actions are
InvokeModelWithResponseStream and InvokeModelWithBidirectionalStream; every other model-addressed action
(Converse, CountTokens, StartAsyncInvoke, ...) counts as invoking.

Entries become rules in `_entries` (the grammar, the checks, the coverage rule). A decision is a dict lookup
for exact entries and one regex per kind (the `_policy.iam_pattern` of each wildcard entry, joined) for the
rest. Nothing is cached between decisions and nothing is process-wide; the closest entries (difflib) are
computed only for a refusal.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from safe_bedrock._catalog import load
from safe_bedrock._entries import PLACEHOLDER_REGION, Rule, is_wild, resource_part, rules
from safe_bedrock._ids import ModelKind, ModelRef, base_model_id, match_key, parse_model_id
from safe_bedrock._policy import (
    INVOKE,
    INVOKE_BIDI_STREAM,
    INVOKE_STREAM,
    PolicyDocument,
    any_account_denies,
    iam_match,
    iam_pattern,
    load_json,
    routed_refusal,
)
from safe_bedrock._service import partition_of
from safe_bedrock.errors import AllowlistError as AllowlistError  # noqa: PLC0414 - the CLI imports it from here
from safe_bedrock.errors import EmptyAllowlistWarning as EmptyAllowlistWarning  # noqa: PLC0414 - as above
from safe_bedrock.errors import InvalidModelIdError, PolicyError, UnknownModelWarning

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the backport, same API
    import tomli as tomllib  # type: ignore[import-not-found]

ENV_VAR: Final = "SAFE_BEDROCK_ALLOWED_MODELS"
_STREAM_ACTIONS: Final = frozenset(a.lower() for a in (INVOKE_STREAM, INVOKE_BIDI_STREAM))
_MAX_REGIONS: Final = 64  # more than AWS has: a bound copy per region, never an unbounded cache
_FILE_KEYS: Final = ("allow", "invoke_only", "stream_only")
_MAX_FILE_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision of `ModelAllowlist.decide`: allowed by an entry, or refused with why and what to do."""

    allowed: bool
    matched: str | None  # the entry that allowed the call (as written), None when refused
    closest: tuple[str, ...]  # allowed entries that look most like the refused id
    entry_to_add: str  # the exact entry that would allow this call ("" when allowed)
    reason: str = ""  # one line on why it was refused
    fix: str = ""  # what to change when adding `entry_to_add` would not help (a Deny, a routed region)


class _Table:
    """Rules resolved in one region: exact keys in a dict, the wildcard patterns of each kind one regex."""

    __slots__ = ("exact", "wild")

    def __init__(self, rules: Iterable[Rule], *, region: str, partition: str) -> None:
        self.exact: dict[str, str] = {}
        patterns: dict[ModelKind | None, dict[str, str]] = {}
        for rule in rules:
            for key in rule.keys(region, partition):
                if is_wild(key):
                    patterns.setdefault(rule.kind, {}).setdefault(key, rule.entry)
                else:
                    self.exact.setdefault(key, rule.entry)
        # One alternation per kind; each branch ends in an empty group, so `lastindex` names the entry.
        self.wild: dict[ModelKind | None, tuple[re.Pattern[str], list[str]]] = {
            kind: (
                re.compile("|".join(f"{iam_pattern(p).pattern}()" for p in found), re.DOTALL),
                [*found.values()],
            )
            for kind, found in patterns.items()
        }

    def match(self, kind: ModelKind, key: str) -> str | None:
        hit = self.exact.get(key)
        if hit is not None or not self.wild:
            return hit
        for wild in (self.wild.get(kind), self.wild.get(None)):
            if wild is not None and (found := wild[0].match(key)) and found.lastindex:
                return wild[1][found.lastindex - 1]
        return None


def _caller_stacklevel() -> int:
    """The stacklevel of the first frame outside the package, so a warning points at the user's line."""
    level, frame = 1, sys._getframe(1)
    while (
        frame.f_back is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "safe_bedrock"
    ):
        level, frame = level + 1, frame.f_back
    return level


# --- The allowlist -----------------------------------------------------------------------------------------


class ModelAllowlist:
    """The models a client may call; see the module documentation for the entry syntax.
    Added in version 0.1.0."""

    __slots__ = (
        "_by_region",
        "_policy",
        "_rules",
        "_tables",
        "_unknown",
        "allow_any",
        "entries",
        "invoke_entries",
        "partition",
        "region",
        "source",
        "stream_entries",
    )

    def __init__(
        self,
        entries: Iterable[str],
        *,
        region: str | None = None,
        partition: str | None = None,
        stream_entries: Iterable[str] | None = None,
        invoke_only: Iterable[str] = (),
        stream_only: Iterable[str] = (),
        allow_any: bool = False,
        source: str = "code",
    ) -> None:
        """Check every entry (`AllowlistError` names a bad or too-broad one) and warn if there are none.

        ``region`` fixes where bare ids resolve; without it, the client binds the allowlist to its region.
        ``source`` names where the entries came from in errors and logs.
        """
        if isinstance(entries, str):
            msg = f"entries is a list of model ids or ARNs, not one string: write [{entries!r}]"
            raise TypeError(msg)
        both = list(entries)
        self.source = source
        self.allow_any = allow_any
        self.region = region
        self.partition = partition or (partition_of(region) if region else None)
        self.invoke_entries = tuple(dict.fromkeys([*both, *invoke_only]))
        stream = both if stream_entries is None else stream_entries
        self.stream_entries = tuple(dict.fromkeys([*stream, *stream_only]))
        self.entries = tuple(dict.fromkeys([*self.invoke_entries, *self.stream_entries]))
        # (allow, deny) for invoking, then for streaming; denies come only from `from_policy`.
        invoke = rules(self.invoke_entries, source=source, broad_ok=allow_any)
        stream_rules = rules(self.stream_entries, source=source, broad_ok=allow_any)
        self._rules: tuple[tuple[Rule, ...], ...] = (invoke, (), stream_rules, ())
        self._policy: PolicyDocument | None = None
        self._by_region: dict[tuple[str, str], ModelAllowlist] = {}
        self._tables: tuple[tuple[_Table, _Table], ...] | None = None
        if not self.entries and not allow_any:
            warnings.warn(
                f"the model allowlist from {source} is empty: every model-addressed call will be refused. "
                f"List the models to allow (in code, {ENV_VAR}, a file or an IAM policy).",
                EmptyAllowlistWarning,
                stacklevel=_caller_stacklevel(),
            )
        self._unknown = _warn_unknown([*invoke, *stream_rules], source=source)
        if region is not None:
            self._tables = self._resolve(region, self.partition or partition_of(region))

    def _resolve(self, region: str, partition: str) -> tuple[tuple[_Table, _Table], ...]:
        tables = [_Table(rules, region=region, partition=partition) for rules in self._rules]
        return ((tables[0], tables[1]), (tables[2], tables[3]))

    def _denying(
        self, invoke: Iterable[str], stream: Iterable[str], policy: PolicyDocument
    ) -> ModelAllowlist:
        # from_policy: refuse what the policy denies, and decide system-profile calls on every routed ARN
        # as IAM does (with the document itself). Denies may be as broad as they like.
        deny_invoke = rules(invoke, source=self.source, broad_ok=True)
        deny_stream = rules(stream, source=self.source, broad_ok=True)
        self._rules = (self._rules[0], deny_invoke, self._rules[2], deny_stream)
        self._policy = any_account_denies(policy)
        if self.region is not None:
            self._tables = self._resolve(self.region, self.partition or partition_of(self.region))
        return self

    # -- sources ------------------------------------------------------------------------------------------

    @classmethod
    def from_env(
        cls,
        *,
        var: str = ENV_VAR,
        environ: Mapping[str, str] | None = None,
        region: str | None = None,
        partition: str | None = None,
        allow_any: bool = False,
    ) -> ModelAllowlist:
        """Entries from an environment variable, comma separated (whitespace around entries is ignored).

        A blank or missing variable gives an empty allowlist, which refuses every call and warns.
        """
        value = (os.environ if environ is None else environ).get(var, "")
        entries = [item.strip() for item in value.split(",") if item.strip()]
        return cls(entries, region=region, partition=partition, allow_any=allow_any, source=f"env {var}")

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        region: str | None = None,
        partition: str | None = None,
        allow_any: bool = False,
    ) -> ModelAllowlist:
        """Entries from a TOML or JSON file: ``allow``, ``invoke_only``, ``stream_only`` (lists of entries).

        TOML may also put them under a ``[safe-bedrock]`` table (for example in pyproject.toml as
        ``[tool.safe-bedrock]``).
        """
        file = Path(path)
        source = f"file {file}"
        data = _read_structured(file, source)
        for table in ("tool", "safe-bedrock"):
            inner = data.get(table)
            if isinstance(inner, Mapping) and (table == "safe-bedrock" or "safe-bedrock" in inner):
                data = inner if table == "safe-bedrock" else inner["safe-bedrock"]
        unknown = sorted(set(data) - set(_FILE_KEYS))
        if unknown:
            raise AllowlistError(
                source=source,
                problem=f"unknown key(s) {', '.join(map(repr, unknown))}",
                fix=f"use only {', '.join(_FILE_KEYS)} (lists of model ids or ARNs)",
            )
        lists: dict[str, list[str]] = {}
        for key in _FILE_KEYS:
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise AllowlistError(
                    source=source, problem=f"{key!r} must be a list of strings", fix=f'write {key} = ["..."]'
                )
            lists[key] = [item.strip() for item in value]
        return cls(
            lists["allow"],
            invoke_only=lists["invoke_only"],
            stream_only=lists["stream_only"],
            region=region,
            partition=partition,
            allow_any=allow_any,
            source=source,
        )

    @classmethod
    def from_policy(
        cls,
        policy: PolicyDocument | Mapping[str, object] | str | bytes | os.PathLike[str],
        *,
        region: str | None = None,
        partition: str | None = None,
        allow_any: bool = False,
        source: str | None = None,
    ) -> ModelAllowlist:
        """The models an IAM identity policy allows to invoke (and to stream), minus its explicit denies.

        ``policy`` is a `PolicyDocument`, a decoded mapping, JSON text or a path to a JSON file. A system
        inference profile is allowed as IAM allows it: the profile and the foundation model in every region
        it routes to (`routed_refusal`). What cannot be read exactly raises `PolicyError`.
        """
        document, where = _load_policy(policy, source)
        invoke, stream = (document.allowed_resources(a) for a in (INVOKE, INVOKE_STREAM))
        denies = document.denied_resources(INVOKE), document.denied_resources(INVOKE_STREAM)
        allowlist = cls(
            invoke,
            stream_entries=stream,
            region=region,
            partition=partition,
            allow_any=allow_any,
            source=where,
        )
        return allowlist._denying(*denies, document)

    # -- binding and deciding -----------------------------------------------------------------------------

    def bind(self, *, region: str, partition: str | None = None) -> ModelAllowlist:
        """This allowlist with bare entries resolved in ``region`` (kept per region on this one, up to a few
        dozen); one with its own region returns itself."""
        if self._tables is not None:
            return self
        key = (region, partition or partition_of(region))
        bound = self._by_region.get(key)
        if bound is None:
            bound = object.__new__(type(self))
            for name in ModelAllowlist.__slots__:
                object.__setattr__(bound, name, getattr(self, name))
            bound.region, bound.partition = key
            bound._by_region = {}
            bound._tables = self._resolve(*key)
            if len(self._by_region) < _MAX_REGIONS:  # decide() binds to regions named in untrusted ARNs
                bound = self._by_region.setdefault(key, bound)  # a racing thread's copy is just as good
        return bound

    def decide(self, ref: ModelRef, *, action: str) -> Decision:
        """Whether ``action`` on ``ref`` is allowed; a refusal says why, what is close and what to add."""
        if self._tables is None:
            bound = self.bind(region=ref.region or PLACEHOLDER_REGION, partition=ref.partition)
            return bound.decide(ref, action=action)
        stream = action.lower() in _STREAM_ACTIONS
        allow, deny = self._tables[stream]
        key = match_key(ref)
        hit = allow.match(ref.kind, key)
        if hit is None:
            return self._refuse(ref, stream=stream, reason=self._why(ref, key, stream=stream))
        denied = deny.match(ref.kind, key)
        if denied is not None:
            fix = f"narrow or remove the Deny on {denied} ({self.source}), or call a model outside it"
            reason = f"an explicit Deny in the policy covers it ({denied})"
            return self._refuse(ref, stream=stream, reason=reason, fix=fix)
        if self._policy is not None and ref.kind is ModelKind.INFERENCE_PROFILE:
            reason = routed_refusal(self._policy, ref, action=INVOKE_STREAM if stream else INVOKE)
            if reason:  # it says what to change in the policy
                return self._refuse(ref, stream=stream, reason=reason, fix=reason)
        return Decision(allowed=True, matched=hit, closest=(), entry_to_add="")

    def allows(self, model_id: str, *, region: str, action: str = INVOKE) -> bool:
        """Whether a client in ``region`` may call ``action`` on ``model_id``, decided as the client would.

        A malformed or unsafe id is not allowed (False, no exception: untrusted input needs no ``try``); a
        ``region`` that is not one raises `ValueError`. `decide` gives the reason and the fix.
        Added in version 0.2.0.
        """
        try:
            ref = parse_model_id(model_id, region=region)
        except InvalidModelIdError:
            return False
        return self.bind(region=region).decide(ref, action=action).allowed

    def _refuse(self, ref: ModelRef, *, stream: bool, reason: str, fix: str = "") -> Decision:
        local = ref.region == self.region and ref.partition == self.partition
        if local and ref.kind in {ModelKind.FOUNDATION_MODEL, ModelKind.INFERENCE_PROFILE}:
            to_add = ref.resource_id
        else:
            to_add = match_key(ref)
        closest = self._closest(ref, stream=stream)
        return Decision(
            allowed=False, matched=None, closest=closest, entry_to_add=to_add, reason=reason, fix=fix
        )

    def _why(self, ref: ModelRef, key: str, *, stream: bool) -> str:
        assert self._tables is not None  # noqa: S101 - only called on a bound allowlist
        other_allow, other_deny = self._tables[not stream]
        if other_allow.match(ref.kind, key) is not None and other_deny.match(ref.kind, key) is None:
            return "allowed for invoking only, not for streaming" if stream else "allowed for streaming only"
        if ref.kind is ModelKind.INFERENCE_PROFILE:
            model = base_model_id(ref)
            fm = f"arn:{ref.partition}:bedrock:{ref.region}::foundation-model/{model}"
            if self._tables[stream][0].match(ModelKind.FOUNDATION_MODEL, fm) is not None:
                return (
                    f"the foundation model {model} is allowed, but not this cross-Region profile, which may "
                    "send requests to other regions; allow the profile itself if that is acceptable"
                )
        return "not on the allowlist"

    def _closest(self, ref: ModelRef, *, stream: bool) -> tuple[str, ...]:
        by_name: dict[str, str] = {}
        for entry in self.stream_entries if stream else self.invoke_entries:
            if entry not in self._unknown:  # suggest only ids that exist
                by_name.setdefault(resource_part(entry), entry)
        found: dict[str, None] = {}
        for query in dict.fromkeys((ref.resource_id, base_model_id(ref) or ref.resource_id)):
            for name in difflib.get_close_matches(query, by_name, n=3, cutoff=0.6):
                found[by_name[name]] = None
        return tuple(found)[:3]

    def __repr__(self) -> str:
        shown = list(self.entries[:5])
        more = f" and {len(self.entries) - 5} more" if len(self.entries) > 5 else ""
        region = f", region={self.region!r}" if self.region else ""
        only = ""
        if set(self.invoke_entries) != set(self.stream_entries):
            only = f", invoke={len(self.invoke_entries)}, stream={len(self.stream_entries)}"
        any_ = ", allow_any=True" if self.allow_any else ""
        return f"ModelAllowlist({shown!r}{more}, source={self.source!r}{region}{only}{any_})"


_CATALOGUED: Final = (ModelKind.FOUNDATION_MODEL, ModelKind.INFERENCE_PROFILE)


def _warn_unknown(rules: Iterable[Rule], *, source: str) -> frozenset[str]:
    """Warn once per entry that names no model or system profile the catalog knows (a typo, most likely)
    and return those entries, which are never suggested. Never a refusal: the catalog is a dated snapshot,
    and a model newer than it is still callable."""
    catalog = load()
    # A profile of a known model counts even if the snapshot lists no such profile (a retired model's).
    known = {
        *catalog.models,
        *catalog.profiles,
        *(f"{g}.{m}" for g in catalog.geographies for m in catalog.models),
    }
    unknown = []
    for entry in dict.fromkeys(r.entry for r in rules if r.kind in _CATALOGUED):
        name = resource_part(entry)
        if any(iam_match(name, k) for k in known) if is_wild(name) else name in known:
            continue
        unknown.append(entry)
        closest = catalog.closest(name)
        hint = f"closest: {', '.join(closest)}" if closest else "no known id is close"
        warnings.warn(
            f"allowlist entry {entry!r} (from {source}) names no model or inference profile in the model"
            f" catalog of {catalog.date} ({hint}). A typo? If the model is newer, refresh the catalog with"
            " `safe-bedrock catalog update`; the entry applies either way.",
            UnknownModelWarning,
            stacklevel=_caller_stacklevel(),
        )
    return frozenset(unknown)


def _read_structured(file: Path, source: str) -> Mapping[str, object]:
    def fail(problem: str, fix: str) -> AllowlistError:
        return AllowlistError(source=source, problem=problem, fix=fix)

    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read it ({exc.strerror})", "check the path") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise fail("file is over 1 MiB", "list model ids, not documents")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise fail("not UTF-8 text", "save the file as UTF-8") from None
    suffix = file.suffix.lower()
    data: object
    if suffix == ".json":
        json_fix = "fix the JSON syntax, with each key written once"
        data = load_json(text, what="allowlist", fail=lambda problem: fail(problem, json_fix))
    elif suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError) as exc:
            raise fail(f"invalid TOML ({exc})", "fix the TOML syntax") from None
    else:
        raise fail(f"unknown file type {suffix or '(none)'!r}", "use a .toml or .json file")
    if not isinstance(data, Mapping):
        raise fail("the top level must be a table/object", 'write allow = ["model-id", ...]')
    return data


def _load_policy(
    policy: PolicyDocument | Mapping[str, object] | str | bytes | os.PathLike[str], source: str | None
) -> tuple[PolicyDocument, str]:
    if isinstance(policy, PolicyDocument):
        return policy, source or f"policy {policy.source}"
    if isinstance(policy, Mapping):
        where = source or "policy <mapping>"
        return PolicyDocument.from_json(policy, source=where), where
    if isinstance(policy, bytes) or (isinstance(policy, str) and policy.lstrip().startswith("{")):
        where = source or "policy <json>"
        return PolicyDocument.from_json(policy, source=where), where
    file = Path(policy)
    where = source or f"policy {file}"
    try:
        raw = file.read_bytes()
    except OSError as exc:
        message = f"{where}: cannot read it ({exc.strerror})"
        raise PolicyError(message, source=where, problem="unreadable") from None
    return PolicyDocument.from_json(raw, source=where), where
