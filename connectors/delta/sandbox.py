"""The DELTA-G sandbox: French customs clearance, as the hub's certificate registry sees it.

It lodges import declarations that reference certificates by GUN document code (C640, C678, N853, C085 for CHEDs;
C638, C639, C401 for CITES), and for each referenced document asks the hub (``/v1/customs``) whether it is valid,
then reserves the declared quantities. A declaration with any refusal is refused and what it had reserved is given
back. Releasing the goods (*bon à enlever*) writes the reservations off; invalidating the declaration releases them.
Every exchange with the hub is recorded and shown by ``GET /declarations/{mrn}``.

The real DELTA-G reaches certificate registries through the national single window (GUN) and, for CHEDs, EU
CSW-CERTEX; no public message specification exists for the GUN leg (FACTS §6), so the sandbox speaks the hub's REST
customs API.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DEFAULT_OFFICE = "FR000690"  # a customs office reference as DELTA-G writes it


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    goods_item: int = Field(ge=1)
    line: int = Field(1, ge=1)
    quantity: str
    unit: str | None = None
    class_code: str | None = None


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    number: str
    items: list[ItemIn] = Field(min_length=1)


class DeclarationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mrn: str | None = Field(None, description="the declaration's MRN; made up when absent")
    office: str = DEFAULT_OFFICE
    documents: list[DocumentIn] = Field(min_length=1)


@dataclass
class Exchange:
    """One call to the hub and its answer, as DELTA-G would log it."""

    step: str
    code: str
    number: str
    status: int
    answer: Any


@dataclass
class Declaration:
    """A lodged declaration: ``lodged`` (quantities reserved), ``refused``, ``released`` or ``invalidated``."""

    mrn: str
    office: str
    documents: list[dict]
    status: str = "lodging"
    reasons: list[str] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    lodged_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    def as_json(self) -> dict:
        return asdict(self)


class DeltaSandbox:
    """DELTA-G's side of the exchange, calling the hub at ``hub_url`` with a customs API key."""

    def __init__(self, *, hub_url: str, api_key: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.api_key = api_key
        self.transport = transport
        self.declarations: dict[str, Declaration] = {}
        self._numbers = itertools.count(1)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.hub_url, transport=self.transport, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30.0)

    async def lodge(self, request: Request) -> JSONResponse:
        try:
            lodged = DeclarationIn.model_validate(await request.json())
        except (ValidationError, ValueError) as exc:
            return JSONResponse({"error": "DeclarationInvalid", "message": str(exc)}, status_code=422)
        mrn = lodged.mrn or f"{datetime.now(timezone.utc):%y}FRDELTAG{next(self._numbers):08d}"
        if mrn in self.declarations:
            return JSONResponse({"error": "DeclarationExists", "message": f"declaration {mrn} was lodged already", "where": "mrn"}, status_code=409)
        declaration = Declaration(mrn=mrn, office=lodged.office, documents=[d.model_dump(exclude_none=True) for d in lodged.documents])
        self.declarations[mrn] = declaration
        async with self._client() as hub:
            reserved = []
            for document in lodged.documents:
                check = await self._call(hub, declaration, "check", document.code, document.number, "GET", f"/v1/customs/documents/{document.code}/{document.number}", params={"declaration": mrn, "office": lodged.office})
                if check.status != 200 or not check.answer.get("valid"):
                    declaration.reasons.append(f"{document.code} {document.number}: " + _reason(check))
                    continue
                body = {"code": document.code, "number": document.number, "office": lodged.office, "items": [i.model_dump(exclude_none=True) for i in document.items]}
                reservation = await self._call(hub, declaration, "reserve", document.code, document.number, "POST", f"/v1/customs/declarations/{mrn}/reservations", json=body)
                if reservation.status == 200:
                    reserved.append(document)
                else:
                    declaration.reasons.append(f"{document.code} {document.number}: " + _reason(reservation))
            if declaration.reasons:
                for document in reserved:  # a refused declaration holds nothing
                    await self._clear(hub, declaration, document.code, document.number, "invalidated")
                declaration.status = "refused"
            else:
                declaration.status = "lodged"
        return JSONResponse(declaration.as_json(), status_code=201 if declaration.status == "lodged" else 409)

    async def decide(self, request: Request) -> JSONResponse:
        mrn, decision = request.path_params["mrn"], request.path_params["decision"]
        if decision not in ("release", "invalidate"):
            return JSONResponse({"error": "NotFound", "message": f"a declaration can be released or invalidated, not {decision!r}"}, status_code=404)
        declaration = self.declarations.get(mrn)
        if declaration is None:
            return JSONResponse({"error": "NotFound", "message": f"no declaration {mrn}", "where": "mrn"}, status_code=404)
        if declaration.status != "lodged":
            return JSONResponse({"error": "Conflict", "message": f"declaration {mrn} is {declaration.status}; only a lodged declaration can be {decision}d"}, status_code=409)
        clearance = "released" if decision == "release" else "invalidated"
        async with self._client() as hub:
            for document in declaration.documents:
                await self._clear(hub, declaration, document["code"], document["number"], clearance)
        declaration.status = clearance
        return JSONResponse(declaration.as_json())

    async def _clear(self, hub: httpx.AsyncClient, declaration: Declaration, code: str, number: str, clearance: str) -> Exchange:
        body = {"code": code, "number": number, "clearance": clearance, "office": declaration.office}
        return await self._call(hub, declaration, clearance, code, number, "POST", f"/v1/customs/declarations/{declaration.mrn}/clearance", json=body)

    async def _call(self, hub: httpx.AsyncClient, declaration: Declaration, step: str, code: str, number: str, method: str, url: str, **kwargs) -> Exchange:
        try:
            response = await hub.request(method, url, **kwargs)
            answer: Any = response.json() if response.content else None
            exchange = Exchange(step, code, number, response.status_code, answer)
        except httpx.HTTPError as exc:
            exchange = Exchange(step, code, number, 0, {"error": type(exc).__name__, "message": str(exc)})
        declaration.exchanges.append(exchange)
        return exchange

    async def list_declarations(self, request: Request) -> JSONResponse:
        return JSONResponse([d.as_json() for d in self.declarations.values()])

    async def show(self, request: Request) -> JSONResponse:
        declaration = self.declarations.get(request.path_params["mrn"])
        if declaration is None:
            return JSONResponse({"error": "NotFound", "message": f"no declaration {request.path_params['mrn']}"}, status_code=404)
        return JSONResponse(declaration.as_json())

    async def reset(self, request: Request) -> JSONResponse:
        self.declarations.clear()
        return JSONResponse({"reset": True})


def create_delta_sandbox(*, hub_url: str, api_key: str, transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    """The DELTA-G sandbox app: ``POST /declarations`` lodges, ``POST /declarations/{mrn}/release`` or
    ``/invalidate`` decides, ``GET /declarations[/{mrn}]`` shows the declarations and their exchanges."""
    sandbox = DeltaSandbox(hub_url=hub_url, api_key=api_key, transport=transport)
    app = Starlette(routes=[
        Route("/declarations", sandbox.lodge, methods=["POST"]),
        Route("/declarations", sandbox.list_declarations, methods=["GET"]),
        Route("/declarations/{mrn}", sandbox.show, methods=["GET"]),
        Route("/declarations/{mrn}/{decision:str}", sandbox.decide, methods=["POST"]),
        Route("/reset", sandbox.reset, methods=["POST"]),
    ])
    app.state.sandbox = sandbox
    return app


def _reason(exchange: Exchange) -> str:
    answer = exchange.answer if isinstance(exchange.answer, dict) else {}
    if exchange.status == 200 and answer.get("reasons"):
        return "; ".join(answer["reasons"])
    return answer.get("message") or f"the hub answered {exchange.status}"
