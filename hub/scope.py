"""Who sees what: the one place that decides whether a caller may see an object of a tenant.

A tenant is an issuing authority, named by its ISO country code. A :class:`Scope` is what one caller sees: one
tenant's objects, those of a few named tenants (an operator acting for them, an auditor granted them), none (a foreign
authority, which only verifies), or every tenant's (``EVERYTHING``, written ``*`` where a tenant is stored or
configured: administrators and the hub itself). A scope of several tenants is written ``FR,NL``. Code above this
module never compares tenants with ``*`` itself: it asks a scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

#: How "every tenant" is written where a tenant is stored or configured (API clients, webhook subscriptions).
ALL_TENANTS = "*"
#: How the tenants of a scope of several are separated where the scope is written (``FR,NL``).
SEPARATOR = ","


@dataclass(frozen=True)
class Scope:
    """The tenants a caller sees: those in ``tenants``, or every tenant when ``tenants`` is None."""

    tenants: frozenset[str] | None

    @classmethod
    def of(cls, tenant: "str | Scope | None") -> "Scope":
        """The scope of a stored or configured tenant: ``*`` or None for every tenant, ``FR`` or ``FR,NL``."""
        if isinstance(tenant, Scope):
            return tenant
        if tenant in (None, ALL_TENANTS):
            return EVERYTHING
        return cls(frozenset(t for t in tenant.split(SEPARATOR) if t))

    @classmethod
    def of_tenants(cls, tenants: Iterable[str]) -> "Scope":
        """The scope of exactly ``tenants`` (none: a scope that sees nothing)."""
        return cls(frozenset(tenants))

    @property
    def everything(self) -> bool:
        """Whether this scope sees every tenant's objects."""
        return self.tenants is None

    @property
    def tenant(self) -> str | None:
        """The one tenant of a single-tenant scope; None for every tenant, none, or several."""
        return next(iter(self.tenants)) if self.tenants is not None and len(self.tenants) == 1 else None

    @property
    def name(self) -> str:
        """The scope as stored and shown: ``FR``, ``FR,NL`` (sorted), or ``*``."""
        return ALL_TENANTS if self.tenants is None else SEPARATOR.join(sorted(self.tenants))

    def sees(self, *tenants: str | None) -> bool:
        """Whether an object belonging to any of ``tenants`` is visible in this scope."""
        return self.everything or any(t in self.tenants for t in tenants if t is not None)

    def restrict(self, query: Any, column: Any) -> Any:
        """``query`` limited to this scope's rows (``column`` holds each row's tenant); unchanged for every tenant."""
        if self.everything:
            return query
        if len(self.tenants) == 1:
            return query.where(column == self.tenant)
        return query.where(column.in_(sorted(self.tenants)))

    def narrowed_to(self, tenant: str) -> "Scope | None":
        """This scope reduced to ``tenant`` alone, or None when this scope does not see ``tenant``."""
        return Scope.of_tenants([tenant]) if tenant != ALL_TENANTS and self.sees(tenant) else None

    def owner_for(self, issuing_country: str | None) -> str | None:
        """The tenant an object issued by ``issuing_country`` belongs to when this scope acts on it: the issuing
        country for a scope that sees it (never ``*`` nor a list), else this scope's one tenant."""
        if self.everything or (issuing_country is not None and issuing_country in self.tenants):
            return issuing_country
        return self.tenant


EVERYTHING = Scope(None)
NOTHING = Scope(frozenset())
