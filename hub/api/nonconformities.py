"""``/v1/non-conformities``: rejections and border refusals linked to certificates; reported by counterparts
(through acknowledgements) or by the exporter; listed and counted by country × product × cause × counterpart."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from hub.acks.nonconformities import GROUPS, NonConformityFilter, list_non_conformities, statistics
from hub.api.auth import caller, Client
from hub.api.deps import MAX_OFFSET, get_broker, read_session
from hub.api.views import non_conformity_view
from hub.broker import Broker
from hub.errors import InputError

router = APIRouter(prefix="/v1/non-conformities", tags=["non-conformities"])


class NonConformityReport(BaseModel):
    """A refusal reported by the exporter or an operator."""

    model_config = ConfigDict(extra="forbid")

    document_id: str
    counterpart: str = Field(description="who refused: a destination name, or the border post / authority")
    cause_code: str = Field(min_length=1, max_length=60)
    cause_text: str | None = None
    country: str | None = Field(None, min_length=2, max_length=2, description="defaults to the importing country")
    products: list[str] | None = Field(None, description="HS codes concerned; default: the certificate's")
    source: str = Field("border_refusal", pattern="^(border_refusal|business_response|exporter)$")


def _filter(client: Client, country, counterpart, cause, product, from_, to, state) -> NonConformityFilter:
    return NonConformityFilter(tenant=client.scope.name, country=country, counterpart=counterpart, cause=cause, product=product, since=from_, until=to, state=state)


@router.post("", status_code=201)
async def report(body: NonConformityReport, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> dict:
    """Open a non-conformity on a certificate (e.g. a refoulement at the importing border)."""
    nc = await run_in_threadpool(
        broker.report_non_conformity,
        document_id=body.document_id, tenant=client.scope.name, actor=client.actor, counterpart=body.counterpart, cause_code=body.cause_code,
        cause_text=body.cause_text, country=body.country.upper() if body.country else None, products=body.products, source=body.source,
    )
    return non_conformity_view(nc)


@router.get("")
def list_(
    client: Client = Depends(caller),
    session: Session = Depends(read_session),
    country: str | None = None,
    counterpart: str | None = None,
    cause: str | None = None,
    product: str | None = Query(None, description="HS code prefix"),
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict:
    """Non-conformities matching every filter, newest first."""
    total, rows = list_non_conformities(session, _filter(client, country, counterpart, cause, product, from_, to, state), limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "items": [non_conformity_view(nc) for nc in rows]}


@router.get("/stats")
def stats(
    client: Client = Depends(caller),
    session: Session = Depends(read_session),
    by: Annotated[list[str], Query(description=f"group by any of {sorted(GROUPS)}, repeatable")] = ["country", "product", "cause"],
    country: str | None = None,
    counterpart: str | None = None,
    cause: str | None = None,
    product: str | None = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    state: str | None = None,
) -> dict:
    """Counts by country × product × cause (or any grouping), most frequent first: where the problems are."""
    groups = [g for part in by for g in part.split(",") if g]
    try:
        rows = statistics(session, _filter(client, country, counterpart, cause, product, from_, to, state), by=groups)
    except ValueError as exc:
        raise InputError(str(exc), where="by") from exc
    return {"by": groups, "items": rows}
