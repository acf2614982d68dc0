"""The gate in front of moto: every signed request is decided as IAM decides it, or refused as AWS refuses."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from filepipe.local.enforcement.rules import rules_for
from filepipe.local.iam import acting, refusals
from filepipe.local.iam.calls import Access, Call, Needs, UnknownOperation
from filepipe.local.iam.evaluation import Decision, decide
from filepipe.local.iam.identities import Identities
from filepipe.local.iam.patterns import ContextValue
from filepipe.local.iam.principals import Principal, administrator, anonymous
from filepipe.local.iam.wire import parse, read_body, signature
from filepipe.local.services.s3.access import S3Rules, deleted_objects
from filepipe.local.services.s3.access import rules as s3_rules

# Enforcement is on; FILEPIPE_LOCAL_IAM=off turns it off, for measuring what it costs and nothing else.
SWITCH_VARIABLE = "FILEPIPE_LOCAL_IAM"

Response = refusals.Response

_clock: tuple[int, str, str] = (0, "0", "")


def _now() -> tuple[str, str]:
    """aws:EpochTime and aws:CurrentTime, formatted once a second."""
    global _clock
    second = int(time.time())
    if _clock[0] != second:
        _clock = (second, str(second), datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _clock[1], _clock[2]


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(SWITCH_VARIABLE, "on").strip().lower() not in ("off", "0", "false", "no")


@dataclass(frozen=True)
class Gate:
    """A request that passed, and what S3 answers about a missing object it reads."""

    principal: Principal
    call: Call
    needs: Needs
    can_list: Callable[[], bool]

    def hides_missing(self) -> bool:
        """S3 answers 403 instead of 404 for a missing object unless the caller may list its bucket."""
        return self.needs.reads_from is not None and not self.can_list()


class Refused(Exception):
    """A request IAM refuses; ``response`` is the service's own AccessDenied."""

    def __init__(self, response: Response, text: str) -> None:
        super().__init__(text)
        self.response = response
        self.text = text


class Enforcer:
    """Decides each request the runtime answers against the caller's and the resource's policies."""

    def __init__(self, account: str, region: str, identities: Identities | None = None) -> None:
        self.account = account
        self.region = region
        self.identities = identities or Identities(account, region)
        self._s3: S3Rules = s3_rules(account)
        self.administrator = administrator(account)

    # ------------------------------------------------------------ the gate
    def check(self, environ: dict[str, Any]) -> Gate | None:
        """Decide a request; None when IAM has no say (the browser's unsigned sign-in calls).

        Raises Refused with the service's AccessDenied when IAM would refuse it.
        """
        signed = signature(environ)
        principal: Principal | None
        if acting.ENVIRON_KEY in environ:
            principal = environ[acting.ENVIRON_KEY]  # the runtime's own request, acting for someone
        else:
            principal = self.identities.of_key(signed.access_key) if signed is not None else None
        if principal is None:
            if signed is not None:
                principal = self.administrator
            elif self._unsigned_s3(environ):
                principal = anonymous(self.account)  # an unsigned S3 request: everyone's, and nobody's
            else:
                return None  # the browser's sign-in calls: not IAM's
        service = signed.service if signed is not None and signed.service else "s3"
        region = signed.region if signed is not None and signed.region else self.region
        call = parse(environ, service, self.account, region, signed is not None and signed.presigned)
        if service == "s3" and call.method == "POST" and "delete" in call.query:
            call.params["Objects"] = deleted_objects(read_body(environ))
        return self.decide_call(principal, call, environ)

    def _unsigned_s3(self, environ: Mapping[str, Any]) -> bool:
        """An unsigned request for one of the account's buckets (not the browser's sign-in calls)."""
        from moto.s3.models import s3_backends  # moto internal: the buckets by name

        if environ.get("HTTP_X_AMZ_TARGET"):
            return False
        bucket = str(environ.get("PATH_INFO", "")).lstrip("/").partition("/")[0]
        return bool(bucket) and bucket in s3_backends[self.account]["aws"].buckets

    def decide_call(
        self, principal: Principal, call: Call, environ: Mapping[str, Any] | None = None
    ) -> Gate | None:
        base = self.base_context(principal, call.region, environ)
        try:
            needs = self._s3.call_needs(call) if call.service == "s3" else rules_for(call.service)(call)
        except UnknownOperation as error:
            if principal.kind == "administrator":
                return None  # with no resource named, no resource policy is read that could deny it
            text = (
                f"User: {principal.arn} is not authorized to perform: {error} (the local runtime refuses a "
                "request whose IAM action it cannot name)"
            )
            raise Refused(refusals.refusal(call, text), text) from error
        for access in needs.accesses:
            decision = self.decide(principal, access, base)
            if not decision.allowed:
                text = refusals.message(call, principal.arn, access, decision)
                raise Refused(refusals.refusal(call, text), text)

        def can_list() -> bool:
            assert needs.reads_from is not None
            listing = self._s3.needs("ListObjectsV2", {"Bucket": needs.reads_from}).accesses[0]
            return self.decide(principal, listing, base).allowed

        return Gate(principal, call, needs, can_list)

    def decide(self, principal: Principal, access: Access, base: Mapping[str, ContextValue]) -> Decision:
        context = {**base, **access.context} if access.context else base
        resource_policy = access.policy() if access.policy is not None else None
        return decide(
            principal,
            access.action,
            access.resource,
            context,
            resource_policy,
            resource_policy_required=access.policy_required,
        )

    def base_context(
        self, principal: Principal, region: str, environ: Mapping[str, Any] | None = None
    ) -> dict[str, ContextValue]:
        """The global condition keys of a request (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).

        aws:SecureTransport is true: every request the runtime answers stands for one that is HTTPS on
        AWS (SDK endpoints and presigned URLs are https there); the endpoint is plain HTTP on loopback only.
        """
        epoch, current = _now()
        context: dict[str, ContextValue] = {
            **principal.context,
            "aws:securetransport": "true",
            "aws:currenttime": current,
            "aws:epochtime": epoch,
            "aws:requestedregion": region,
            "aws:sourceip": str((environ or {}).get("REMOTE_ADDR") or "127.0.0.1"),
            "aws:viaawsservice": "false",
        }
        return context

    def check_post(self, bucket: str, key: str, fields: Mapping[str, str]) -> None:
        """A browser's POST Object: its signer (the form's x-amz-credential) needs s3:PutObject now.

        Raises Refused; an unsigned form is anonymous, decided by the bucket's policy alone.
        """
        credential = fields.get("x-amz-credential", "") or fields.get("awsaccesskeyid", "")
        if credential:
            principal = self.identities.of_key(credential.split("/", 1)[0]) or self.administrator
        else:
            principal = anonymous(self.account)
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if fields.get("tagging"):
            params["Tagging"] = fields["tagging"]
        if fields.get("acl"):
            params["ACL"] = fields["acl"]
        call = Call(
            "s3", "PostObject", params, self.account, self.region, path=f"/{bucket}", protocol="rest-xml"
        )
        call.auth_type = "POST"
        base = self.base_context(principal, self.region)
        for access in self._s3.needs("PostObject", params).accesses:
            context = {**access.context, "s3:authtype": "POST", "s3:signatureversion": "AWS4-HMAC-SHA256"}
            decision = self.decide(
                principal, Access(access.action, access.resource, context, access.policy), base
            )
            if not decision.allowed:
                text = refusals.message(call, principal.arn, access, decision)
                raise Refused(refusals.refusal(call, text), text)

    # ------------------------------------------------------------ checks without a request
    def require(self, principal: Principal, call: Call, access: Access) -> None:
        """Raise Refused unless ``principal`` may do ``access`` (the runtime's own direct deliveries)."""
        decision = self.decide(principal, access, self.base_context(principal, call.region))
        if not decision.allowed:
            text = refusals.message(call, principal.arn, access, decision)
            raise Refused(refusals.refusal(call, text), text)
