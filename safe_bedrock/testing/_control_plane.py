"""The few AWS control-plane calls `safe-bedrock check` makes, answered by the fake with scripted outcomes.

`safe-bedrock check` asks four services about one model: STS (who am I), IAM (would my policies allow the
action on the model ARN), the Bedrock control plane (is model access granted in the region) and
bedrock-runtime (the real call). The last one is the fake Bedrock's core; this module answers the other
three, on the real wire protocols botocore speaks:

- STS GetCallerIdentity: query protocol (``POST /``, form body ``Action=GetCallerIdentity``), XML reply.
- IAM SimulatePrincipalPolicy: query protocol, XML reply.
- Bedrock GetFoundationModelAvailability, GetFoundationModel, ListFoundationModels: rest-json, routes read
  from botocore's ``bedrock`` service model.

Bedrock's control plane and bedrock-runtime both sign as ``bedrock``, so requests are told apart by the
SigV4 credential scope (``sts``, ``iam``) and, for ``bedrock``, by the path: a control-plane route that is
not also a bedrock-runtime route.

Every failure mode `check` explains can be scripted (`set_identity`, `set_simulation`, `set_model_access`).
By default the identity is the core's principal, the simulation evaluates the policy set on the core
(everything is allowed when none is), and model access is granted.

The transport calls `handle(method, path, headers, body)`; it returns ``(status, headers, body)`` or None
when the request is not a control-plane call (the bedrock-runtime core answers those).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from safe_bedrock._policy import iam_pattern
from safe_bedrock._service import route
from safe_bedrock.testing._wire import DEFAULT_ACCOUNT, DEFAULT_PRINCIPAL

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["ControlPlane", "ControlPlaneCall", "Decision", "ModelAccess"]

_STS_NS: Final = "https://sts.amazonaws.com/doc/2011-06-15/"
_IAM_NS: Final = "https://iam.amazonaws.com/doc/2010-05-08/"
# service -> (XML namespace, the one action the fake answers)
_QUERY_SERVICES: Final = {"sts": (_STS_NS, "GetCallerIdentity"), "iam": (_IAM_NS, "SimulatePrincipalPolicy")}
_SCOPE: Final = re.compile(r"Credential=([^/,\s]+)/[^/]*/([^/]*)/([^/]*)/")
_XML: Final = "text/xml"
_JSON: Final = "application/json"

Decision = Literal["allowed", "implicitDeny", "explicitDeny"]
_DECISIONS: Final = ("allowed", "implicitDeny", "explicitDeny")

# STS answers these for credentials it does not accept (code, message); the first is the default.
_IDENTITY_ERRORS: Final[Mapping[str, str]] = {
    "InvalidClientTokenId": "The security token included in the request is invalid.",
    "ExpiredToken": "The security token included in the request is expired",
    "SignatureDoesNotMatch": (
        "The request signature we calculated does not match the signature you provided. Check your AWS "
        "Secret Access Key and signing method. Consult the service documentation for details."
    ),
}


@dataclass(frozen=True, slots=True)
class ModelAccess:
    """What GetFoundationModelAvailability answers for a model (the four fields of its response)."""

    authorization: Literal["AUTHORIZED", "NOT_AUTHORIZED"] = "AUTHORIZED"
    entitlement: Literal["AVAILABLE", "NOT_AVAILABLE"] = "AVAILABLE"
    region: Literal["AVAILABLE", "NOT_AVAILABLE"] = "AVAILABLE"
    agreement: Literal["AVAILABLE", "PENDING", "NOT_AVAILABLE", "ERROR"] = "AVAILABLE"
    permitted: bool = True  # False: the caller may not call bedrock:GetFoundationModelAvailability


@dataclass(frozen=True, slots=True)
class ControlPlaneCall:
    """One control-plane request as received, for assertions: service, operation and its parameters."""

    service: str
    operation: str
    params: Mapping[str, object]
    access_key: str | None


@dataclass(frozen=True, slots=True)
class _Identity:
    arn: str | None = None  # None: the core's principal
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Simulation:
    decision: Decision | None = None  # None: evaluate the core's policy
    permitted: bool = True


_Answer = tuple[int, dict[str, str], bytes]


@dataclass
class ControlPlane:
    """Fake STS, IAM and Bedrock control-plane answers for `safe-bedrock check`. Thread-safe.

    ``core`` is the fake Bedrock core whose principal and IAM policy the answers follow (any object with
    ``principal`` and ``policy`` attributes; None for the defaults).
    """

    core: object | None = None
    calls: list[ControlPlaneCall] = field(default_factory=list)
    _identity: _Identity = field(default_factory=_Identity)
    _simulation: _Simulation = field(default_factory=_Simulation)
    _access: dict[str, ModelAccess] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _counter: int = 0

    # --- scripting ------------------------------------------------------------------------------------------

    def set_identity(self, *, arn: str | None = None, error: str | None = None) -> None:
        """Who GetCallerIdentity says the caller is (`arn`), or that STS refuses the credentials (`error`:
        "InvalidClientTokenId", "ExpiredToken" or "SignatureDoesNotMatch")."""
        if error is not None and error not in _IDENTITY_ERRORS:
            raise ValueError(f"error={error!r} is not one of {', '.join(_IDENTITY_ERRORS)}")
        if arn is not None and _account_of(arn) is None:
            raise ValueError(
                f"arn={arn!r} is not an IAM or STS principal ARN (arn:aws:sts::123456789012:...)"
            )
        with self._lock:
            self._identity = _Identity(arn=arn, error=error)

    def set_simulation(self, decision: Decision | None = None, *, permitted: bool = True) -> None:
        """What SimulatePrincipalPolicy decides for every action and resource.

        ``decision``: "allowed", "implicitDeny" or "explicitDeny"; None evaluates the core's policy.
        ``permitted=False``: the caller may not call iam:SimulatePrincipalPolicy at all.
        """
        if decision is not None and decision not in _DECISIONS:
            raise ValueError(f"decision={decision!r} is not one of {', '.join(_DECISIONS)} or None")
        with self._lock:
            self._simulation = _Simulation(decision=decision, permitted=permitted)

    def set_model_access(self, model: str = "*", access: ModelAccess | None = None, **fields: object) -> None:
        """What GetFoundationModelAvailability answers for models matching `model` (``*`` wildcards).

        Pass a `ModelAccess`, or its fields: ``entitlement="NOT_AVAILABLE"`` (access not granted),
        ``region="NOT_AVAILABLE"``, ``agreement="PENDING"``, ``authorization="NOT_AUTHORIZED"``,
        ``permitted=False`` (the caller may not ask).
        """
        if access is None:
            access = ModelAccess(**fields)  # type: ignore[arg-type]
        elif fields:
            raise TypeError("pass either a ModelAccess or its fields, not both")
        with self._lock:
            self._access[model] = access

    # --- the transport seam ---------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> _Answer | None:
        """Answer a control-plane request, or return None when it is not one (bedrock-runtime's)."""
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        match = _SCOPE.search(lowered.get("authorization", ""))
        access_key, service = (match.group(1), match.group(3)) if match else (None, "")
        if service in _QUERY_SERVICES:
            return self._query(service, body, access_key)
        if service == "bedrock":
            found = _control_route(method, path)
            if found is not None:
                operation, params = found
                return self._bedrock(operation, params, access_key)
        return None

    # --- STS and IAM: the query protocol (the action is a form field, replies are XML) ----------------------

    def _query(self, service: str, body: bytes, access_key: str | None) -> _Answer:
        namespace, known = _QUERY_SERVICES[service]
        form = _form(body)
        action = form.get("Action", "")
        self._record(service, action, form, access_key)
        with self._lock:
            identity, simulation = self._identity, self._simulation
        if identity.error is not None:
            return self._query_error(namespace, identity.error, _IDENTITY_ERRORS[identity.error], 403)
        if action != known:
            return self._query_error(namespace, "InvalidAction", f"Could not find operation {action}", 400)
        if service == "sts":
            return self._caller_identity(identity)
        return self._simulate(form, identity, simulation)

    def _caller_identity(self, identity: _Identity) -> _Answer:
        arn = identity.arn or self._principal()
        account = _account_of(arn) or DEFAULT_ACCOUNT
        user_id = (
            f"AROAFAKEBEDROCK0000000:{arn.rsplit('/', 1)[-1]}" if ":assumed-role/" in arn else "AIDAFAKE"
        )
        result = f"<Arn>{escape(arn)}</Arn><UserId>{escape(user_id)}</UserId><Account>{account}</Account>"
        return self._query_ok(_STS_NS, "GetCallerIdentity", result)

    def _simulate(self, form: Mapping[str, str], identity: _Identity, simulation: _Simulation) -> _Answer:
        source = form.get("PolicySourceArn", "")
        if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:(user|role|group)/\S+", source):
            return self._query_error(
                _IAM_NS, "InvalidInput", f"Invalid ARN: {source!r} is not a user, group or role ARN.", 400
            )
        caller = identity.arn or self._principal()
        if not simulation.permitted:
            message = (
                f"User: {caller} is not authorized to perform: iam:SimulatePrincipalPolicy on resource: "
                f"{source} because no identity-based policy allows the iam:SimulatePrincipalPolicy action"
            )
            return self._query_error(_IAM_NS, "AccessDenied", message, 403)
        actions = _members(form, "ActionNames")
        resources = _members(form, "ResourceArns") or ["*"]
        context = _context(form)
        members = []
        for action_name in actions:
            for resource in resources:
                decision, sid = self._decide(simulation, action_name, resource, context)
                matched = ""
                if sid is not None or decision != "implicitDeny":
                    matched = (
                        "<MatchedStatements><member><SourcePolicyId>"
                        f"{escape(sid or 'fake-policy')}</SourcePolicyId><SourcePolicyType>IAM Policy"
                        "</SourcePolicyType></member></MatchedStatements>"
                    )
                members.append(
                    f"<member><EvalActionName>{escape(action_name)}</EvalActionName>"
                    f"<EvalResourceName>{escape(resource)}</EvalResourceName>"
                    f"<EvalDecision>{decision}</EvalDecision>{matched}"
                    "<MissingContextValues/></member>"
                )
        result = f"<IsTruncated>false</IsTruncated><EvaluationResults>{''.join(members)}</EvaluationResults>"
        return self._query_ok(_IAM_NS, "SimulatePrincipalPolicy", result)

    def _decide(
        self, simulation: _Simulation, action: str, resource: str, context: Mapping[str, str]
    ) -> tuple[Decision, str | None]:
        if simulation.decision is not None:
            return simulation.decision, None
        policy = getattr(self.core, "policy", None)
        if policy is None:  # the fake allows everything unless a policy is set
            return "allowed", None
        evaluate: Callable[..., object] = policy.evaluate
        verdict = evaluate(
            action=action, resource=resource, inference_profile_arn=context.get("bedrock:inferenceprofilearn")
        )
        sid = getattr(verdict, "matched_sid", None)
        if getattr(verdict, "explicit_deny", False):
            return "explicitDeny", sid
        if getattr(verdict, "allowed", False):
            return "allowed", sid
        return "implicitDeny", None

    # --- Bedrock control plane ------------------------------------------------------------------------------

    def _bedrock(self, operation: str, params: Mapping[str, str], access_key: str | None) -> _Answer:
        self._record("bedrock", operation, params, access_key)
        with self._lock:
            identity = self._identity
        if identity.error is not None:
            return self._json_error("UnrecognizedClientException", _IDENTITY_ERRORS[identity.error], 403)
        model_id = params.get("modelId") or params.get("modelIdentifier") or ""
        if operation == "GetFoundationModelAvailability":
            access = self._access_for(model_id)
            if not access.permitted:
                return self._json_error(
                    "AccessDeniedException",
                    f"User: {identity.arn or self._principal()} is not authorized to perform: "
                    "bedrock:GetFoundationModelAvailability on resource: * because no identity-based policy "
                    "allows the bedrock:GetFoundationModelAvailability action",
                    403,
                )
            return self._json_ok(
                {
                    "modelId": model_id,
                    "agreementAvailability": {"status": access.agreement},
                    "authorizationStatus": access.authorization,
                    "entitlementAvailability": access.entitlement,
                    "regionAvailability": access.region,
                }
            )
        if operation == "GetFoundationModel":
            return self._json_ok({"modelDetails": _model_summary(model_id)})
        if operation == "ListFoundationModels":
            return self._json_ok({"modelSummaries": []})
        return self._json_error(
            "UnknownOperationException",
            f"safe-bedrock's fake does not implement the Bedrock control-plane operation {operation}",
            404,
        )

    def _access_for(self, model_id: str) -> ModelAccess:
        with self._lock:
            rules = list(self._access.items())
        for pattern, access in reversed(rules):  # the latest matching rule wins
            if _wildcard(pattern).fullmatch(model_id):
                return access
        return ModelAccess()

    # --- helpers --------------------------------------------------------------------------------------------

    def _principal(self) -> str:
        principal = getattr(self.core, "principal", None)
        return principal if isinstance(principal, str) else DEFAULT_PRINCIPAL

    def _record(self, service: str, operation: str, params: Mapping[str, object], key: str | None) -> None:
        with self._lock:
            self.calls.append(ControlPlaneCall(service, operation, dict(params), key))

    def _request_id(self) -> str:
        with self._lock:
            self._counter += 1
            n = self._counter
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"safe-bedrock-control-plane/{n}"))

    def _query_ok(self, namespace: str, operation: str, result: str) -> _Answer:
        request_id = self._request_id()
        xml = (
            f'<{operation}Response xmlns="{namespace}"><{operation}Result>{result}</{operation}Result>'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{operation}Response>"
        )
        return 200, {"Content-Type": _XML, "x-amzn-RequestId": request_id}, xml.encode()

    def _query_error(self, namespace: str, code: str, message: str, status: int) -> _Answer:
        request_id = self._request_id()
        xml = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return status, {"Content-Type": _XML, "x-amzn-RequestId": request_id}, xml.encode()

    def _json_ok(self, payload: object) -> _Answer:
        request_id = self._request_id()
        return 200, {"Content-Type": _JSON, "x-amzn-RequestId": request_id}, json.dumps(payload).encode()

    def _json_error(self, code: str, message: str, status: int) -> _Answer:
        request_id = self._request_id()
        headers = {"Content-Type": _JSON, "x-amzn-RequestId": request_id, "x-amzn-ErrorType": code}
        return status, headers, json.dumps({"message": message}).encode()


def _account_of(arn: str) -> str | None:
    match = re.fullmatch(r"arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):\S+", arn)
    return match.group(1) if match else None


def _form(body: bytes) -> dict[str, str]:
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def _members(form: Mapping[str, str], name: str) -> list[str]:
    # Query-protocol lists: Name.member.1, Name.member.2, ... in index order.
    found: dict[int, str] = {}
    prefix = f"{name}.member."
    for key, value in form.items():
        if key.startswith(prefix) and key[len(prefix) :].isdigit():
            found[int(key[len(prefix) :])] = value
    return [found[i] for i in sorted(found)]


def _context(form: Mapping[str, str]) -> dict[str, str]:
    # ContextEntries.member.N.ContextKeyName / .ContextKeyValues.member.1 (first value is enough here).
    entries: dict[str, str] = {}
    index = 1
    while f"ContextEntries.member.{index}.ContextKeyName" in form:
        key = form[f"ContextEntries.member.{index}.ContextKeyName"].lower()
        entries[key] = form.get(f"ContextEntries.member.{index}.ContextKeyValues.member.1", "")
        index += 1
    return entries


_wildcard = iam_pattern  # IAM wildcard semantics (the package's one translation), anchored at both ends


def _control_route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    # A bedrock-runtime route always goes to the runtime core, even if the control plane had the same path.
    if route(method, path) is not None:
        return None
    return route(method, path, "bedrock")


def _model_summary(model_id: str) -> dict[str, object]:
    provider = model_id.split(".", 1)[0]
    return {
        "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{model_id}",
        "modelId": model_id,
        "modelName": model_id,
        "providerName": provider.capitalize(),
        "inputModalities": ["TEXT"],
        "outputModalities": ["TEXT"],
        "responseStreamingSupported": True,
        "inferenceTypesSupported": ["ON_DEMAND", "INFERENCE_PROFILE"],
        "modelLifecycle": {"status": "ACTIVE"},
    }
