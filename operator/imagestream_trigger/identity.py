"""Whose rights an ImageTrigger's writes use: the operator's, or a ServiceAccount's. Pure.

An ImageTrigger with ``spec.serviceAccountName`` (or, in lockdown mode, every ImageTrigger:
``--default-service-account``) acts as that ServiceAccount of its own namespace: its
writes are sent with the operator's credentials plus an ``Impersonate-User`` header, so
the API server authorizes them as the ServiceAccount, and a tenant can change only what
its own ServiceAccount may. Same connection pool, one header more per request.

Only ``Impersonate-User`` is sent. For a ServiceAccount username the API server adds the
account's groups itself (``system:serviceaccounts``, ``system:serviceaccounts:<ns>``, and
``system:authenticated``) when no ``Impersonate-Group`` header is given; sending the
groups explicitly would need ``impersonate`` on ``groups`` as well, a right the operator
should not hold (k8s.io/apiserver ``filters/impersonation.go``). kubectl ``--as`` sends
the same single header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

IMPERSONATE_USER: Final = "Impersonate-User"
SPEC_FIELD: Final = "spec.serviceAccountName"
LOCKDOWN_FLAG: Final = "--default-service-account"

# kube-apiserver's words for a refusal: `User "u" cannot patch resource "deployments"
# in API group "apps" in the namespace "team-a"` (subresources as "buildconfigs/instantiate").
_CANNOT: Final = re.compile(
    r'cannot (?P<verb>[a-z]+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]+)")?'
)
# OpenShift's build strategy admission: `build strategy Custom is not allowed`.
_STRATEGY: Final = re.compile(r"build strategy (?P<strategy>\w+) is not allowed")
_STRATEGY_SUBRESOURCE: Final = {
    "Docker": "docker",
    "Source": "source",
    "Custom": "custom",
    "JenkinsPipeline": "jenkinspipeline",
}
_BUILD_GROUP: Final = "build.openshift.io"


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The ServiceAccount an ImageTrigger's writes impersonate."""

    namespace: str
    name: str
    # Where it was named: SPEC_FIELD, or LOCKDOWN_FLAG for the operator-wide default.
    origin: str = SPEC_FIELD

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    def headers(self) -> dict[str, str]:
        """The impersonation headers of a request made as this ServiceAccount."""
        return {IMPERSONATE_USER: self.username}

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def acting_as(namespace: str, named: str | None, default: str) -> ServiceAccount | None:
    """Who an ImageTrigger in ``namespace`` writes as: the ServiceAccount it names, else the
    operator-wide default (lockdown), else None (the operator's own identity)."""
    if named:
        return ServiceAccount(namespace, named, SPEC_FIELD)
    if default:
        return ServiceAccount(namespace, default, LOCKDOWN_FLAG)
    return None


@dataclass(frozen=True, slots=True)
class Right:
    """One RBAC right: what a Role rule must grant."""

    verb: str
    resource: str  # "buildconfigs/instantiate" for a subresource
    group: str
    namespace: str

    def __str__(self) -> str:
        group = f" (API group {self.group})" if self.group else ""
        return f"{self.verb} {self.resource}{group} in namespace {self.namespace}"


def missing_right(server_message: str, attempted: Right) -> Right:
    """The right a 403 says was missing; what was attempted when the message does not say.

    A BuildConfig's instantiate may be refused for the build strategy rather than for
    ``buildconfigs/instantiate`` itself: then ``create builds/<strategy>`` is missing.
    """
    strategy = _STRATEGY.search(server_message)
    if strategy is not None:
        sub = _STRATEGY_SUBRESOURCE.get(strategy["strategy"], strategy["strategy"].lower())
        return Right("create", f"builds/{sub}", _BUILD_GROUP, attempted.namespace)
    cannot = _CANNOT.search(server_message)
    if cannot is not None:
        return Right(
            cannot["verb"],
            cannot["resource"],
            cannot["group"] if cannot["group"] is not None else attempted.group,
            cannot["namespace"] or attempted.namespace,
        )
    return attempted


def describe_denial(account: ServiceAccount, attempted: Right, server_message: str) -> str:
    """What a person reads when a request made as ``account`` was refused with 403."""
    if 'cannot impersonate resource "serviceaccounts"' in server_message:
        return (
            f"the operator may not act as ServiceAccount {account} (named by {account.origin}): "
            'it needs "impersonate" on "serviceaccounts" in namespace '
            f"{account.namespace}, which the shipped ClusterRole grants. "
            f"API server: {server_message}"
        )
    right = missing_right(server_message, attempted)
    guessed = right is attempted
    return (
        f"ServiceAccount {account} may not {right}. The trigger acts as this ServiceAccount "
        f"({account.origin}): grant the right with a Role and a RoleBinding, and check that "
        "the ServiceAccount exists (one that does not has no rights)."
        + (f" API server: {server_message}" if guessed else "")
    )
