"""Documents received from abroad (the import side): verify the signature, validate, store, hand on.

A counterpart's document is taken only signed by an authority the trust store knows; it is validated like a
submission, stored for its importing country (the tenant that receives it) with ``direction = inbound``, and handed
on to the destinations the routing table's ``direction: inbound`` rules name, as the very bytes received. The
verdict (accepted, accepted with warnings, failed with the reason) goes back to the counterpart only once the document
is stored.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from hub.scope import ALL_TENANTS
from hub.connector import InboundOutcome, InboundVerdict
from hub.intake.submission import Prepared, prepare
from hub.errors import HubError, InputError, SignatureMissing
from hub.routing import RoutingTable
from hub.signing import SignerRegistry, Verifier
from hub.report import Finding
from hub.namespaces import XMLDSIG
from hub.xmlsafe import parse_xml

#: Findings quoted back to the counterpart in a verdict (the full report stays in the hub).
_QUOTED = 3


def prepare_inbound(body: bytes, *, routing: RoutingTable, verifier: Verifier, origin: dict | None = None, now: datetime | None = None, vouched_by: str | None = None,
                    signers: SignerRegistry | None = None) -> Prepared:
    """Verify and validate a received document and route it inbound. Raises
    :class:`~hub.errors.SignatureError` (unsigned, or not signed by a trusted authority),
    :class:`~hub.errors.ValidationFailed` or :class:`~hub.errors.InputError` (no importing country to receive it).

    ``vouched_by`` names the connector whose authenticated channel stands for a document its counterpart signs no XML
    of (TRACES-NT's EU-Intra certificates): such a document may come unsigned; a signature it carries is checked."""
    root = parse_xml(body, source="received document")
    if root.find(f".//{{{XMLDSIG}}}Signature") is None and not vouched_by:
        raise SignatureMissing("a document received from a counterpart must be signed by its issuing authority")
    prepared = prepare(body, "application/xml", tenant=ALL_TENANTS, routing=routing, profiles={}, signer_for=_never_sign, verifier=verifier, now=now,
                       direction="inbound", vouched_by=vouched_by, signers=signers)
    if not prepared.facts.importing_country:
        raise InputError("the document names no importing country, so no authority here can receive it", where="rsm:SPSConsignment/ram:ImportSPSCountry/ram:ID")
    return replace(prepared, origin=dict(origin or {}))


def verdict_for(prepared: Prepared, document_id: str) -> InboundVerdict:
    """Accepted, or accepted with the validation warnings quoted."""
    warnings = prepared.report.warnings
    if warnings:
        return InboundVerdict(InboundOutcome.ACCEPTED_WITH_WARNINGS, reason=_quote(warnings), document_id=document_id)
    return InboundVerdict(InboundOutcome.ACCEPTED, document_id=document_id)


#: How a refusal is worded for the counterpart, by refusal code (the error's own text otherwise).
_REASONS = {
    "INVALID": lambda exc: "invalid: " + _quote(exc.report.severe),
    "SIGNATURE_REFUSED": lambda exc: f"signature refused: {exc}",
    "DUPLICATE": lambda exc: "a different document with this number and status was received before",
}


def refusal(exc: HubError) -> InboundVerdict:
    """The failed verdict for a document the hub cannot take, naming what is wrong and where; its ``refusal`` code
    is the one the error declares."""
    return InboundVerdict(InboundOutcome.FAILED, reason=_REASONS.get(exc.refusal, str)(exc), refusal=exc.refusal)


def _never_sign(country: str):
    raise AssertionError("a received document is forwarded as its issuer signed it, never re-signed")


def _quote(findings: list[Finding]) -> str:
    quoted = "; ".join(f"{f.xpath}: {f.message_en}" for f in findings[:_QUOTED])
    more = f" (and {len(findings) - _QUOTED} more)" if len(findings) > _QUOTED else ""
    return quoted + more
