"""Business rules and code-list checks over a CITES permit record (issue 5), each a named rule with its English and
French messages. The simplified re-export procedure's rules need the approvals and the permit's history; they come
with the permit lifecycle.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from hub.records.cites import CITESPermit, PermitKind
from hub.codelists import load_cites_code_list
from hub.report import Area, Severity
from hub.validation.ruleset import RuleContext, RuleSet

CITES_RULES = RuleSet("CITES permits")
rule = CITES_RULES.rule
M, B, C = Area.MANDATORY_ELEMENTS, Area.BUSINESS_RULE, Area.CODE_LIST
S, W = Severity.SEVERE, Severity.WARNING

#: Export permits and re-export certificates are valid at most six months from issue (Convention, Art. VI.2).
VALIDITY_MONTHS = 6
_SIX_MONTH_KINDS = (PermitKind.CITES_EXPORT, PermitKind.CITES_REEXPORT)


def _blank(value: object) -> bool:
    return value is None or str(getattr(value, "value", value)).strip() == ""


def _permit(ctx: RuleContext) -> CITESPermit:
    return ctx.record


@rule("CITES-PERMIT-NUMBER", S, M, "the permit has no number (Box 1)", "le permis n'a pas de numéro (case 1)")
def _permit_number(ctx: RuleContext):
    if _blank(_permit(ctx).permit_number):
        yield "permit_number", {}


@rule("CITES-VALIDITY-END", S, M, "the permit has no last day of validity (Box 2)", "le permis n'a pas de date de fin de validité (case 2)")
def _validity_end(ctx: RuleContext):
    permit = _permit(ctx)
    if permit.validity is None or _blank(permit.validity.end):
        yield "validity.end", {}


@rule(
    "CITES-VALIDITY-6M", S, B,
    "an export permit or re-export certificate is valid at most 6 months: {start} to {end}",
    "un permis d'exportation ou un certificat de réexportation est valable 6 mois au plus : du {start} au {end}",
)
def _validity_six_months(ctx: RuleContext):
    permit = _permit(ctx)
    if permit.kind not in _SIX_MONTH_KINDS or permit.validity is None or _blank(permit.validity.end):
        return
    first = permit.validity.start if not _blank(permit.validity.start) else permit.issue_date_time
    if _blank(first):
        return
    start, end = _aware(first.as_datetime()), _aware(permit.validity.end.as_datetime())
    if end > _months_after(start, VALIDITY_MONTHS):
        yield "validity.end", {"start": first.value, "end": permit.validity.end.value}


@rule(
    "CITES-COUNTRIES-DIFFER", S, B,
    "the importing and the exporting country are both {country}",
    "le pays d'importation et le pays d'exportation sont tous deux {country}",
)
def _countries_differ(ctx: RuleContext):
    permit = _permit(ctx)
    exporting, importing = permit.exporting_country(), permit.importing_country()
    if exporting and importing and exporting == importing:
        yield "consignment.consignee.address.country_id", {"country": importing}


@rule(
    "CITES-REEXPORT-ORIGIN", S, B,
    "a re-export certificate names the country of origin and its permit (Box 12): {missing} missing",
    "un certificat de réexportation indique le pays d'origine et son permis (case 12) : {missing_fr} absent",
)
def _reexport_origin(ctx: RuleContext):
    permit = _permit(ctx)
    if permit.kind is not PermitKind.CITES_REEXPORT:
        return
    for index, item in enumerate(permit.consignment.items):
        if item.origin_country is None or _blank(item.origin_country.id):
            yield f"consignment.items[{index}].origin_country", {"missing": "country of origin", "missing_fr": "pays d'origine"}
        if item.origin_permit is None or _blank(item.origin_permit.id):
            yield f"consignment.items[{index}].origin_permit", {"missing": "origin permit number", "missing_fr": "numéro du permis d'origine"}


@rule(
    "CITES-QUANTITY", S, B,
    "the quantity (Box 11) must be a positive number with its unit: {quantity}",
    "la quantité (case 11) doit être un nombre positif avec son unité : {quantity}",
)
def _quantity(ctx: RuleContext):
    permit = _permit(ctx)
    procedure = permit.simplified_procedure
    # Simplified re-export procedure: the quantity may be blank at issue, and is required once reported at the sale.
    blank_allowed = procedure is not None and _blank(procedure.sale_date)
    for index, item in enumerate(permit.consignment.items):
        quantity = item.quantity
        if quantity is None and blank_allowed:
            continue
        value = quantity.value.strip() if quantity is not None else ""
        if not value or Decimal(value) <= 0 or _blank(quantity.unit):
            shown = f"{value or '(none)'} {quantity.unit or '(no unit)'}" if quantity is not None else "(none)"
            yield f"consignment.items[{index}].quantity", {"quantity": shown}


@rule("CITES-SPECIES", S, M, "the specimen has no scientific name (Box 7)", "le spécimen n'a pas de nom scientifique (case 7)")
def _species(ctx: RuleContext):
    for index, item in enumerate(_permit(ctx).consignment.items):
        if _blank(item.scientific_name):
            yield f"consignment.items[{index}].scientific_name", {}


@rule("CITES-LINES", S, M, "the permit lists no specimen (Boxes 7 to 12b)", "le permis ne mentionne aucun spécimen (cases 7 à 12b)")
def _lines(ctx: RuleContext):
    if not _permit(ctx).consignment.items:
        yield "consignment.items", {}


def _code_rule(code: str, severity: Severity, list_id: str, field: str, what_en: str, what_fr: str, box: str) -> None:
    """A rule: each line's (or the permit's) ``field`` is present and in the CITES code list ``list_id``."""

    @rule(code, severity, C, f"{{value}} is not a CITES {what_en} ({box})", f"{{value}} n'est pas un {what_fr} CITES ({box})")
    def check(ctx: RuleContext):
        codes = load_cites_code_list(list_id)
        permit = _permit(ctx)
        places = [(field, getattr(permit, field))] if field == "purpose_code" else [
            (f"consignment.items[{i}].{field}", getattr(item, field)) for i, item in enumerate(permit.consignment.items)
        ]
        for path, value in places:
            text = str(getattr(value, "value", value) or "").strip()
            if text not in codes:
                yield path, {"value": repr(text) if text else "(nothing)"}


_code_rule("CITES-APPENDIX", S, "CITESAppendix", "appendix", "Appendix (I, II or III)", "annexe (I, II ou III)", "Box 10")
_code_rule("CITES-SOURCE", S, "CITESSource", "source", "source code", "code de source", "Box 10")
_code_rule("CITES-PURPOSE", S, "CITESPurpose", "purpose_code", "purpose code", "code de but de la transaction", "Box 5a")
_code_rule("CITES-TERM", W, "CITESTerm", "term_code", "term code", "code de description des spécimens", "Box 9")


def _aware(moment: datetime) -> datetime:
    # A date alone (or a time without offset) is read as UTC, so that it compares with one that has an offset.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _months_after(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months (the last day of a shorter month when the day does not exist)."""
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    for day in (moment.day, 30, 29, 28):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")
