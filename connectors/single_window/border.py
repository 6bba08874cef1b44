"""The sandbox's border: every certificate the window received, each with its timeline of tracking events, and one
sequence numbering every event of the window. Pure state, no I/O: :mod:`connectors.single_window.sandbox` serves it.

A received certificate gets ``received`` then ``documentary_check`` at once; a :class:`Decision` (``POST /decision``,
or the automatic one ``POST /control`` sets) appends a check, ``under_measures``, or the final ``released`` /
``refused``. Nothing follows a final event. A caller sees only the events of the certificates it sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.single_window.protocol import GLOSA_MAX, timestamp
from connectors.single_window.tracking import FINAL_EVENTS, EventCode, RefusalMeasure, TrackingEvent

#: ``CodigoMotivo`` (our XSD): 1–35 of these characters.
REASON_CODE_PATTERN = r"^[A-Za-z0-9_.:\-]{1,35}$"
DEFAULT_LIMIT = 100


class Decision(BaseModel):
    """What ``POST /decision`` accepts: the certificate (its ``transaction_id``, the ``IDdeTransaccion`` it came
    under, or its ``certificate_number``: the latest received with that number) and the ``event`` to append.
    ``refused`` needs ``reason_code`` and ``reason_text``; ``measure`` goes with ``refused`` only."""

    model_config = ConfigDict(extra="forbid")

    transaction_id: str | None = None
    certificate_number: str | None = None
    event: Literal["identity_check", "physical_check", "under_measures", "released", "refused"]
    reason_code: str | None = Field(default=None, pattern=REASON_CODE_PATTERN)
    reason_text: str | None = Field(default=None, max_length=GLOSA_MAX)
    measure: Literal["refoulement", "destruction", "re_export"] | None = None

    @model_validator(mode="after")
    def _refusal_has_reason(self) -> "Decision":
        if self.event == "refused" and not (self.reason_code and self.reason_text):
            raise ValueError("a refusal needs reason_code and reason_text")
        if self.measure is not None and self.event != "refused":
            raise ValueError("measure goes with a refusal only")
        return self


class BorderError(Exception):
    """A decision the border cannot take: ``status`` is the HTTP status the control endpoint answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Lodged:
    """A certificate the window received (``RCB``): what its events repeat, who sent it (``sender_country``, the only
    caller that sees its events) and whose border controls it."""

    transaction_id: str
    receipt_id: str
    document_type: str
    certificate_number: str
    sender_country: str
    control_country: str


@dataclass
class _Logged:
    owner: str
    event: TrackingEvent


@dataclass
class Border:
    """Every received certificate and every event, in sequence order."""

    lodged: dict[str, Lodged] = field(default_factory=dict)
    log: list[_Logged] = field(default_factory=list)

    def lodge(self, lodged: Lodged, *, automatic: Decision | None = None) -> list[TrackingEvent]:
        """Take a received certificate: ``received`` and ``documentary_check`` now, then ``automatic`` if given."""
        self.lodged[lodged.transaction_id] = lodged
        events = [self._append(lodged, EventCode.RECEIVED), self._append(lodged, EventCode.DOCUMENTARY_CHECK)]
        if automatic is not None:
            events.append(self._decide(lodged, automatic))
        return events

    def record(self, decision: Decision) -> TrackingEvent:
        """Append ``decision`` to its certificate's timeline. Raises :class:`BorderError`: 400 without a
        certificate, 404 for one never received, 409 after a final event."""
        return self._decide(self._find(decision), decision)

    def timeline(self, transaction_id: str) -> list[TrackingEvent]:
        """The events of one certificate, in order."""
        return [logged.event for logged in self.log if logged.event.transaction_id == transaction_id]

    def after(self, caller: str, sequence: int, limit: int | None = None) -> tuple[list[TrackingEvent], bool]:
        """``caller``'s events after ``sequence``, at most ``limit``, and whether more follow."""
        mine = [logged.event for logged in self.log if logged.owner == caller and logged.event.sequence > sequence]
        limit = limit or DEFAULT_LIMIT
        return mine[:limit], len(mine) > limit

    def _find(self, decision: Decision) -> Lodged:
        if decision.transaction_id:
            found = self.lodged.get(decision.transaction_id)
        elif decision.certificate_number:
            found = next((lodged for lodged in reversed(self.lodged.values())
                          if lodged.certificate_number == decision.certificate_number), None)
        else:
            raise BorderError(400, "name the certificate: transaction_id or certificate_number")
        if found is None:
            raise BorderError(404, "no certificate received under that reference")
        return found

    def _decide(self, lodged: Lodged, decision: Decision) -> TrackingEvent:
        done = [event for event in self.timeline(lodged.transaction_id) if event.code in FINAL_EVENTS]
        if done:
            raise BorderError(409, f"certificate {lodged.certificate_number} was already {done[0].code.label}")
        measure = RefusalMeasure[decision.measure.upper()] if decision.measure else None
        return self._append(lodged, EventCode.named(decision.event), reason_code=decision.reason_code,
                            reason_text=decision.reason_text, measure=measure)

    def _append(self, lodged: Lodged, code: EventCode, **reason) -> TrackingEvent:
        event = TrackingEvent(
            sequence=len(self.log) + 1, transaction_id=lodged.transaction_id, receipt_id=lodged.receipt_id,
            document_type=lodged.document_type, certificate_number=lodged.certificate_number,
            control_country=lodged.control_country, code=code, occurred_at=timestamp(), **reason,
        )
        self.log.append(_Logged(lodged.sender_country, event))
        return event
