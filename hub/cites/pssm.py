"""The French simplified re-export procedure (PSSM) in the store: approvals, the approval check at submission, and the
completion of a certificate at the sale.

An approval (``cites_approvals``) holds for one entity (an account, or one of its sub-accounts) and one specimen code,
for a period. A re-export certificate issued under it (``simplified_procedure`` in its record) may leave the importer,
the country of import, the quantities and the descriptions blank; at the sale the holder reports them
(:func:`completed_record`), and the completed record is stored as the next version of the permit, whose lifecycle
becomes *completed*. A box filled at issue never changes: :func:`changed_boxes` names every one a completion would
change, and the completion is then refused and flagged as a possible fraud (:func:`flag_fraud`). A completion
reported more than :data:`REPORTING_DELAY` after the sale is accepted with an alert (:func:`late_finding`).

The rules themselves are in :mod:`hub.validation.pssm_rules`; this module brings them the store.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.scope import Scope
from hub.acks.nonconformities import open_non_conformity
from hub.errors import ConflictError, InputError, RecordError, ValidationFailed
from hub.mapping.cites_permit import permit_from_data
from hub.records.cites import CITESPermit, PermitKind
from hub.records.lifecycle import Lifecycle
from hub.records.values import DateTime
from hub.store.models import CITESApproval, Document, NonConformity, utcnow
from hub.store.trace import add_event
from hub.validation.pssm_rules import Approval, approval_findings
from hub.report import Area, Finding, Severity, ValidationReport

#: The holder reports the blank boxes within 24 hours of the sale; later, the completion is accepted with an alert.
REPORTING_DELAY = timedelta(hours=24)
#: How a changed box is flagged: the non-conformity's source and cause.
FRAUD_SOURCE = "fraud_suspected"
BOX_CHANGED = "PSSM-BOX-CHANGED"


# --- approvals ------------------------------------------------------------------------------------------------------


def approval_of(row: CITESApproval) -> Approval:
    """The rules' view of a stored approval."""
    return Approval(
        number=row.approval_number,
        holder_account=row.holder_account,
        holder_sub_account=row.holder_sub_account,
        specimen_code=row.specimen_code,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
    )


def create_approval(
    session: Session,
    *,
    tenant: str,
    approval_number: str,
    holder_account: str,
    specimen_code: str,
    valid_from: datetime,
    holder_sub_account: str | None = None,
    valid_until: datetime | None = None,
) -> CITESApproval:
    """Record an approval of ``tenant`` (in the caller's transaction). A number the tenant already has is a
    :class:`ConflictError`; a period that ends before it starts an :class:`InputError`."""
    if valid_until is not None and _utc(valid_until) < _utc(valid_from):
        raise InputError("an approval cannot end before it starts", where="valid_until")
    if find_approval_row(session, tenant=tenant, number=approval_number) is not None:
        raise ConflictError(f"approval {approval_number} exists already for {tenant}", where="approval_number")
    row = CITESApproval(
        tenant=tenant,
        approval_number=approval_number,
        holder_account=holder_account,
        holder_sub_account=holder_sub_account or None,
        specimen_code=specimen_code,
        valid_from=valid_from,
        valid_until=valid_until,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def list_approvals(session: Session, *, tenant: str) -> Sequence[CITESApproval]:
    """The approvals of ``tenant`` (every tenant's for ``*``), by number."""
    query = select(CITESApproval).order_by(CITESApproval.tenant, CITESApproval.approval_number)
    query = Scope.of(tenant).restrict(query, CITESApproval.tenant)
    return session.scalars(query).all()


def find_approval_row(session: Session, *, tenant: str, number: str) -> CITESApproval | None:
    return session.scalars(select(CITESApproval).where(CITESApproval.tenant == tenant, CITESApproval.approval_number == number)).first()


def check_approval(session: Session, permit: object, *, tenant: str, report: ValidationReport, now: datetime | None = None) -> None:
    """At submission, in its transaction: the approval a simplified-procedure certificate names exists for the
    issuing ``tenant``, is in force at issue, and is the re-exporter's and the lines' (the approval rules). Their
    findings join ``report``; a SEVERE one raises :class:`ValidationFailed` with it. Nothing for other documents."""
    if not isinstance(permit, CITESPermit) or permit.simplified_procedure is None:
        return
    row = find_approval_row(session, tenant=tenant, number=permit.simplified_procedure.approval_number)
    findings = approval_findings(permit, approval_of(row) if row is not None else None, tenant=tenant, now=now)
    if findings:
        report.extend(f for f in findings if f not in report.findings)  # checked again when its batch is retried alone
        if not report.valid:
            raise ValidationFailed(report)


# --- completion -----------------------------------------------------------------------------------------------------


@dataclass
class Completion:
    """What the holder reports at the sale: the date, the importer (with address and country) and, line by line in
    the permit's order, the quantity and the description."""

    sale_date: str
    consignee: dict[str, Any] | None = None
    items: list[dict[str, Any]] | None = None


def completable(document: Document) -> CITESPermit:
    """The permit record of ``document`` if it is a simplified-procedure re-export certificate still issued (the
    latest version; the caller checks that); a :class:`ConflictError` otherwise."""
    if document.kind != PermitKind.CITES_REEXPORT.value or document.direction != "outbound":
        raise ConflictError(f"document {document.id} is not a re-export certificate issued here; only those are completed", where="kind")
    permit = permit_from_data(document.record)
    if permit.simplified_procedure is None:
        raise ConflictError(f"re-export certificate {document.certificate_number} is not issued under the simplified procedure; it has nothing to complete", where="simplified_procedure")
    if document.lifecycle != Lifecycle.ISSUED.value:
        raise ConflictError(f"re-export certificate {document.certificate_number} is {document.lifecycle}; only an issued certificate is completed", where="lifecycle")
    return permit


def latest_version(session: Session, document: Document) -> Document:
    """The newest version of ``document``'s certificate (same issuing country, kind, number and status)."""
    return session.scalars(
        select(Document)
        .where(Document.issuing_country == document.issuing_country, Document.kind == document.kind, Document.certificate_number == document.certificate_number, Document.status == document.status)
        .order_by(Document.version.desc())
        .limit(1)
    ).one()


def completed_record(issued: CITESPermit, completion: Completion, *, now: datetime | None = None) -> CITESPermit:
    """The issued record with the boxes reported at the sale: the importer merged into Box 3, each line's quantity
    and description into its line, and the sale date into ``simplified_procedure``. A completion naming more lines
    than the permit has, a sale date that is not a date or is in the future, raise :class:`InputError`."""
    sale = _sale_moment(completion.sale_date)
    if sale > (now or utcnow()) + timedelta(minutes=5):
        raise InputError(f"the sale date {completion.sale_date} is in the future", where="sale_date")
    record = _dump(issued)
    consignment = record.setdefault("consignment", {})
    if completion.consignee is not None:
        consignment["consignee"] = _merge(consignment.get("consignee"), completion.consignee)
    lines = consignment.setdefault("items", [])
    reported = completion.items or []
    if len(reported) > len(lines):
        raise InputError(f"the completion gives {len(reported)} lines; the certificate has {len(lines)}", where="items")
    for line, boxes in zip(lines, reported):
        for key, value in boxes.items():
            if value is not None:
                line[key] = _merge(line.get(key), value)
    record["simplified_procedure"] = {**record["simplified_procedure"], "sale_date": completion.sale_date}
    try:
        return permit_from_data(record)
    except RecordError as exc:
        raise InputError("; ".join(f"{p.path}: {p.message}" for p in exc.problems), where=exc.problems[0].path if exc.problems else None) from None


def changed_boxes(issued: CITESPermit, completed: CITESPermit) -> list[str]:
    """The field paths of every box ``issued`` had filled that ``completed`` changes or empties."""
    after = dict(_leaves(_dump(completed)))
    return [path for path, value in _leaves(_dump(issued)) if not _empty(value) and after.get(path) != value]


def late_finding(completed: CITESPermit, *, now: datetime | None = None) -> Finding | None:
    """A WARNING when the completion comes more than :data:`REPORTING_DELAY` after the sale, else None."""
    sale = _sale_moment(completed.simplified_procedure.sale_date.value)
    now = now or utcnow()
    if now - sale <= REPORTING_DELAY:
        return None
    hours = int((now - sale).total_seconds() // 3600)
    return Finding(
        xpath="simplified_procedure.sale_date",
        field="simplified_procedure.sale_date",
        rule="PSSM-COMPLETION-LATE",
        severity=Severity.WARNING,
        area=Area.BUSINESS_RULE,
        message_en=f"the boxes were reported {hours} hours after the sale ({completed.simplified_procedure.sale_date.value}); they are due within 24 hours",
        message_fr=f"les cases ont été renseignées {hours} heures après la vente ({completed.simplified_procedure.sale_date.value}) ; elles doivent l'être dans les 24 heures",
    )


def flag_fraud(session: Session, document: Document, fields: list[str], *, actor: str, country: str | None = None) -> NonConformity:
    """Flag a completion that tried to change boxes filled at issue: a ``permit.fraud_suspected`` trace event and a
    non-conformity (source ``fraud_suspected``, cause ``PSSM-BOX-CHANGED``), in the caller's transaction."""
    nc = open_non_conformity(
        session, document=document, source=FRAUD_SOURCE, counterpart="hub", cause_code=BOX_CHANGED, actor=actor,
        cause_text="boxes filled at issue changed at completion: " + ", ".join(fields), country=country,
    )
    add_event(session, document=document, event="permit.fraud_suspected", actor=actor, detail={"fields": fields, "non_conformity": nc.id})
    return nc


def _dump(permit: CITESPermit) -> dict[str, Any]:
    return copy.deepcopy(permit.model_dump(mode="json", exclude_none=True))


def _merge(old: Any, new: Any) -> Any:
    """``new`` laid over ``old``: objects merged key by key, anything else replaced."""
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for key, value in new.items():
            merged[key] = _merge(old.get(key), value)
        return merged
    return copy.deepcopy(new)


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _sale_moment(text: str) -> datetime:
    try:
        moment = DateTime(value=text).as_datetime()
    except (ValueError, TypeError) as exc:
        raise InputError(f"the sale date {text!r} is not a date or date-time: {exc}", where="sale_date") from None
    return _utc(moment)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
