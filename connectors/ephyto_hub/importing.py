"""The import side of the ePhyto Hub connector: envelopes addressed to our NPPOs, listed, pulled, sorted, confirmed.

For each NPPO in ``import_nppos`` (calling with that NPPO's client certificate): ``GetImportEnvelopeHeaders`` lists
what the Hub holds until it is acknowledged, ``PULLSingleImportEnvelope`` fetches one envelope. Its Content sorts it:

* a certificate becomes an :class:`~hub.connector.InboundDocument` (``pull_documents``); it is acknowledged only
  by ``confirm_document`` once the broker has stored it, so one the broker never confirms is offered again;
* a country response (``rsm:SPSAcknowledgement``) becomes an :class:`~hub.connector.AckReport` handed over by
  ``poll_acks`` until the worker says it is recorded (``answers_recorded``); it is acknowledged to the Hub at the
  next ``poll_acks`` (or ``close``) after that. A store that fails, or a crash, in between leaves it to be read again.

Both ``pull_documents`` and ``poll_acks`` list the Hub: what one has pulled the other does not pull again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hub.connector import AckReport, InboundDocument, InboundOutcome, InboundVerdict
from connectors.ephyto_hub.responses import content_bytes, country_response_report, country_response_root
from hub.errors import DeliveryError, InputError, PermanentDeliveryError, TransientDeliveryError

log = logging.getLogger(__name__)

#: ``call(nppo, operation, **arguments)`` → the operation's result (the connector's SOAP call, errors typed).
Call = Callable[..., object]

_DEFAULT_WARNING = "accepted with warnings by the importing NPPO's system"
_DEFAULT_FAILURE = "refused by the importing NPPO's system"


@dataclass(frozen=True)
class HeldResponse:
    """A country response read from the Hub and not yet acknowledged to it."""

    nppo: str
    report: AckReport


class EnvelopeImporter:
    """What the connector's import side remembers between calls (in memory; the Hub keeps every unacknowledged
    envelope, so a restart only costs pulling again). Thread-safe: no lock is held during a call to the Hub."""

    def __init__(self, name: str, nppos: list[str], call: Call) -> None:
        self.name = name
        self.nppos = list(nppos)
        self._call = call
        self._documents: dict[str, str] = {}  # hubDeliveryNumber → NPPO, certificates not confirmed yet
        self._unoffered: dict[str, InboundDocument] = {}  # certificates pulled by poll_acks, for pull_documents
        self._responses: dict[str, HeldResponse] = {}  # read, not handed over yet
        self._handed_over: dict[str, HeldResponse] = {}  # handed over, to acknowledge to the Hub
        self._lock = threading.Lock()

    # --- documents --------------------------------------------------------------------------------------------

    def documents(self) -> Iterator[InboundDocument]:
        """Every certificate the Hub holds for our NPPOs, pulled one at a time. A failing call is logged and the
        sweep goes on; the first error is raised at the end when no document could be offered."""
        failures: list[DeliveryError] = []
        offered = 0
        for nppo, number, header in self._sweep(failures):
            with self._lock:
                if self._is_response(number):
                    continue
                document = self._unoffered.pop(number, None)
            document = document or self._pull(nppo, number, header, failures)
            if document is not None:
                offered += 1
                yield document
        if failures and not offered:
            raise failures[0]

    def confirm(self, document: InboundDocument, verdict: InboundVerdict) -> None:
        """Tell the Hub what became of ``document``: ``AcknowledgeEnvelopeReceipt`` (accepted),
        ``AdvancedAcknowledgeEnvelopeReceipt`` (with warnings) or ``AcknowledgeFailedEnvelopeReceipt`` (failed)."""
        number = document.counterpart_reference
        nppo = self._nppo_of(number)
        if verdict.outcome is InboundOutcome.ACCEPTED:
            self._call(nppo, "AcknowledgeEnvelopeReceipt", hubTrackingNumber=number)
        elif verdict.outcome is InboundOutcome.ACCEPTED_WITH_WARNINGS:
            self._call(nppo, "AdvancedAcknowledgeEnvelopeReceipt", hubTrackingNumber=number, warningMessage=verdict.reason or _DEFAULT_WARNING)
        else:
            self._call(nppo, "AcknowledgeFailedEnvelopeReceipt", hubTrackingNumber=number, message=verdict.reason or _DEFAULT_FAILURE)
        with self._lock:
            self._documents.pop(number, None)
            self._unoffered.pop(number, None)

    # --- country responses ------------------------------------------------------------------------------------

    def responses(self) -> tuple[list[AckReport], DeliveryError | None]:
        """The country responses read from the Hub and not recorded yet (every time until :meth:`recorded` says
        they are), with the first error met while sweeping, if any. Certificates met on the way are kept for
        :meth:`documents`, not pulled twice."""
        failures: list[DeliveryError] = []
        for nppo, number, header in self._sweep(failures):
            with self._lock:
                if number in self._documents or self._is_response(number):
                    continue
            document = self._pull(nppo, number, header, failures)
            if document is not None:
                with self._lock:
                    self._unoffered[number] = document
        with self._lock:
            held = list(self._responses.values())
        return [response.report for response in held], (failures[0] if failures else None)

    def recorded(self, reports: list[AckReport]) -> None:
        """The country responses among ``reports`` are recorded by the hub: they may be acknowledged to the Hub."""
        taken = {id(report) for report in reports}
        with self._lock:
            for number, response in list(self._responses.items()):
                if id(response.report) in taken:
                    self._handed_over[number] = self._responses.pop(number)

    def acknowledge_handed_over(self) -> None:
        """``AcknowledgeEnvelopeReceipt`` for every country response the hub has recorded (:meth:`recorded`). One the
        Hub refuses for good (acknowledged already, gone) is forgotten; one that fails for now is tried next time."""
        with self._lock:
            handed_over = list(self._handed_over.items())
        for number, response in handed_over:
            try:
                self._call(response.nppo, "AcknowledgeEnvelopeReceipt", hubTrackingNumber=number)
            except TransientDeliveryError as exc:
                log.warning("%s: acknowledging country response %s failed, will try again: %s", self.name, number, exc)
                continue
            except PermanentDeliveryError as exc:
                log.warning("%s: the Hub refused the acknowledgement of country response %s: %s", self.name, number, exc)
            with self._lock:
                self._handed_over.pop(number, None)

    # --- internals --------------------------------------------------------------------------------------------

    def _sweep(self, failures: list[DeliveryError]) -> Iterator[tuple[str, str, object]]:
        """(NPPO, hubDeliveryNumber, header) of every envelope listed for our NPPOs; failed listings go to ``failures``."""
        for nppo in self.nppos:
            try:
                listed = self._listed(nppo)
            except DeliveryError as exc:
                log.warning("%s: listing the envelopes for %s failed: %s", self.name, nppo, exc)
                failures.append(exc)
                continue
            for number, header in listed.items():
                yield nppo, number, header

    def _pull(self, nppo: str, number: str, header, failures: list[DeliveryError]) -> InboundDocument | None:
        try:
            return self._read(nppo, number, header)
        except DeliveryError as exc:
            log.warning("%s: pulling envelope %s for %s failed: %s", self.name, number, nppo, exc)
            failures.append(exc)
            return None

    def _is_response(self, number: str) -> bool:
        # Called with the lock held.
        return number in self._responses or number in self._handed_over

    def _listed(self, nppo: str) -> dict[str, object]:
        # countryCode "" as the production client sends it (FACTS.md §3): the Hub knows the NPPO by its certificate.
        headers = self._call(nppo, "GetImportEnvelopeHeaders", countryCode="") or []
        # A Hub lists only the caller's envelopes; over one shared client (tests, one configured certificate) the
        # list may hold other NPPOs' too.
        listed = {h.hubDeliveryNumber: h for h in headers if h is not None and h.hubDeliveryNumber and h.To == nppo}
        with self._lock:
            for number in [n for n, owner in self._documents.items() if owner == nppo and n not in listed]:
                self._documents.pop(number, None)
                self._unoffered.pop(number, None)
        return listed

    def _read(self, nppo: str, number: str, header) -> InboundDocument | None:
        """Pull envelope ``number``; a certificate is returned (and remembered), a country response is held for
        ``poll_acks``. An unreadable country response is acknowledged as failed at once: nothing can take it."""
        envelope = self._call(nppo, "PULLSingleImportEnvelope", hubTrackingNumber=number)
        if envelope is None:
            log.warning("%s: the Hub listed envelope %s for %s but returned none", self.name, number, nppo)
            return None
        payload = content_bytes(getattr(envelope, "Content", None))
        sender = getattr(envelope, "From", None) or header.From
        root = country_response_root(payload)
        if root is None:
            with self._lock:
                self._documents[number] = nppo
            return InboundDocument(payload=payload, counterpart_reference=number, sender_country=sender)
        try:
            report = country_response_report(
                root, payload, header_certificate_number=getattr(envelope, "NPPOCertificateNumber", None) or header.NPPOCertificateNumber,
                country=sender,
            )
        except InputError as exc:
            log.warning("%s: country response %s from %s is unreadable: %s", self.name, number, sender, exc)
            self._call(nppo, "AcknowledgeFailedEnvelopeReceipt", hubTrackingNumber=number, message=f"unreadable SPSAcknowledgement: {exc}")
            return None
        with self._lock:
            self._responses.setdefault(number, HeldResponse(nppo, report))
        return None

    def _nppo_of(self, number: str) -> str:
        with self._lock:
            nppo = self._documents.get(number)
        if nppo is not None:
            return nppo
        if len(self.nppos) == 1:
            return self.nppos[0]
        raise PermanentDeliveryError(
            f"{self.name}: envelope {number} was not pulled by this connector: which NPPO's certificate acknowledges it is unknown"
        )

