"""Who signed a request, read from moto's IAM and STS: role sessions, users, and the administrator.

moto internals relied on: ``moto.iam.models.iam_backends[account]["aws"]`` (``access_keys`` by key id,
each with ``role_arn`` or ``user_name``; ``roles`` by id; ``users`` by name; ``managed_policies`` by ARN;
a role's or user's ``policies`` (inline, name -> JSON) and ``managed_policies``; a policy's ``versions``
with ``is_default`` and ``document``; ``permissions_boundary_arn``) and
``moto.sts.models.sts_backends[account]["aws"]`` (``assume_role`` and ``assumed_roles``, each with
``access_key_id``, ``session_name`` and ``policy``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from filepipe.local.iam import policy
from filepipe.local.iam.policy import Policy
from filepipe.local.iam.principals import Principal, role_session, user

# Lambda's and the other services' sessions last as long as a role allows: 12 hours.
SESSION_SECONDS = 12 * 3600
_UNSEEN: Any = object()  # an access key not looked up yet (None: looked up, the administrator's)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str


@dataclass(frozen=True)
class _Key:
    role_arn: str | None
    user_name: str | None
    session: str
    session_policy: str | None


class UnknownRole(LookupError):
    """No role of the account has this ARN."""


def _iam(account: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account]["aws"]


def _documents(holder: Any) -> tuple[str, ...]:
    """The JSON texts of an IAM identity's inline and attached policies."""
    texts = list(holder.policies.values())
    for managed in holder.managed_policies.values():
        texts.extend(version.document for version in managed.versions if version.is_default)
    return tuple(texts)


class Identities:
    """Maps access keys to the principals AWS would evaluate; a key moto never issued is the administrator."""

    def __init__(self, account: str, region: str = "us-east-1") -> None:
        self.account = account
        self.region = region
        self._keys: dict[str, _Key | None] = {}
        self._roles: dict[str, Any] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ issuing
    def issue(self, role_arn: str, session: str) -> Credentials:
        """Credentials of a session of ``role_arn``, as a service gets them by assuming the role."""
        from moto.sts.models import sts_backends

        self.role(role_arn)  # unlike moto, AWS assumes only a role that exists
        backend: Any = sts_backends[self.account]["aws"]
        assumed = backend.assume_role(
            region_name=self.region,
            role_session_name=session,
            role_arn=role_arn,
            policy=None,
            duration=SESSION_SECONDS,
            external_id=None,
        )
        return Credentials(assumed.access_key_id, assumed.secret_access_key, assumed.session_token)

    # ------------------------------------------------------------ looking up
    def role(self, role_arn: str) -> Any:
        """The moto role with this ARN (its name is the ARN's last part, whatever its path)."""
        name = role_arn.rsplit("/", 1)[-1]
        backend = _iam(self.account)
        with self._lock:
            known = self._roles.get(name)
        if known is not None and backend.roles.get(known.id) is known:
            return known
        for role in list(backend.roles.values()):
            if role.name == name:
                with self._lock:
                    self._roles[name] = role
                return role
        raise UnknownRole(role_arn)

    def session(self, role_arn: str, session: str, session_policy: str | None = None) -> Principal:
        """The principal of a session of ``role_arn``, with the role's policies as they are now."""
        role = self.role(role_arn)
        limits = self._limits(role.permissions_boundary_arn, session_policy)
        return role_session(self.account, role.arn, session, policy.parse(*_documents(role)), limits, role.id)

    def of_key(self, access_key: str) -> Principal | None:
        """The principal that signs with ``access_key``; None for the account's administrator."""
        with self._lock:
            known = self._keys.get(access_key, _UNSEEN)
        if known is _UNSEEN:
            known = self._find(access_key)
            with self._lock:
                self._keys[access_key] = known
        if known is None:
            return None
        assert isinstance(known, _Key)
        if known.role_arn is not None:
            try:
                return self.session(known.role_arn, known.session, known.session_policy)
            except UnknownRole:
                return role_session(self.account, known.role_arn, known.session, policy.EMPTY)
        assert known.user_name is not None
        return self._user(known.user_name)

    def _find(self, access_key: str) -> _Key | None:
        from moto.sts.models import sts_backends

        key = _iam(self.account).access_keys.get(access_key)
        if key is None:
            return None
        if key.role_arn:
            for assumed in list(sts_backends[self.account]["aws"].assumed_roles):
                if assumed.access_key_id == access_key:
                    return _Key(key.role_arn, None, assumed.session_name, assumed.policy or None)
            return _Key(key.role_arn, None, "session", None)
        if key.user_name:
            return _Key(None, key.user_name, "", None)
        return None

    def _user(self, name: str) -> Principal | None:
        backend = _iam(self.account)
        found = backend.users.get(name)
        if found is None:
            return None
        texts = list(_documents(found))
        for group in list(backend.groups.values()):
            if found in group.users:
                texts.extend(_documents(group))
        limits = self._limits(getattr(found, "permissions_boundary_arn", None), None)
        return user(self.account, found.arn, policy.parse(*texts), limits)

    def _limits(self, boundary_arn: str | None, session_policy: str | None) -> tuple[Policy, ...]:
        limits: list[Policy] = []
        if boundary_arn:
            boundary = _iam(self.account).managed_policies.get(boundary_arn)
            texts = [v.document for v in boundary.versions if v.is_default] if boundary is not None else []
            limits.append(policy.parse(*texts))  # a boundary that does not exist allows nothing
        if session_policy:
            limits.append(policy.parse(session_policy))
        return tuple(limits)
