"""``/v1/customs``: the registry customs asks at clearance (DELTA-G through the national single window).

A declaration names each document it relies on by GUN code and number. Customs checks a document (validity, and the
quantity left on each line), reserves the declared quantities, and once the declaration is decided writes them off
(goods released) or releases them (declaration invalidated). For a CHED the registry keeps TRACES-NT's ledger
(CSW-CERTEX) in step: see :mod:`hub.customs.registry` and :mod:`hub.customs.reconcile`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import caller, Client
from hub.api.deps import get_broker
from hub.broker import Broker
from hub.customs.ledger import Clearance, DeclaredItem, FailureReason
from hub.customs.registry import ReservationAnswer, Standing

router = APIRouter(prefix="/v1/customs", tags=["customs"])


class DeclaredItemIn(BaseModel):
    """One goods item of the declaration, set against one line of the document."""

    model_config = ConfigDict(extra="forbid")

    goods_item: int = Field(ge=1, description="the goods item number in the declaration")
    line: int = Field(ge=1, description="the document's line (trade line item sequence number)")
    quantity: Decimal = Field(gt=0, description="the declared quantity, in the line's unit")
    unit: str | None = Field(None, description="UN/ECE Rec 20 unit (KGM…); must be the line's unit when given")
    class_code: str | None = Field(None, description="the declared commodity code (CN/HS); must agree with the line's")


class ReservationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="GUN document code: C640, C678, N853, C085 (CHEDs); C638, C639, C401 (CITES)")
    number: str = Field(description="the certificate or permit number")
    office: str | None = Field(None, description="the customs office (e.g. FR000690)")
    items: list[DeclaredItemIn] = Field(min_length=1)


class ClearanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    number: str
    clearance: Literal["released", "invalidated"] = Field(description="released: write the reservations off; invalidated: give them back")
    office: str | None = None


_CLEARANCES = {"released": Clearance.RELEASED, "invalidated": Clearance.INVALIDATED}


def standing_view(standing: Standing) -> dict[str, Any]:
    """A document's standing as customs sees it."""
    return {
        "code": standing.code,
        "document_id": standing.document_id,
        "kind": standing.kind,
        "certificate_number": standing.certificate_number,
        "status": standing.status,
        "lifecycle": standing.lifecycle,
        "valid": standing.valid,
        "reasons": list(standing.reasons),
        "lines": [b.as_json() for b in standing.balances],
        "declarations": [m.as_json() for m in standing.movements],
    }


@router.get("/documents/{code}/{number:path}")
async def check(code: str, number: str, declaration: str | None = None, office: str | None = None, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> dict:
    """Is the document valid for clearance, and how much remains on each line? ``404`` if the hub holds no such
    document for the caller; ``422`` for an unknown GUN code."""
    standing = await run_in_threadpool(broker.customs.check, code, number, tenant=client.scope.name, office=office, declaration=declaration)
    return standing_view(standing)


@router.post("/declarations/{declaration}/reservations", responses={409: {"description": "not valid for clearance, or more than remains"}, 422: {"description": "a goods item does not match its line"}})
async def reserve(declaration: str, body: ReservationIn, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> Any:
    """Reserve the declared quantities, all or nothing. Reserving a goods item again replaces its earlier
    reservation. A refusal names the goods item (``where``) and the CSW-CERTEX failure code, and reserves nothing.
    ``502`` when TRACES-NT (for a CHED) did not answer: the outcome is unknown and the quantities stay held
    (``pending``) until the same request is repeated (it never reserves twice) or the reconciliation settles it."""
    items = [DeclaredItem(goods_item=i.goods_item, line=i.line, quantity=i.quantity, class_code=i.class_code, unit=i.unit) for i in body.items]
    answer = await run_in_threadpool(broker.customs.reserve, body.code, body.number, tenant=client.scope.name, declaration=declaration, items=items, office=body.office)
    if answer.accepted:
        return {"accepted": True, "standing": standing_view(answer.standing)}
    return _refusal(answer, body)


@router.post("/declarations/{declaration}/clearance")
async def clearance(declaration: str, body: ClearanceIn, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> dict:
    """The declaration is decided: ``released`` writes its reservations off (the document becomes *used* once
    nothing remains), ``invalidated`` gives them back. A repeat answers ``nothing_to_process``. ``502`` when
    TRACES-NT (for a CHED) did not answer: nothing changes here until the request is repeated or reconciled."""
    answer = await run_in_threadpool(broker.customs.clear, body.code, body.number, tenant=client.scope.name, declaration=declaration, clearance=_CLEARANCES[body.clearance], office=body.office)
    return {"outcome": answer.outcome.name.lower(), "outcome_code": answer.outcome.value, "changed": [m.as_json() for m in answer.changed], "standing": standing_view(answer.standing)}


class ManualWriteOffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document_type: str = Field("EXA", description="the customs document type of the declaration (EXA: export declaration)")
    declaration: str = Field("inconnu", description="the declaration's number; inconnu when the holder does not know it")
    purchase_date: date = Field(description="the date of the sale (or of the export)")
    items: list[DeclaredItemIn] = Field(min_length=1)


@router.post("/documents/{code}/{number:path}/write-offs", responses={409: {"description": "not valid, or more than remains"}, 422: {"description": "a goods item does not match its line"}})
async def write_off_by_hand(code: str, number: str, body: ManualWriteOffIn, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> Any:
    """The issuing authority enters what customs did not write back (a permit used without DELTA's write-off):
    declaration type and number (``EXA`` / ``inconnu``), the purchase date and the quantities, written off at once."""
    items = [DeclaredItem(goods_item=i.goods_item, line=i.line, quantity=i.quantity, class_code=i.class_code, unit=i.unit) for i in body.items]
    reserved, cleared = await run_in_threadpool(
        broker.customs.write_off_by_hand, code, number, tenant=client.scope.name, items=items,
        purchase_date=body.purchase_date.isoformat(), document_type=body.document_type, declaration=body.declaration,
    )
    if cleared is None:
        return _refusal(reserved, body)
    return {"outcome": cleared.outcome.name.lower(), "changed": [m.as_json() for m in cleared.changed], "standing": standing_view(cleared.standing)}


@router.get("/declarations/{declaration}")
async def declaration_movements(declaration: str, client: Client = Depends(caller), broker: Broker = Depends(get_broker)) -> dict:
    """What ``declaration`` reserved and wrote off, document by document."""
    rows = await run_in_threadpool(broker.customs.declaration, declaration, tenant=client.scope.name)
    return {"declaration": declaration, "movements": [{"document_id": d.id, "certificate_number": d.certificate_number, **m.as_json()} for d, m in rows]}


def _refusal(answer: ReservationAnswer, body: ReservationIn | ManualWriteOffIn) -> JSONResponse:
    standing = standing_view(answer.standing)
    if answer.reservation is None:
        message = f"{answer.standing.certificate_number} is not valid for clearance: " + "; ".join(answer.standing.reasons)
        return JSONResponse({"error": "ReservationRefused", "message": message, "where": "number", "accepted": False, "standing": standing}, status_code=409)
    reservation = answer.reservation
    item = reservation.failed_item
    index = next(i for i, declared in enumerate(body.items) if declared.goods_item == item.goods_item and declared.line == item.line)
    field = "quantity" if reservation.failure is FailureReason.QUANTITY_EXCEEDED else "line"
    return JSONResponse(
        {
            "error": "ReservationRefused",
            "message": f"goods item {item.goods_item}: {reservation.failure.text}",
            "where": f"items[{index}].{field}",
            "accepted": False,
            "failure": {"code": reservation.failure.value, "goods_item": item.goods_item, "line": item.line},
            "standing": standing,
        },
        status_code=409 if reservation.failure is FailureReason.QUANTITY_EXCEEDED else 422,
    )
