"""Who sees what: the one place that decides whether a caller may see an object of a tenant.

A tenant is an issuing authority, named by its ISO country code. A :class:`Scope` is what one caller sees: one
tenant's objects, or every tenant's (``EVERYTHING``, written ``*`` where a tenant is stored or configured: operators
and the hub itself). Code above this module never compares tenants with ``*`` itself: it asks a scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: How "every tenant" is written where a tenant is stored or configured (API clients, webhook subscriptions).
ALL_TENANTS = "*"


@dataclass(frozen=True)
class Scope:
    """The tenants a caller sees: ``tenant`` alone, or every tenant when ``tenant`` is None."""

    tenant: str | None

    @classmethod
    def of(cls, tenant: "str | Scope | None") -> "Scope":
        """The scope of a stored or configured tenant (``*`` or None: every tenant)."""
        if isinstance(tenant, Scope):
            return tenant
        return cls(None if tenant in (None, ALL_TENANTS) else tenant)

    @property
    def everything(self) -> bool:
        """Whether this scope sees every tenant's objects."""
        return self.tenant is None

    @property
    def name(self) -> str:
        """The scope as stored and shown: the tenant, or ``*``."""
        return self.tenant or ALL_TENANTS

    def sees(self, *tenants: str | None) -> bool:
        """Whether an object belonging to any of ``tenants`` is visible in this scope."""
        return self.everything or self.tenant in tenants

    def restrict(self, query: Any, column: Any) -> Any:
        """``query`` limited to this scope's rows (``column`` holds each row's tenant); unchanged for every tenant."""
        return query if self.everything else query.where(column == self.tenant)

    def owner_for(self, issuing_country: str | None) -> str | None:
        """The tenant an object issued by ``issuing_country`` belongs to when this scope acts on it."""
        return issuing_country if self.everything else self.tenant


EVERYTHING = Scope(None)
