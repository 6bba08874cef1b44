"""API keys: every call is authenticated. A key belongs to one client, bound to a tenant (the issuing authority,
by its ISO country code); an operator key (tenant ``*``) reads across tenants. Only a SHA-256 of each key is stored.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from hub.errors import ConflictError, Unauthenticated
from hub.scope import ALL_TENANTS, EVERYTHING, Scope
from hub.store.models import ApiClient

KEY_PREFIX = "hub_"
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or the key in X-API-Key")


@dataclass(frozen=True)
class Client:
    """The authenticated caller."""

    id: str
    name: str
    tenant: str
    operator: bool

    @property
    def actor(self) -> str:
        return f"api:{self.name}"

    @property
    def scope(self) -> Scope:
        """What this client sees: its tenant's objects, or every tenant's for an operator."""
        return EVERYTHING if self.operator else Scope.of(self.tenant)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_client(session, *, name: str, tenant: str, operator: bool = False, key: str | None = None) -> tuple[ApiClient, str]:
    """Create a client and return it with its API key (shown once; only its hash is kept)."""
    if session.scalars(select(ApiClient).where(ApiClient.name == name)).first() is not None:
        raise ConflictError(f"a client named {name!r} exists already")
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(id=str(uuid.uuid4()), name=name, tenant=tenant.upper() if tenant != ALL_TENANTS else ALL_TENANTS, key_hash=hash_key(key), operator=operator or tenant == ALL_TENANTS)
    session.add(client)
    session.flush()
    return client, key


def find_client(session, key: str) -> Client | None:
    row = session.scalars(select(ApiClient).where(ApiClient.key_hash == hash_key(key))).first()
    return Client(id=row.id, name=row.name, tenant=row.tenant, operator=row.operator) if row else None


def current_client(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header_key: str | None = Depends(_header),
) -> Client:
    """FastAPI dependency: the client of the request's API key, or 401."""
    key = (bearer.credentials if bearer else None) or header_key
    if not key:
        raise Unauthenticated("an API key is required: send 'Authorization: Bearer <key>' (hub clients add makes one)")
    broker = request.app.state.broker
    cache: dict = request.app.state.client_cache
    client = cache.get(key)
    if client is None:
        with broker.database.transaction() as session:
            client = find_client(session, key)
        if client is None:
            raise Unauthenticated("unknown API key")
        cache[key] = client
    return client
