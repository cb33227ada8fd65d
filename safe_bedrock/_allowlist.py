"""ModelAllowlist: which models a client may call, decided before anything is sent.

Entries
    A model id (``anthropic.claude-3-haiku-20240307-v1:0``), a cross-Region profile id
    (``us.anthropic.claude-3-haiku-20240307-v1:0``) or any ARN Bedrock invokes, with IAM wildcards: ``*``
    matches any run of characters (``:`` and ``/`` included, so ``anthropic.claude-3-haiku*`` covers
    ``...-v1:0``) and ``?`` exactly one. Bare ids resolve in the allowlist's region, or in the client's
    region when the client binds the allowlist. Matching is on canonical ARNs and never crosses kinds:
    ``inference-profile/*`` does not cover ``application-inference-profile/...``.

Data residency
    Allowing a foundation model does not allow the cross-Region inference profiles that route it to other
    regions; list the profile (``us.anthropic...``), or write ``profiles+anthropic.claude-...`` to allow a
    model and every cross-Region profile of it (every geography, ``global.`` included) in one entry.

Deny by default
    An empty allowlist refuses everything and warns. ``"*"``, a resource of ``*`` or a wildcard entry that
    names no provider before its first wildcard (``*0``, ``*e*``, ``foundation-model/*``; profiles need a
    geography and a provider, ``us.anthropic.*``) is refused unless ``allow_any=True``: what counts is what
    an entry covers, not how many characters it spells. Denies may be as broad as they like.

Operations
    Entries allow invoking and streaming. ``invoke_only`` / ``stream_only`` (or ``stream_entries``, which
    then replaces ``entries`` for streams) mirror bedrock:InvokeModel vs
    bedrock:InvokeModelWithResponseStream. Streaming actions are InvokeModelWithResponseStream and
    InvokeModelWithBidirectionalStream; every other model-addressed action (Converse, CountTokens,
    StartAsyncInvoke, ...) counts as invoking.

Sources
    A list in code, `from_env` (``SAFE_BEDROCK_ALLOWED_MODELS``, comma separated), `from_file` (TOML or
    JSON: ``allow = [...]``, ``invoke_only = [...]``, ``stream_only = [...]``) and `from_policy` (an IAM
    identity policy: what it allows for the invoking actions, minus its explicit denies; a cross-Region
    profile also needs every foundation-model ARN it routes to allowed, as IAM requires).

Decisions are a dict lookup for exact entries and one compiled regex per kind (a trie of all wildcard
entries, so the cost does not grow with their number) for the rest.
"""

from __future__ import annotations

import bisect
import difflib
import json
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from safe_bedrock._ids import (
    PROFILE_ROUTES,
    ModelKind,
    ModelRef,
    base_model_id,
    match_key,
    parse_model_id,
    partition_of,
    profile_routes,
)
from safe_bedrock._policy import (
    INVOKE,
    INVOKE_BIDI_STREAM,
    INVOKE_STREAM,
    DuplicateKeyError,
    PolicyDocument,
    PolicyError,
    Statement,
    policy_resource,
    strict_object,
)
from safe_bedrock.errors import InvalidModelIdError, SafeBedrockError

__all__ = [
    "ENV_VAR",
    "PROFILES_PREFIX",
    "AllowlistError",
    "Decision",
    "EmptyAllowlistWarning",
    "ModelAllowlist",
]

ENV_VAR: Final = "SAFE_BEDROCK_ALLOWED_MODELS"
PROFILES_PREFIX: Final = "profiles+"
_STREAM_ACTIONS: Final = frozenset(a.lower() for a in (INVOKE_STREAM, INVOKE_BIDI_STREAM))
_FILE_KEYS: Final = ("allow", "invoke_only", "stream_only")
_MAX_FILE_BYTES: Final = 1 << 20
_DECISION_CACHE: Final = 1024
_PLACEHOLDER_REGION: Final = "us-east-1"  # validates bare entries before any region is known

_ARN_TYPES: Final[Mapping[tuple[str, str], ModelKind]] = {
    ("bedrock", "foundation-model"): ModelKind.FOUNDATION_MODEL,
    ("bedrock", "inference-profile"): ModelKind.INFERENCE_PROFILE,
    ("bedrock", "application-inference-profile"): ModelKind.APPLICATION_INFERENCE_PROFILE,
    ("bedrock", "provisioned-model"): ModelKind.PROVISIONED_MODEL,
    ("bedrock", "custom-model"): ModelKind.CUSTOM_MODEL,
    ("bedrock", "custom-model-deployment"): ModelKind.CUSTOM_MODEL_DEPLOYMENT,
    ("bedrock", "imported-model"): ModelKind.IMPORTED_MODEL,
    ("bedrock", "prompt"): ModelKind.PROMPT,
    ("bedrock", "prompt-router"): ModelKind.PROMPT_ROUTER,
    ("bedrock", "default-prompt-router"): ModelKind.PROMPT_ROUTER,
    ("sagemaker", "endpoint"): ModelKind.SAGEMAKER_ENDPOINT,
}
_PATTERN_CHARS: Final = re.compile(r"[A-Za-z0-9._:/*?-]+")
_BARE_PATTERN_CHARS: Final = re.compile(r"[a-z0-9.:*?-]+")
# What the literal head of a wildcard entry (the text before its first '*' or '?') must name so that the
# entry covers the models of one provider only: 'anthropic.' for models, 'us.anthropic.' for profiles.
_PROVIDER_HEAD: Final = re.compile(r"[A-Za-z0-9-]+\.")
_GEO_PROVIDER_HEAD: Final = re.compile(r"[a-z]{2,8}(?:-[a-z]{2,8})?\.[A-Za-z0-9-]+\.")
_WILDCARD: Final = re.compile(r"[*?]")


class AllowlistError(SafeBedrockError, ValueError):
    """An allowlist entry or source that is malformed or too broad; names the entry, source and fix."""

    def __init__(self, *, source: str, problem: str, fix: str, entry: str | None = None) -> None:
        self.source = source
        self.problem = problem
        self.fix = fix
        self.entry = entry
        subject = f"allowlist entry {entry!r} ({source})" if entry is not None else f"allowlist from {source}"
        super().__init__(f"{subject}: {problem}. Fix: {fix}")


class EmptyAllowlistWarning(UserWarning):
    """An allowlist with no entries: every model-addressed call will be refused."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    matched: str | None  # the entry that allowed the call (as written), None when refused
    closest: tuple[str, ...]  # allowed entries that look most like the refused id
    entry_to_add: str  # the exact entry that would allow this call ("" when allowed)
    reason: str = ""  # one line on why it was refused
    fix: str = ""  # what to change when adding `entry_to_add` would not help (a Deny, a routed region)


# ---------------------------------------------------------------------------------------------------------
# Entries


@dataclass(frozen=True, slots=True)
class _Rule:
    """One pattern over match keys (`_ids.match_key`) for one kind (None: any kind, with allow_any)."""

    entry: str
    kind: ModelKind | None
    key: str  # exact key or IAM pattern; "{region}"/"{partition}" placeholders for bare entries
    bare: bool  # resolved against a region when bound


def _is_wild(text: str) -> bool:
    return "*" in text or "?" in text


def _entry_error(entry: str, source: str, problem: str, fix: str) -> AllowlistError:
    return AllowlistError(source=source, entry=entry, problem=problem, fix=fix)


_TOO_BROAD_FIX = (
    "name the provider (e.g. 'anthropic.*', or 'us.anthropic.*' for profiles) or list exact ids, "
    "or pass allow_any=True if allowing every model is really intended"
)


def _check_coverage(resource_id: str, kind: ModelKind, *, entry: str, source: str) -> None:
    """Refuse a wildcard id whose literal head names no provider (or, for other kinds, is empty).

    Counting literal characters is not enough: '*0', '*e*' or '*-*' have some and still cover nearly every
    model. What limits a pattern is the text before its first wildcard, so that is what must name a
    provider ('anthropic.'), a geography and a provider for profiles ('us.anthropic.'), or, for ids that
    name no provider (application profiles, provisioned, custom, imported models, prompts), start at all.
    """
    head = _WILDCARD.split(resource_id, maxsplit=1)[0]
    if kind is ModelKind.FOUNDATION_MODEL:
        shape, covers, need = _PROVIDER_HEAD, "every provider", "a provider (like 'anthropic.')"
    elif kind is ModelKind.INFERENCE_PROFILE:
        shape, covers = _GEO_PROVIDER_HEAD, "every provider or geography"
        need = (
            "a geography and a provider (like 'us.anthropic.'; 'profiles+<model id>' allows every geography)"
        )
    elif head:
        return
    else:
        problem = f"covers every {kind.value}: the id starts with a wildcard"
        fix = "list the exact ARNs (or an id prefix), or pass allow_any=True if every one is really intended"
        raise _entry_error(entry, source, problem, fix)
    if shape.match(head) is None:
        problem = (
            f"covers models of {covers}: the text before its first wildcard ({head!r}) does not name {need}"
        )
        raise _entry_error(entry, source, problem, _TOO_BROAD_FIX)


def _rules_for(entry: object, *, source: str, allow_any: bool, deny: bool = False) -> list[_Rule]:
    if not isinstance(entry, str):
        raise _entry_error(
            repr(entry), source, f"entries are strings, not {type(entry).__name__}", "pass model ids or ARNs"
        )
    if not entry or entry != entry.strip() or any(c.isspace() for c in entry):
        raise _entry_error(entry, source, "empty or contains whitespace", f"use {entry.strip()!r}")
    broad_ok = allow_any or deny
    if entry == "*":
        if not broad_ok:
            raise _entry_error(entry, source, "'*' allows every model", _TOO_BROAD_FIX)
        return [_Rule(entry, None, "*", bare=False)]
    if entry.startswith(PROFILES_PREFIX):
        model = entry[len(PROFILES_PREFIX) :]
        rules = _bare_rules(model, entry=entry, source=source, broad_ok=broad_ok)
        if not rules or rules[0].kind is not ModelKind.FOUNDATION_MODEL:
            raise _entry_error(
                entry,
                source,
                f"{PROFILES_PREFIX!r} takes a foundation-model id (provider.model...), not {model!r}",
                f"write {PROFILES_PREFIX}anthropic.claude-3-haiku-20240307-v1:0",
            )
        profiles = _bare_rules(
            f"*.{model}", entry=entry, source=source, broad_ok=True, kind=ModelKind.INFERENCE_PROFILE
        )
        return rules + profiles
    if entry.startswith("arn:"):
        return [_arn_rule(entry, source=source, broad_ok=broad_ok)]
    return _bare_rules(entry, entry=entry, source=source, broad_ok=broad_ok)


def _bare_kind(text: str) -> ModelKind:
    head = text.split(":", 1)[0]
    first = head.split(".", 1)[0]
    if head.count(".") >= 2 or first in PROFILE_ROUTES:
        return ModelKind.INFERENCE_PROFILE
    return ModelKind.FOUNDATION_MODEL


def _bare_rules(
    text: str, *, entry: str, source: str, broad_ok: bool, kind: ModelKind | None = None
) -> list[_Rule]:
    kind = kind or _bare_kind(text)
    type_name = kind.value
    if not _is_wild(text):
        try:
            ref = parse_model_id(text, region=_PLACEHOLDER_REGION)
        except InvalidModelIdError as exc:
            raise _entry_error(entry, source, exc.problem, exc.fix) from None
        kind = ref.kind
        type_name = kind.value
    else:
        if text.lower() != text:
            raise _entry_error(entry, source, "model ids are lower case", f"use {text.lower()!r}")
        if not _BARE_PATTERN_CHARS.fullmatch(text) or ".." in text:
            raise _entry_error(
                entry,
                source,
                "a bare pattern uses lower-case letters, digits, '.', '-', ':', '*' and '?'",
                "write a model id with wildcards, or a full ARN",
            )
        if not broad_ok:
            _check_coverage(text, kind, entry=entry, source=source)
    key = f"arn:{{partition}}:bedrock:{{region}}::{type_name}/{text}"
    return [_Rule(entry, kind, key, bare=True)]


def _arn_rule(entry: str, *, source: str, broad_ok: bool) -> _Rule:
    if not _PATTERN_CHARS.fullmatch(entry) or ".." in entry:
        raise _entry_error(
            entry,
            source,
            "contains characters no ARN has (or '..')",
            "copy the ARN from the Bedrock console; '*' and '?' are the only wildcards",
        )
    parts = entry.split(":", 5)
    resource = parts[5] if len(parts) == 6 else ""
    resource_type, slash, resource_id = resource.partition("/")
    service = parts[2] if len(parts) > 2 else ""
    kind = _ARN_TYPES.get((service, resource_type)) if slash else None
    if kind is None or not resource_id:
        # '*', 'arn:aws:bedrock:*', '.../*', a wildcard resource type, or not a model resource at all.
        if broad_ok:
            return _Rule(entry, None, entry, bare=False)
        if len(parts) < 6 or resource in {"*", ""} or _is_wild(resource_type) or _is_wild(service):
            raise _entry_error(entry, source, "the resource part covers every model", _TOO_BROAD_FIX)
        names = ", ".join(sorted(f"{s}:{t}" for s, t in _ARN_TYPES))
        raise _entry_error(
            entry,
            source,
            f"{service}:{resource_type or resource!r} is not a resource Bedrock invokes",
            f"use one of {names}",
        )
    partition, region, account = parts[1], parts[3], parts[4]
    checked = entry
    if kind is ModelKind.INFERENCE_PROFILE:
        # System profiles are the same in every account (see _ids.match_key): any account, "" or "*" will
        # do, and it is left out of the key.
        checked = f"arn:{partition}:{service}:{region}:000000000000:{resource}"
        account = ""
    key = f"arn:{partition}:{service}:{region}:{account}:{resource_type}/{resource_id}"
    if not _is_wild(key):
        try:
            parse_model_id(checked, region=_PLACEHOLDER_REGION)
        except InvalidModelIdError as exc:
            raise _entry_error(entry, source, exc.problem, exc.fix) from None
    elif not broad_ok:
        _check_coverage(resource_id, kind, entry=entry, source=source)
    return _Rule(entry, kind, key, bare=False)


# ---------------------------------------------------------------------------------------------------------
# Compiled matching


def _token_regex(char: str) -> str:
    if char == "*":
        return ".*"
    if char == "?":
        return "."
    return re.escape(char)


class _Trie:
    __slots__ = ("children", "terminal")

    def __init__(self) -> None:
        self.children: dict[str, _Trie] = {}
        self.terminal: int | None = None


def _emit(node: _Trie) -> str:
    out: list[str] = []
    while node.terminal is None and len(node.children) == 1:
        ((char, node),) = node.children.items()
        out.append(_token_regex(char))
    alternatives = [_token_regex(char) + _emit(child) for char, child in node.children.items()]
    if node.terminal is not None:
        alternatives.append(f"(?P<e{node.terminal}>)")
    if len(alternatives) == 1:
        out.append(alternatives[0])
    elif alternatives:
        out.append("(?:" + "|".join(alternatives) + ")")
    return "".join(out)


class _WildMatcher:
    """All wildcard patterns of one kind as one regex shaped like a trie of the patterns."""

    __slots__ = ("entries", "regex")

    def __init__(self, patterns: Mapping[str, str]) -> None:
        root = _Trie()
        self.entries: list[str] = []
        for pattern, entry in patterns.items():
            node = root
            for char in pattern:
                node = node.children.setdefault(char, _Trie())
            if node.terminal is None:
                node.terminal = len(self.entries)
                self.entries.append(entry)
        # The trie nests one group per branching point: deep tries need a higher recursion limit to emit.
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 10_000))
        try:
            self.regex = re.compile(_emit(root), re.DOTALL)
        finally:
            sys.setrecursionlimit(limit)

    def match(self, key: str) -> str | None:
        found = self.regex.fullmatch(key)
        if found is None or found.lastgroup is None:
            return None
        return self.entries[int(found.lastgroup[1:])]


@dataclass(slots=True)
class _Table:
    """Rules resolved for one region, for one family of actions (invoke or stream)."""

    exact: dict[str, str] = field(default_factory=dict)
    wild: dict[ModelKind | None, _WildMatcher] = field(default_factory=dict)

    @classmethod
    def build(cls, rules: Iterable[_Rule], *, region: str, partition: str) -> _Table:
        table = cls()
        patterns: dict[ModelKind | None, dict[str, str]] = {}
        for rule in rules:
            key = rule.key
            if rule.bare:
                key = key.replace("{partition}", partition, 1).replace("{region}", region, 1)
            if _is_wild(key):
                patterns.setdefault(rule.kind, {}).setdefault(key, rule.entry)
            else:
                table.exact.setdefault(key, rule.entry)
        table.wild = {kind: _WildMatcher(found) for kind, found in patterns.items()}
        return table

    def match(self, kind: ModelKind, key: str) -> str | None:
        hit = self.exact.get(key)
        if hit is not None:
            return hit
        matcher = self.wild.get(kind)
        if matcher is not None:
            hit = matcher.match(key)
            if hit is not None:
                return hit
        matcher = self.wild.get(None)
        return matcher.match(key) if matcher is not None else None


# ---------------------------------------------------------------------------------------------------------
# The allowlist


class ModelAllowlist:
    """The models a client may call; see the module documentation for the entry syntax."""

    __slots__ = (
        "_bound",
        "_by_region",
        "_decisions",
        "_deny_invoke",
        "_deny_stream",
        "_display",
        "_invoke",
        "_invoke_rules",
        "_lock",
        "_policy",
        "_stream",
        "_stream_rules",
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
        _deny: Iterable[str] = (),
        _deny_stream: Iterable[str] | None = None,
        _policy: PolicyDocument | None = None,
        _stacklevel: int = 2,
    ) -> None:
        if isinstance(entries, str):
            msg = f"entries is a list of model ids or ARNs, not one string: write [{entries!r}]"
            raise TypeError(msg)
        both = list(entries)
        invoke = [*both, *invoke_only]
        stream = [*(both if stream_entries is None else stream_entries), *stream_only]
        self.source = source
        self.allow_any = allow_any
        self.region = region
        self.partition = partition or (partition_of(region) if region else None)
        self.invoke_entries = tuple(dict.fromkeys(invoke))
        self.stream_entries = tuple(dict.fromkeys(stream))
        self.entries = tuple(dict.fromkeys([*self.invoke_entries, *self.stream_entries]))
        self._invoke_rules = tuple(
            r for e in self.invoke_entries for r in _rules_for(e, source=source, allow_any=allow_any)
        )
        self._stream_rules = tuple(
            r for e in self.stream_entries for r in _rules_for(e, source=source, allow_any=allow_any)
        )
        deny = list(_deny)
        deny_stream = deny if _deny_stream is None else list(_deny_stream)
        self._deny_invoke = tuple(
            r for e in deny for r in _rules_for(e, source=source, allow_any=True, deny=True)
        )
        self._deny_stream = tuple(
            r for e in deny_stream for r in _rules_for(e, source=source, allow_any=True, deny=True)
        )
        # from_policy: the document itself, to decide system-profile calls on every routed ARN as IAM does.
        self._policy = None if _policy is None else _any_account_denies(_policy)
        self._by_region: dict[tuple[str, str], ModelAllowlist] = {}
        self._lock = threading.Lock()
        self._bound = False
        self._display: dict[bool, tuple[list[str], list[str]]] = {}
        self._decisions: dict[tuple[str, ModelKind, bool], Decision] = {}
        if not self.entries and not allow_any:
            warnings.warn(
                f"the model allowlist from {source} is empty: every model-addressed call will be refused. "
                f"List the models to allow (in code, {ENV_VAR}, a file or an IAM policy).",
                EmptyAllowlistWarning,
                stacklevel=_stacklevel,
            )
        if region is not None:
            self._resolve(region, self.partition or partition_of(region))

    def _resolve(self, region: str, partition: str) -> None:
        self._invoke = (
            _Table.build(self._invoke_rules, region=region, partition=partition),
            _Table.build(self._deny_invoke, region=region, partition=partition),
        )
        self._stream = (
            _Table.build(self._stream_rules, region=region, partition=partition),
            _Table.build(self._deny_stream, region=region, partition=partition),
        )
        self._bound = True

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
        _stacklevel: int = 2,
    ) -> ModelAllowlist:
        """Entries from an environment variable, comma separated (whitespace around entries is ignored)."""
        value = (os.environ if environ is None else environ).get(var, "")
        entries = [item.strip() for item in value.split(",") if item.strip()]
        return cls(
            entries,
            region=region,
            partition=partition,
            allow_any=allow_any,
            source=f"env {var}",
            _stacklevel=_stacklevel + 1,
        )

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        region: str | None = None,
        partition: str | None = None,
        allow_any: bool = False,
        _stacklevel: int = 2,
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
            _stacklevel=_stacklevel + 1,
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
        _stacklevel: int = 2,
    ) -> ModelAllowlist:
        """The models an IAM identity policy allows to invoke (and to stream), minus its explicit denies.

        ``policy`` is a `PolicyDocument`, a decoded mapping, JSON text (a string starting with ``{``) or a
        path to a JSON file. A cross-Region (system) inference profile is allowed as IAM allows it: its ARN
        must be allowed and so must the foundation model in every region it routes to (the region-less ARN
        too for ``global.``), where Allows conditioned on bedrock:InferenceProfileArn count and every Deny,
        conditional or not, refuses. The caller's account is unknown here: an Allow naming a specific account
        for the profile is not assumed to be it, a Deny naming any account is. Those conditioned Allows add
        nothing for direct calls: the app never calls those models directly. Constructs that cannot be read
        exactly (NotResource, Principal, other Conditions) raise `PolicyError`.
        """
        document, where = _load_policy(policy, source)
        invoke = document.allowed_resources(INVOKE)
        stream = document.allowed_resources(INVOKE_STREAM)
        deny_invoke = document.denied_resources(INVOKE)
        deny_stream = document.denied_resources(INVOKE_STREAM)
        return cls(
            invoke,
            stream_entries=stream,
            region=region,
            partition=partition,
            allow_any=allow_any,
            source=where,
            _deny=deny_invoke,
            _deny_stream=deny_stream,
            _policy=document,
            _stacklevel=_stacklevel + 1,
        )

    # -- binding and deciding -----------------------------------------------------------------------------

    def bind(self, *, region: str, partition: str | None = None) -> ModelAllowlist:
        """This allowlist with bare entries resolved in ``region`` (cached; its own region wins)."""
        if self._bound:
            return self
        partition = partition or partition_of(region)
        key = (region, partition)
        bound = self._by_region.get(key)
        if bound is None:
            with self._lock:
                bound = self._by_region.get(key)
                if bound is None:
                    bound = self._copy()
                    bound.region = region
                    bound.partition = partition
                    bound._resolve(region, partition)
                    self._by_region[key] = bound
        return bound

    def _copy(self) -> ModelAllowlist:
        clone = object.__new__(ModelAllowlist)
        for name in ModelAllowlist.__slots__:
            if hasattr(self, name):
                object.__setattr__(clone, name, getattr(self, name))
        clone._by_region = {}
        clone._lock = threading.Lock()
        clone._display = {}
        clone._decisions = {}
        clone._bound = False
        return clone

    def decide(self, ref: ModelRef, *, action: str) -> Decision:
        """Whether ``action`` on ``ref`` is allowed; a refusal says what is close and what to add."""
        if not self._bound:
            return self.bind(region=ref.region or _PLACEHOLDER_REGION, partition=ref.partition).decide(
                ref, action=action
            )
        stream = action.lower() in _STREAM_ACTIONS
        # Apps call the same few models again and again, and explaining a refusal costs difflib: remember
        # the last decisions (a bound allowlist never changes). Plain dict operations are thread-safe.
        cache_key = (ref.arn, ref.kind, stream)
        cached = self._decisions.get(cache_key)
        if cached is not None:
            return cached
        decision = self._decide(ref, stream=stream)
        if len(self._decisions) >= _DECISION_CACHE:
            self._decisions.clear()
        self._decisions[cache_key] = decision
        return decision

    def _decide(self, ref: ModelRef, *, stream: bool) -> Decision:
        allow, deny = self._stream if stream else self._invoke
        key = match_key(ref)
        hit = allow.match(ref.kind, key)
        if hit is not None:
            denied = deny.match(ref.kind, key)
            if denied is not None:
                reason = f"an explicit Deny in the policy covers it ({denied})"
                fix = f"narrow or remove the Deny on {denied} ({self.source}), or call a model outside it"
                return self._explain(ref, stream=stream, reason=reason, fix=fix)
            if self._policy is not None and ref.kind is ModelKind.INFERENCE_PROFILE:
                reason = _routed_refusal(self._policy, ref, action=INVOKE_STREAM if stream else INVOKE)
                if reason:  # it says what to change in the policy
                    return self._explain(ref, stream=stream, reason=reason, fix=reason)
            return Decision(allowed=True, matched=hit, closest=(), entry_to_add="")
        return self._explain(ref, stream=stream, reason="")

    def _explain(self, ref: ModelRef, *, stream: bool, reason: str, fix: str = "") -> Decision:
        to_add = self._entry_to_add(ref)
        if not reason:
            reason = self._why(ref, stream=stream)
        return Decision(
            allowed=False,
            matched=None,
            closest=self._closest(ref, stream=stream),
            entry_to_add=to_add,
            reason=reason,
            fix=fix,
        )

    def _entry_to_add(self, ref: ModelRef) -> str:
        local = ref.region == self.region and ref.partition == self.partition
        if local and ref.kind in {ModelKind.FOUNDATION_MODEL, ModelKind.INFERENCE_PROFILE}:
            return ref.resource_id
        return match_key(ref)

    def _why(self, ref: ModelRef, *, stream: bool) -> str:
        other_allow, other_deny = self._invoke if stream else self._stream
        key = match_key(ref)
        if other_allow.match(ref.kind, key) is not None and other_deny.match(ref.kind, key) is None:
            return "allowed for invoking only, not for streaming" if stream else "allowed for streaming only"
        if ref.kind is ModelKind.INFERENCE_PROFILE:
            model = base_model_id(ref)
            allow, _ = self._stream if stream else self._invoke
            fm = f"arn:{ref.partition}:bedrock:{ref.region}::foundation-model/{model}"
            if allow.match(ModelKind.FOUNDATION_MODEL, fm) is not None:
                return (
                    f"the foundation model {model} is allowed, but not this cross-Region profile, which may "
                    "send requests to other regions; allow the profile itself if that is acceptable"
                )
        return "not on the allowlist"

    def _closest(self, ref: ModelRef, *, stream: bool) -> tuple[str, ...]:
        names, entries = self._display_index(stream=stream)
        if not names:
            return ()
        found: dict[str, None] = {}
        for query in dict.fromkeys((ref.resource_id, base_model_id(ref) or ref.resource_id)):
            index = bisect.bisect_left(names, query)
            window = range(max(0, index - 5), min(len(names), index + 5))
            candidates = {names[i]: entries[i] for i in window}
            for name in difflib.get_close_matches(query, list(candidates), n=3, cutoff=0.6):
                found[candidates[name]] = None
        return tuple(found)[:3]

    def _display_index(self, *, stream: bool) -> tuple[list[str], list[str]]:
        # Sorted (resource part, entry) pairs: neighbours in sort order share the longest prefixes, so
        # difflib only looks at a handful of candidates however long the allowlist is.
        index = self._display.get(stream)
        if index is None:
            entries = self.stream_entries if stream else self.invoke_entries
            pairs = sorted((_resource_part(entry), entry) for entry in entries)
            index = ([name for name, _ in pairs], [entry for _, entry in pairs])
            self._display[stream] = index
        return index

    def __repr__(self) -> str:
        shown = list(self.entries[:5])
        more = f" and {len(self.entries) - 5} more" if len(self.entries) > 5 else ""
        region = f", region={self.region!r}" if self.region else ""
        only = ""
        if set(self.invoke_entries) != set(self.stream_entries):
            only = f", invoke={len(self.invoke_entries)}, stream={len(self.stream_entries)}"
        any_ = ", allow_any=True" if self.allow_any else ""
        return f"ModelAllowlist({shown!r}{more}, source={self.source!r}{region}{only}{any_})"


# Stands for the caller's account in a system profile's ARN when the id does not name it: only a wildcard
# account matches it, so an Allow naming some account is never taken to be the caller's.
_UNKNOWN_ACCOUNT: Final = "{account-id}"


def _any_account(pattern: str) -> str:
    parts = pattern.split(":", 5)
    if len(parts) == 6 and "/" not in parts[4]:
        parts[4] = "*"
    return ":".join(parts)


def _any_account_denies(document: PolicyDocument) -> PolicyDocument:
    """The policy with every Deny widened to any account (its resources and its profile condition)."""

    def widen(statement: Statement) -> Statement:
        if statement.effect != "Deny" or statement.not_resource:
            return statement
        arns = statement.profile_arns
        return replace(
            statement,
            resources=tuple(map(_any_account, statement.resources)),
            profile_arns=None if arns is None else tuple(map(_any_account, arns)),
            profile_exact=False,
        )

    statements = tuple(map(widen, document.statements))
    return PolicyDocument(statements=statements, version=document.version, source=document.source)


def _routed_refusal(document: PolicyDocument, ref: ModelRef, *, action: str) -> str:
    """Why IAM would refuse calling the system profile ``ref`` under ``document``; "" when it allows it.

    IAM authorizes such a call on the profile ARN and on the foundation model in every region the request
    may be routed to, each with bedrock:InferenceProfileArn set to the profile (`PolicyDocument.evaluate`
    with that context is IAM's decision; the routes are `profile_routes`).
    """
    profile = ref.arn
    if not ref.account:
        profile = (
            f"arn:{ref.partition}:bedrock:{ref.region}:{_UNKNOWN_ACCOUNT}:inference-profile/{ref.resource_id}"
        )
    try:
        routes = profile_routes(ref)
    except LookupError as exc:
        return f"{exc}, so the policy cannot be checked for every region this profile may send requests to"
    for resource in (profile, *routes):
        verdict = document.evaluate(action=action, resource=resource, inference_profile_arn=profile)
        if verdict.allowed:
            continue
        where = "the profile" if resource == profile else f"{resource}, where this profile may route"
        if verdict.explicit_deny:
            sid = f" (Sid {verdict.matched_sid!r})" if verdict.matched_sid else ""
            return (
                f"an explicit Deny{sid} in the policy covers {where}, "
                "so IAM refuses the call; narrow that Deny, or call a model or profile it does not cover"
            )
        if resource == profile and ref.account:
            return f"the policy does not allow {action} on {profile} (it names another account)"
        if resource == profile:
            return (
                "the policy allows the profile only in a named account, and the caller's account is not "
                f"known here; allow {policy_resource(ref)} (any account), or pass the profile's full ARN "
                "with your account as modelId"
            )
        return (
            f"the policy does not allow {action} on {where} (IAM checks every routed region); allow it "
            f"conditioned on bedrock:InferenceProfileArn {policy_resource(ref)} "
            f"(`safe-bedrock policy {ref.resource_id}` writes that statement)"
        )
    return ""


def _resource_part(entry: str) -> str:
    if entry.startswith(PROFILES_PREFIX):
        return entry[len(PROFILES_PREFIX) :]
    if entry.startswith("arn:"):
        resource = entry.split(":", 5)[-1]
        return resource.partition("/")[2] or resource
    return entry


def _read_structured(file: Path, source: str) -> Mapping[str, object]:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise AllowlistError(
            source=source, problem=f"cannot read it ({exc.strerror})", fix="check the path"
        ) from None
    if len(raw) > _MAX_FILE_BYTES:
        raise AllowlistError(source=source, problem="file is over 1 MiB", fix="list model ids, not documents")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AllowlistError(source=source, problem="not UTF-8 text", fix="save the file as UTF-8") from None
    suffix = file.suffix.lower()
    data: object
    if suffix == ".json":
        try:
            data = json.loads(text, object_pairs_hook=strict_object)
        except DuplicateKeyError as exc:
            raise AllowlistError(
                source=source,
                problem=f"{exc} in one JSON object (JSON keeps only the last)",
                fix="write each key once, with every entry in its one list",
            ) from None
        except (json.JSONDecodeError, RecursionError) as exc:
            raise AllowlistError(
                source=source, problem=f"invalid JSON ({exc})", fix="fix the JSON syntax"
            ) from None
    elif suffix == ".toml":
        toml = _toml_module()
        try:
            data = toml.loads(text)
        except (toml.TOMLDecodeError, RecursionError) as exc:
            raise AllowlistError(
                source=source, problem=f"invalid TOML ({exc})", fix="fix the TOML syntax"
            ) from None
    else:
        raise AllowlistError(
            source=source,
            problem=f"unknown file type {suffix or '(none)'!r}",
            fix="use a .toml or .json file",
        )
    if not isinstance(data, Mapping):
        raise AllowlistError(
            source=source,
            problem="the top level must be a table/object",
            fix='write allow = ["model-id", ...]',
        )
    return data


def _toml_module() -> Any:  # tomllib on 3.11+, the tomli backport on 3.10: the same API
    if sys.version_info >= (3, 11):
        import tomllib  # noqa: PLC0415

        return tomllib
    import tomli  # type: ignore[import-not-found]  # noqa: PLC0415 - the 3.10 backport

    return tomli  # pragma: no cover


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
        raise PolicyError(
            f"{where}: cannot read it ({exc.strerror})", source=where, problem="unreadable"
        ) from None
    return PolicyDocument.from_json(raw, source=where), where
