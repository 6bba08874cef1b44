"""``/v1/cites``: the French simplified re-export procedure (PSSM) — its approvals, and the completion of a
re-export certificate issued under it with the boxes reported at the sale (see :mod:`hub.cites.pssm`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import caller, Client
from hub.api.deps import get_broker
from hub.api.views import submission_view
from hub.broker import Broker
from hub.cites.pssm import Completion
from hub.errors import PermissionDenied
from hub.store.models import CITESApproval

router = APIRouter(prefix="/v1/cites", tags=["cites"])


class ApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approval_number: str = Field(min_length=1, max_length=100)
    holder_account: str = Field(min_length=1, max_length=100, description="the account the approval is for")
    holder_sub_account: str | None = Field(None, max_length=100, description="the sub-account, when the approval is for one")
    specimen_code: str = Field(min_length=1, max_length=100, description="the one specimen code the approval covers")
    valid_from: datetime
    valid_until: datetime | None = None
    tenant: str | None = Field(None, max_length=20, description="the issuing authority the approval belongs to, when given: the one the caller acts for")


def approval_view(row: CITESApproval) -> dict[str, Any]:
    return {
        "tenant": row.tenant,
        "approval_number": row.approval_number,
        "holder_account": row.holder_account,
        "holder_sub_account": row.holder_sub_account,
        "specimen_code": row.specimen_code,
        "valid_from": row.valid_from.isoformat(),
        "valid_until": row.valid_until.isoformat() if row.valid_until else None,
        "created_at": row.created_at.isoformat() if row.created_at else None,
    }


@router.post("/approvals", status_code=201)
async def create_approval(body: ApprovalIn, response: Response, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> dict:
    """Record an approval of the simplified procedure for the one authority the caller acts for (an operator of
    several names it in ``X-On-Behalf-Of``): ``409`` when its number exists."""
    tenant = client.scope.tenant
    if body.tenant and body.tenant != tenant:
        raise PermissionDenied(f"this client acts for {client.tenant}; it cannot record an approval of {body.tenant}", where="tenant")
    row = await run_in_threadpool(broker.create_approval, tenant=tenant, **body.model_dump(exclude={"tenant"}))
    response.headers["Location"] = f"/v1/cites/approvals?number={row.approval_number}"
    return approval_view(row)


@router.get("/approvals")
async def list_approvals(client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> dict:
    """The approvals of the caller's authority (every authority's for an operator)."""
    rows = await run_in_threadpool(broker.list_approvals, tenant=client.scope.name)
    return {"items": [approval_view(row) for row in rows]}


class CompletionItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: dict[str, Any] | None = Field(None, description='Box 11, e.g. {"value": "12", "unit": "PCS"}')
    descriptions: list[dict[str, Any] | str] | None = Field(None, description="Box 9 description, one per language")


class CompletionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sale_date: str = Field(min_length=1, description="the date (or date-time) of the sale, ISO 8601")
    consignee: dict[str, Any] | None = Field(None, description="Box 3 importer with its address; Box 3a country of import in address.country_id")
    items: list[CompletionItemIn] = Field(default_factory=list, description="per line, in the certificate's order: quantity and description")


@router.post("/permits/{document_id}/completion")
async def complete(document_id: str, body: CompletionIn, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> dict:
    """Report the boxes left blank at issue on a simplified-procedure re-export certificate: the completed record is
    stored as the permit's next version and the permit becomes ``completed``. ``409`` when a box filled at issue would
    change (each named; the attempt is flagged as a possible fraud) or the permit is not an issued simplified-procedure
    certificate; ``422`` when the completed certificate is invalid. A completion more than 24 hours after the sale is
    accepted with a WARNING in ``warnings``."""
    completion = Completion(
        sale_date=body.sale_date,
        consignee=body.consignee,
        items=[item.model_dump(exclude_none=True) for item in body.items],
    )
    done = await run_in_threadpool(broker.complete_permit, document_id, completion, tenant=client.scope.name, actor=client.actor)
    document = done.stored.document
    return {
        **submission_view(document),
        "version": document.version,
        "lifecycle": document.lifecycle,
        "warnings": [warning.model_dump(mode="json") for warning in done.warnings],
    }
