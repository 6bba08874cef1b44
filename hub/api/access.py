"""What each role may do: the one table mapping every route (method and path template) to the roles allowed.

:func:`authorize` is a dependency of the whole app (``create_app``), so it runs before every route's own code: 401
without valid credentials, 403 for a role the route does not allow (or a route the table forgets: it fails closed,
and ``tests/api/test_access_matrix.py`` fails for it). What a caller then *sees* of the tenants' objects is its
:class:`hub.scope.Scope` (404 for another tenant's object, never 403: existence is not leaked).

A route marked ``single_authority`` stores the caller's tenant (a webhook subscription, a CITES approval): a caller
whose scope holds several authorities names the one it acts for in ``X-On-Behalf-Of``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from hub.api.auth import ON_BEHALF_OF, Client, Role, _bearer, _header, caller
from hub.errors import InputError, PermissionDenied

ISSUER, OPERATOR, AUDITOR, FOREIGN, ADMIN = Role.ISSUING_AUTHORITY, Role.OPERATOR, Role.AUDITOR, Role.FOREIGN_AUTHORITY, Role.ADMINISTRATOR


@dataclass(frozen=True)
class Rule:
    """Who may call a route: ``public`` (no credentials: the route authenticates what it receives itself, or says
    nothing private), else the ``roles`` listed; ``every_tenant``: only a caller whose scope is every tenant (what
    the route shows is no tenant's alone)."""

    roles: frozenset[Role] = frozenset()
    public: bool = False
    single_authority: bool = False
    every_tenant: bool = False
    public_when: Callable[[], bool] | None = None

    def is_public(self) -> bool:
        return self.public or (self.public_when is not None and self.public_when())


def _roles(*roles: Role, single_authority: bool = False, every_tenant: bool = False) -> Rule:
    return Rule(roles=frozenset(roles), single_authority=single_authority, every_tenant=every_tenant)


PUBLIC = Rule(public=True)
#: Issuing authorities and the operators acting for them: the writers of the tenants' business.
WRITE = _roles(ISSUER, OPERATOR)
#: Reading the tenants' objects, each in its scope.
READ = _roles(ISSUER, OPERATOR, AUDITOR, ADMIN)
VERIFY = _roles(ISSUER, OPERATOR, AUDITOR, FOREIGN, ADMIN)

POLICY: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    # the client proves who it is by its signed assertion (hub.api.oauth)
    ("POST", "/v1/oauth/token"): PUBLIC,
    # counterparts push answers: the connector authenticates them (signature, transport identity)
    ("POST", "/v1/inbound/{connector}"): PUBLIC,
    ("POST", "/v1/documents"): WRITE,
    ("GET", "/v1/documents"): READ,
    ("GET", "/v1/documents/{document_id}"): READ,
    ("GET", "/v1/documents/{document_id}/xml"): READ,
    ("GET", "/v1/documents/{document_id}/pdf"): READ,
    ("POST", "/v1/documents/{document_id}/lifecycle"): WRITE,
    ("POST", "/v1/documents/{document_id}/duplicate"): WRITE,
    ("GET", "/v1/messages"): READ,
    ("GET", "/v1/messages/{message_id}"): READ,
    ("GET", "/v1/messages/{message_id}/trace"): READ,
    ("POST", "/v1/messages/{message_id}/resend"): _roles(ISSUER, OPERATOR, ADMIN),
    ("POST", "/v1/messages/{message_id}/abandon"): _roles(ISSUER, OPERATOR, ADMIN),
    ("GET", "/v1/payloads/{digest}"): READ,
    ("POST", "/v1/non-conformities"): WRITE,
    ("GET", "/v1/non-conformities"): READ,
    ("GET", "/v1/non-conformities/stats"): READ,
    ("GET", "/v1/events"): READ,
    ("POST", "/v1/webhooks"): _roles(ISSUER, OPERATOR, ADMIN, single_authority=True),
    ("GET", "/v1/webhooks"): READ,
    ("GET", "/v1/webhooks/{webhook_id}"): READ,
    ("DELETE", "/v1/webhooks/{webhook_id}"): _roles(ISSUER, OPERATOR, ADMIN),
    ("GET", "/v1/verify/{certificate_number}"): VERIFY,
    ("POST", "/v1/verify"): VERIFY,
    # anyone holding a certificate: a number and its code, or a signed copy; rate-limited (hub.api.verify_public)
    ("GET", "/v1/public/verify"): PUBLIC,
    ("POST", "/v1/public/verify"): PUBLIC,
    ("GET", "/verify"): PUBLIC,  # the same, as a page (hub.web.verify)
    ("POST", "/verify"): PUBLIC,
    # every destination's health spans every tenant's traffic
    ("GET", "/v1/connectors"): _roles(AUDITOR, ADMIN, every_tenant=True),
    # alerts in the caller's scope; a counterpart's (no tenant's) only for who sees every tenant (hub.notify.alerts_store)
    ("GET", "/v1/alerts"): READ,
    ("GET", "/console/alerts"): READ,
    ("GET", "/v1/customs/documents/{code}/{number:path}"): READ,
    ("POST", "/v1/customs/declarations/{declaration}/reservations"): WRITE,
    ("POST", "/v1/customs/declarations/{declaration}/clearance"): WRITE,
    ("POST", "/v1/customs/documents/{code}/{number:path}/write-offs"): WRITE,
    ("GET", "/v1/customs/declarations/{declaration}"): READ,
    ("POST", "/v1/cites/approvals"): _roles(ISSUER, OPERATOR, single_authority=True),
    ("GET", "/v1/cites/approvals"): READ,
    ("POST", "/v1/cites/permits/{document_id}/completion"): WRITE,
    # the audit log spans every tenant (hub.api.audit_routes)
    ("GET", "/v1/audit"): _roles(AUDITOR, ADMIN, every_tenant=True),
    ("GET", "/v1/audit/verify"): _roles(AUDITOR, ADMIN, every_tenant=True),
    # the ops console (hub.web): people log in with a password; each page reads through the caller's scope
    ("GET", "/"): PUBLIC,
    ("GET", "/console/login"): PUBLIC,
    ("POST", "/console/login"): PUBLIC,
    ("POST", "/console/logout"): PUBLIC,
    ("GET", "/console"): READ,
    ("GET", "/console/traces"): READ,
    ("GET", "/console/documents/{document_id}"): READ,
    ("GET", "/console/messages/{message_id}"): READ,
    ("POST", "/console/messages/{message_id}/resend"): _roles(ISSUER, OPERATOR, ADMIN),
    ("POST", "/console/messages/{message_id}/abandon"): _roles(ISSUER, OPERATOR, ADMIN),
    ("GET", "/console/live"): READ,
    ("GET", "/console/counterparts"): READ,
    ("GET", "/console/dead-letters"): READ,
    ("GET", "/console/non-conformities"): READ,
    ("GET", "/console/non-conformities/chart.svg"): READ,
    ("GET", "/console/non-conformities/{non_conformity_id}"): READ,
    ("GET", "/metrics"): Rule(roles=frozenset({ADMIN}), every_tenant=True, public_when=lambda: os.environ.get("HUB_METRICS_PUBLIC") == "1"),
}


def rule_for(method: str, path: str) -> Rule | None:
    """The rule of a route (HEAD is read as GET), or None when the table has none."""
    return POLICY.get(("GET" if method == "HEAD" else method, path))


async def authorize(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header_key: str | None = Depends(_header),
) -> None:
    """FastAPI dependency of the whole app: authenticates the caller unless the route is public, and refuses a role
    the route does not allow. The client found is kept on ``request.state`` for the route's own dependencies. On
    the event loop: a worker thread is taken only when the store must be asked who the caller is."""
    route = request.scope.get("route")
    rule = rule_for(request.method, getattr(route, "path", ""))
    if rule is not None and rule.is_public():
        return
    client = await caller(request, bearer, header_key)
    request.state.client = client  # known before any refusal, so that the audit log names who was refused
    if rule is None:
        raise PermissionDenied("no role may call this route", where="route")
    allowed(rule, client)


def allowed(rule: Rule, client: Client) -> None:
    """Nothing when ``client`` may call a route of ``rule``, else :class:`PermissionDenied` (or InputError when it
    must first name the one authority it acts for)."""
    if client.role not in rule.roles:
        raise PermissionDenied(f"a client of role {client.role.value} may not do this", where="role")
    if rule.every_tenant and not client.scope.everything:
        raise PermissionDenied("this spans every tenant: only a client that sees every tenant may call it", where="role")
    tenants = client.scope.tenants
    if rule.single_authority and tenants is not None and len(tenants) > 1:
        raise InputError(f"this client acts for several authorities: name the one in the {ON_BEHALF_OF} header", where=ON_BEHALF_OF)
