"""What every sandbox shares to play a misbehaving counterpart: the queued-fault control model, the queue, a
``Retry-After`` header and an answer cut half-way.

Each sandbox keeps its own ``Control`` (a subclass of :class:`FaultControl` naming the faults and targets it knows)
and its own fault answers, which speak its protocol (a problem document, a SOAP fault, an HTML error page).
"""

from __future__ import annotations

import math
from typing import Callable, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

#: The faults every sandbox plays; a sandbox may add its own (``fault``, ``soap_fault``).
COMMON_FAULTS = ("unavailable", "server_error", "slow", "malformed", "drop", "refuse", "none")


class FaultControl(BaseModel):
    """The fault part of what a sandbox's ``POST …/control`` accepts: ``fault`` is queued for the next ``count``
    requests (``"none"`` clears the queue); ``retry_after`` goes in the ``Retry-After`` of ``unavailable``;
    ``seconds`` is how long ``slow`` waits. Subclasses narrow ``fault`` to the faults they play."""

    model_config = ConfigDict(extra="forbid")

    fault: str | None = None
    count: int = Field(default=1, ge=1)
    retry_after: float | str | None = None
    seconds: float = Field(default=1.0, ge=0)


Control = TypeVar("Control", bound=FaultControl)


def queue_fault(faults: list[Control], control: Control) -> None:
    """Apply ``control``'s fault to the queue: ``"none"`` clears it, any other fault joins it."""
    if control.fault == "none":
        faults.clear()
    elif control.fault is not None:
        faults.append(control)


def take_fault(faults: list[Control], target: str | None = None) -> Control | None:
    """The queued fault for the next request (the first aimed at ``target``, when given), counted down and dropped
    when used up; None when nothing is queued."""
    for index, fault in enumerate(faults):
        if target is None or fault.target == target:
            if fault.count <= 1:
                del faults[index]
            else:
                faults[index] = fault.model_copy(update={"count": fault.count - 1})
            return fault
    return None


def retry_after_headers(value: float | str | None, *, seconds: Callable[[float], int] = math.ceil) -> dict[str, str]:
    """The ``Retry-After`` header for ``value`` (a string as it is, a number rounded by ``seconds``); none for None."""
    if value is None:
        return {}
    return {"Retry-After": value if isinstance(value, str) else str(seconds(value))}


class DroppedResponse(Response):
    """Starts an answer with ``partial`` and stops half-way: servers close the connection, clients see it cut."""

    def __init__(self, partial: bytes) -> None:
        super().__init__()
        self.partial = partial

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": self.partial, "more_body": True})
