"""``GET /v1/connectors``: each destination with its health (last success, backlog, dead letters, error rate)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from hub.api.auth import caller, Client
from hub.api.deps import get_broker, read_session
from hub.broker import Broker
from hub.notify.health import destination_health

router = APIRouter(prefix="/v1/connectors", tags=["connectors"])


@router.get("")
def connectors(_client: Client = Depends(caller), broker: Broker = Depends(get_broker), session: Session = Depends(read_session)) -> dict:
    """The configured destinations and how their deliveries go (error rate over the last hour)."""
    kinds = {name: connector.config.type for name, connector in broker.connectors.items()}
    return {"items": [row.as_json() for row in destination_health(session, kinds)]}
