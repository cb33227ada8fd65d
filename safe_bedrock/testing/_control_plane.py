"""The AWS control-plane calls `safe-bedrock check` makes besides bedrock-runtime, with scripted outcomes.

STS GetCallerIdentity and IAM SimulatePrincipalPolicy speak the query protocol (XML replies); the Bedrock
control plane (GetFoundationModelAvailability, GetFoundationModel, ListFoundationModels) speaks rest-json on
routes from botocore's ``bedrock`` model. It signs as ``bedrock`` like bedrock-runtime, so requests are told
apart by the SigV4 credential scope and, for ``bedrock``, by a path that is not also a bedrock-runtime route.
By default the identity is the core's principal, the simulation evaluates the core's policy (allowing
everything without one), and model access is granted.
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

from safe_bedrock._catalog import Model, Profile, load
from safe_bedrock._policy import iam_pattern
from safe_bedrock._service import partition_of, route
from safe_bedrock.testing._wire import DEFAULT_ACCOUNT, DEFAULT_PRINCIPAL, DEFAULT_REGION

if TYPE_CHECKING:
    from collections.abc import Mapping

    from safe_bedrock.testing._core import FakeBedrockCore


_STS_NS: Final = "https://sts.amazonaws.com/doc/2011-06-15/"
_IAM_NS: Final = "https://iam.amazonaws.com/doc/2010-05-08/"
# service -> (XML namespace, the one action the fake answers)
_QUERY_SERVICES: Final = {"sts": (_STS_NS, "GetCallerIdentity"), "iam": (_IAM_NS, "SimulatePrincipalPolicy")}
_SCOPE: Final = re.compile(r"Credential=([^/,\s]+)/[^/]*/([^/]*)/([^/]*)/")

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

_Answer = tuple[int, dict[str, str], bytes]


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


@dataclass
class ControlPlane:
    """Fake STS, IAM and Bedrock control-plane answers for `safe-bedrock check`. Thread-safe.

    ``core`` is the fake Bedrock core whose principal and IAM policy the answers follow (None: the defaults).
    """

    core: FakeBedrockCore | None = None
    calls: list[ControlPlaneCall] = field(default_factory=list)
    _identity_arn: str | None = None  # None: the core's principal
    _identity_error: str | None = None
    _decision: Decision | None = None  # None: evaluate the core's policy
    _simulation_permitted: bool = True
    _access: dict[str, ModelAccess] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _counter: int = 0

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
            self._identity_arn, self._identity_error = arn, error

    def set_simulation(self, decision: Decision | None = None, *, permitted: bool = True) -> None:
        """What SimulatePrincipalPolicy decides for every action and resource (None: the core's policy);
        ``permitted=False``: the caller may not call iam:SimulatePrincipalPolicy at all."""
        if decision is not None and decision not in _DECISIONS:
            raise ValueError(f"decision={decision!r} is not one of {', '.join(_DECISIONS)} or None")
        with self._lock:
            self._decision, self._simulation_permitted = decision, permitted

    def set_model_access(self, model: str = "*", access: ModelAccess | None = None, **fields: object) -> None:
        """What GetFoundationModelAvailability answers for models matching `model` (``*`` wildcards): a
        `ModelAccess`, or its fields (``entitlement="NOT_AVAILABLE"``, ``permitted=False``, ...)."""
        if access is None:
            access = ModelAccess(**fields)  # type: ignore[arg-type]
        elif fields:
            raise TypeError("pass either a ModelAccess or its fields, not both")
        with self._lock:
            self._access[model] = access

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> _Answer | None:
        """Answer a control-plane request, or return None when it is not one (bedrock-runtime's)."""
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        match = _SCOPE.search(lowered.get("authorization", ""))
        access_key, region, service = match.groups() if match else (None, "", "")
        if service in _QUERY_SERVICES:
            return self._query(service, body, access_key)
        # A bedrock-runtime route always goes to the runtime core, even if the control plane has the path.
        if service == "bedrock" and route(method, path) is None:
            found = route(method, path, "bedrock")
            if found is not None:
                return self._bedrock(*found, access_key, region or DEFAULT_REGION)
        return None

    # --- STS and IAM: the query protocol (the action is a form field, replies are XML) ----------------------

    def _query(self, service: str, body: bytes, access_key: str | None) -> _Answer:
        namespace, known = _QUERY_SERVICES[service]
        parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        form = {key: values[0] for key, values in parsed.items()}
        action = form.get("Action", "")
        self._record(service, action, form, access_key)
        if (code := self._identity_error) is not None:
            return self._xml_error(namespace, code, _IDENTITY_ERRORS[code], 403)
        if action != known:
            return self._xml_error(namespace, "InvalidAction", f"Could not find operation {action}", 400)
        if service == "sts":
            arn = self._caller()
            account = _account_of(arn) or DEFAULT_ACCOUNT
            user_id = (
                f"AROAFAKEBEDROCK0000000:{arn.rsplit('/', 1)[-1]}" if ":assumed-role/" in arn else "AIDAFAKE"
            )
            result = f"<Arn>{escape(arn)}</Arn><UserId>{escape(user_id)}</UserId><Account>{account}</Account>"
            return self._xml(200, _STS_NS, "GetCallerIdentity", result)
        return self._simulate(form)

    def _simulate(self, form: Mapping[str, str]) -> _Answer:
        source = form.get("PolicySourceArn", "")
        if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:(user|role|group)/\S+", source):
            return self._xml_error(
                _IAM_NS, "InvalidInput", f"Invalid ARN: {source!r} is not a user, group or role ARN.", 400
            )
        if not self._simulation_permitted:
            return self._xml_error(
                _IAM_NS, "AccessDenied", self._not_authorized("iam:SimulatePrincipalPolicy", source), 403
            )
        context = _context(form)
        members = []
        for action in _members(form, "ActionNames"):
            for resource in _members(form, "ResourceArns") or ["*"]:
                decision, sid = self._decide(action, resource, context)
                matched = ""
                if sid is not None or decision != "implicitDeny":
                    matched = (
                        "<MatchedStatements><member><SourcePolicyId>"
                        f"{escape(sid or 'fake-policy')}</SourcePolicyId><SourcePolicyType>IAM Policy"
                        "</SourcePolicyType></member></MatchedStatements>"
                    )
                members.append(
                    f"<member><EvalActionName>{escape(action)}</EvalActionName>"
                    f"<EvalResourceName>{escape(resource)}</EvalResourceName>"
                    f"<EvalDecision>{decision}</EvalDecision>{matched}<MissingContextValues/></member>"
                )
        result = f"<IsTruncated>false</IsTruncated><EvaluationResults>{''.join(members)}</EvaluationResults>"
        return self._xml(200, _IAM_NS, "SimulatePrincipalPolicy", result)

    def _decide(self, action: str, resource: str, context: Mapping[str, str]) -> tuple[Decision, str | None]:
        if self._decision is not None:
            return self._decision, None
        policy = self.core.policy if self.core is not None else None
        if policy is None:  # the fake allows everything unless a policy is set
            return "allowed", None
        profile = context.get("bedrock:inferenceprofilearn")
        verdict = policy.evaluate(action=action, resource=resource, inference_profile_arn=profile)
        if verdict.explicit_deny:
            return "explicitDeny", verdict.matched_sid
        if verdict.allowed:
            return "allowed", verdict.matched_sid
        return "implicitDeny", None

    # --- Bedrock control plane (rest-json) ------------------------------------------------------------------

    def _bedrock(
        self, operation: str, params: Mapping[str, str], access_key: str | None, region: str
    ) -> _Answer:
        self._record("bedrock", operation, params, access_key)
        if (code := self._identity_error) is not None:
            return self._json(403, {"message": _IDENTITY_ERRORS[code]}, "UnrecognizedClientException")
        model_id = params.get("modelId") or params.get("modelIdentifier") or ""
        if operation == "GetFoundationModelAvailability":
            access = self._access_for(model_id)
            if not access.permitted:
                message = self._not_authorized("bedrock:GetFoundationModelAvailability", "*")
                return self._json(403, {"message": message}, "AccessDeniedException")
            return self._json(
                200,
                {
                    "modelId": model_id,
                    "agreementAvailability": {"status": access.agreement},
                    "authorizationStatus": access.authorization,
                    "entitlementAvailability": access.entitlement,
                    "regionAvailability": access.region,
                },
            )
        # The model catalog answers the rest, as Bedrock would from the region asked.
        added = self.core.models if self.core is not None else {}
        if operation == "ListFoundationModels":
            summaries = [_model_summary(m, region) for m in _catalog_models(region, added)]
            return self._json(200, {"modelSummaries": summaries})
        if operation == "ListInferenceProfiles":
            found = [_profile_summary(p, region) for p in load().profiles.values() if region in p.regions]
            return self._json(200, {"inferenceProfileSummaries": found})
        if operation == "GetFoundationModel":
            model = next((m for m in _catalog_models(region, added) if m.id == model_id), None)
            if model is not None:
                return self._json(200, {"modelDetails": _model_summary(model, region)})
        if operation == "GetInferenceProfile":
            profile = load().profile(params.get("inferenceProfileIdentifier", "").rsplit("/", 1)[-1])
            if profile is not None and region in profile.regions:
                return self._json(200, _profile_summary(profile, region))
        if operation in ("GetFoundationModel", "GetInferenceProfile"):
            message = "The provided model identifier is invalid."
            return self._json(400, {"message": message}, "ValidationException")
        message = f"safe-bedrock's fake does not implement the Bedrock control-plane operation {operation}"
        return self._json(404, {"message": message}, "UnknownOperationException")

    def _access_for(self, model_id: str) -> ModelAccess:
        with self._lock:
            rules = list(self._access.items())
        for pattern, access in reversed(rules):  # the latest matching rule wins
            if iam_pattern(pattern).fullmatch(model_id):
                return access
        return ModelAccess()

    # --- helpers --------------------------------------------------------------------------------------------

    def _caller(self) -> str:
        if self._identity_arn is not None:
            return self._identity_arn
        return self.core.principal if self.core is not None else DEFAULT_PRINCIPAL

    def _not_authorized(self, action: str, resource: str) -> str:
        return (
            f"User: {self._caller()} is not authorized to perform: {action} on resource: {resource}"
            f" because no identity-based policy allows the {action} action"
        )

    def _record(self, service: str, operation: str, params: Mapping[str, object], key: str | None) -> None:
        with self._lock:
            self.calls.append(ControlPlaneCall(service, operation, dict(params), key))

    def _request_id(self) -> str:
        with self._lock:
            self._counter += 1
            n = self._counter
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"safe-bedrock-control-plane/{n}"))

    def _xml(self, status: int, namespace: str, operation: str | None, body: str) -> _Answer:
        """A query-protocol reply: the result of `operation`, or (None) an error."""
        rid = self._request_id()
        if operation is None:
            xml = f'<ErrorResponse xmlns="{namespace}"><Error>{body}</Error><RequestId>{rid}</RequestId>'
            xml += "</ErrorResponse>"
        else:
            xml = (
                f'<{operation}Response xmlns="{namespace}"><{operation}Result>{body}</{operation}Result>'
                f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></{operation}Response>"
            )
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, xml.encode()

    def _xml_error(self, namespace: str, code: str, message: str, status: int) -> _Answer:
        error = f"<Type>Sender</Type><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        return self._xml(status, namespace, None, error)

    def _json(self, status: int, payload: object, error_type: str | None = None) -> _Answer:
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": self._request_id()}
        if error_type is not None:
            headers["x-amzn-ErrorType"] = error_type
        return status, headers, json.dumps(payload).encode()


def _account_of(arn: str) -> str | None:
    match = re.fullmatch(r"arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):\S+", arn)
    return match.group(1) if match else None


def _members(form: Mapping[str, str], name: str) -> list[str]:
    # Query-protocol lists: Name.member.1, Name.member.2, ... in index order.
    prefix = f"{name}.member."
    found = {
        int(k[len(prefix) :]): v
        for k, v in form.items()
        if k.startswith(prefix) and k[len(prefix) :].isdigit()
    }
    return [found[i] for i in sorted(found)]


def _context(form: Mapping[str, str]) -> dict[str, str]:
    # ContextEntries.member.N.ContextKeyName / .ContextKeyValues.member.1 (first value is enough here).
    entries: dict[str, str] = {}
    index = 1
    while (key := form.get(f"ContextEntries.member.{index}.ContextKeyName")) is not None:
        entries[key.lower()] = form.get(f"ContextEntries.member.{index}.ContextKeyValues.member.1", "")
        index += 1
    return entries


def _catalog_models(region: str, added: Mapping[str, Model]) -> list[Model]:
    """The models offered in `region` (on demand or through a profile), the ones a test added included."""
    catalog = load()
    mine = [m for m in added.values() if not m.regions or region in m.regions]
    return mine + [m for m in catalog.models.values() if catalog.offered(m.id, region) and m.id not in added]


def _model_summary(model: Model, region: str) -> dict[str, object]:
    return {
        "modelArn": f"arn:{partition_of(region)}:bedrock:{region}::foundation-model/{model.id}",
        "modelId": model.id,
        "modelName": model.id,
        "providerName": model.provider,
        "inputModalities": list(model.input_modalities),
        "outputModalities": list(model.output_modalities),
        "responseStreamingSupported": model.streaming,
        "inferenceTypesSupported": list(model.inference_types),
        "modelLifecycle": {"status": model.lifecycle},
    }


def _profile_summary(profile: Profile, region: str) -> dict[str, object]:
    partition = partition_of(region)
    arns = [f"arn:{partition}:bedrock:{r}::foundation-model/{profile.model_id}" for r in profile.regions]
    if profile.geography == "global":
        arns.append(f"arn:{partition}:bedrock:::foundation-model/{profile.model_id}")
    return {
        "inferenceProfileName": profile.id,
        "inferenceProfileArn": f"arn:{partition}:bedrock:{region}:{DEFAULT_ACCOUNT}:"
        f"inference-profile/{profile.id}",
        "inferenceProfileId": profile.id,
        "models": [{"modelArn": arn} for arn in arns],
        "status": "ACTIVE",
        "type": "SYSTEM_DEFINED",
    }
