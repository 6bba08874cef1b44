"""Business rules and code-list checks over a parsed SPS certificate.

Each rule has a stable code, a severity and a message in English and French; it yields one finding per place it
fails, located by the record field and the XPath that field was read from. Rules see the record only (parsing has
already turned the XML into one), so the same rules serve documents from issuing systems and from abroad.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Iterator, Literal, get_args, get_origin

from pydantic import BaseModel

from hub.mapping.engine import FieldLocations
from hub.records.sps import DocumentKind, Note, SPSCertificateRecord
from hub.records.values import DateTime, Measure, Text
from hub.codelists import load_code_list
from hub.report import Area, Finding, Severity
from hub.validation.ruleset import RuleContext, RuleSet


class SPSRuleContext(RuleContext):
    """What an SPS rule sees (see :class:`~hub.validation.ruleset.RuleContext`), and whether it is an ePhyto."""

    @property
    def is_ephyto(self) -> bool:
        return self.record.kind in (DocumentKind.PHYTOSANITARY, DocumentKind.PHYTOSANITARY_REEXPORT)


SPS_RULES = RuleSet("SPS certificates", context=SPSRuleContext)
RULES = SPS_RULES.rules
rule = SPS_RULES.rule


def run_rules(record: SPSCertificateRecord, xpath_of: FieldLocations, *, now: datetime | None = None) -> list[Finding]:
    """Every finding of every SPS rule on ``record``."""
    return SPS_RULES.run(record, xpath_of, now=now)


# ------------------------------------------------------------------------------------------- mandatory elements

M, S, W = Area.MANDATORY_ELEMENTS, Severity.SEVERE, Severity.WARNING


def _blank(value: object) -> bool:
    return value is None or str(getattr(value, "value", value)).strip() == ""


@rule("BR-DOCUMENT-KIND", W, M, "{what} is no SPS document kind the hub knows; it is carried as it came",
      "{what_fr} n'est pas un type de document SPS connu du hub ; il est transmis tel quel")
def _document_kind(ctx: SPSRuleContext):
    if ctx.record.kind is DocumentKind.OTHER:
        code = ctx.record.type_code.value if ctx.record.type_code else None
        what = f"UNCL 1001 code {code}" if code else "a document without TypeCode"
        what_fr = f"le code UNCL 1001 {code}" if code else "un document sans TypeCode"
        yield "type_code", {"what": what, "what_fr": what_fr}


@rule("BR-STATUS", S, M, "the document has no status code (ram:StatusCode) the hub knows{detail}", "le document n'a pas de code de statut (ram:StatusCode) connu du hub{detail_fr}")
def _status(ctx: SPSRuleContext):
    if ctx.record.status is None:
        code = ctx.record.status_code.value if ctx.record.status_code else None
        yield ("status_code" if code else "status"), {"detail": f": {code} is no UNCL 4405 status the hub handles" if code else "",
                                                      "detail_fr": f" : {code} n'est pas un statut UNCL 4405 que le hub traite" if code else ""}


@rule("BR-CERTIFICATE-NUMBER", S, M, "the certificate has no number (ram:ID)", "le certificat n'a pas de numéro (ram:ID)")
def _certificate_number(ctx: SPSRuleContext):
    if _blank(ctx.record.certificate_number) and ctx.record.kind is not DocumentKind.CHED:
        yield "certificate_number", {}


@rule("BR-ISSUE-DATE", S, M, "the certificate has no issue date", "le certificat n'a pas de date de délivrance")
def _issue_date(ctx: SPSRuleContext):
    if _blank(ctx.record.issue_date_time):
        yield "issue_date_time", {}


@rule("BR-EPHYTO-CONSIGNOR", S, M, "an ePhyto needs a consignor with a name", "un ePhyto exige un expéditeur nommé")
def _consignor(ctx: SPSRuleContext):
    party = ctx.record.consignment.consignor
    if ctx.is_ephyto and (party is None or _blank(party.name)):
        yield "consignment.consignor", {}


@rule("BR-EPHYTO-CONSIGNEE", S, M, "an ePhyto needs a consignee with a name", "un ePhyto exige un destinataire nommé")
def _consignee(ctx: SPSRuleContext):
    party = ctx.record.consignment.consignee
    if ctx.is_ephyto and (party is None or _blank(party.name)):
        yield "consignment.consignee", {}


@rule("BR-COUNTRIES", S, M, "the {which} country is missing", "le pays {which_fr} est absent")
def _countries(ctx: SPSRuleContext):
    for which, which_fr, field in (("export", "d'exportation", "export_country"), ("import", "d'importation", "import_country")):
        country = getattr(ctx.record.consignment, field)
        if country is None or _blank(country.id):
            yield f"consignment.{field}", {"which": which, "which_fr": which_fr}


@rule("BR-LINE-ITEM", S, M, "the consignment has no trade line item", "l'envoi ne comporte aucune ligne de marchandise")
def _line_items(ctx: SPSRuleContext):
    if not ctx.record.line_items():
        yield "consignment.items", {}


@rule(
    "BR-EPHYTO-SCIENTIFIC-NAME",
    S,
    M,
    "trade line item {number} has no scientific name",
    "la ligne de marchandise {number} n'a pas de nom scientifique",
)
def _scientific_names(ctx: SPSRuleContext):
    if not ctx.is_ephyto:
        return
    for field, line in _lines(ctx):
        if not any(not _blank(name) for name in line.scientific_names):
            yield f"{field}.scientific_names", {"number": line.sequence_number if line.sequence_number is not None else "?"}


def _lines(ctx: SPSRuleContext) -> Iterator[tuple[str, object]]:
    for i, item in enumerate(ctx.record.consignment.items):
        for j, line in enumerate(item.line_items):
            yield f"consignment.items[{i}].line_items[{j}]", line


# ---------------------------------------------------------------------------------------------- business rules

B = Area.BUSINESS_RULE


@rule(
    "BR-COUNTRIES-DIFFER",
    S,
    B,
    "exporting and importing country are both {value}",
    "les pays d'exportation et d'importation sont tous deux {value}",
)
def _countries_differ(ctx: SPSRuleContext):
    export, import_ = ctx.record.consignment.export_country, ctx.record.consignment.import_country
    if export and import_ and export.id and import_.id and export.id.value and export.id.value == import_.id.value:
        yield "consignment.import_country.id", {"value": export.id.value}


@rule(
    "BR-REPLACEMENT-NUMBER",
    S,
    B,
    "a replacement certificate must give the number of the certificate it replaces (note ADRPN), other than its own",
    "un certificat de remplacement doit indiquer le numéro du certificat remplacé (note ADRPN), différent du sien",
)
def _replacement(ctx: SPSRuleContext):
    notes = ctx.record.notes
    flagged = [i for i, n in enumerate(notes) if n.subject in ("ADRP", "ADRPR", "ADRD")]
    if not flagged:
        return
    numbers = [(i, _note_text(n)) for i, n in enumerate(notes) if n.subject == "ADRPN"]
    own = ctx.record.certificate_number.value if ctx.record.certificate_number else None
    if not numbers or all(not text or text == own for _, text in numbers):
        yield (f"notes[{numbers[0][0]}]" if numbers else f"notes[{flagged[0]}]"), {}


def _note_text(note: Note) -> str:
    return " ".join(c.value.strip() for c in note.content).strip()


@rule("BR-DATE-FUTURE", S, B, "{what} {value} lies in the future", "{what_fr} {value} est dans le futur")
def _future_dates(ctx: SPSRuleContext):
    limit = ctx.now + timedelta(days=1)
    for field, value, what, what_fr in (
        ("issue_date_time", ctx.record.issue_date_time, "the issue date", "la date de délivrance"),
        *((f"signatories[{k}].actual_date_time", s.actual_date_time, "the signature date", "la date de signature") for k, s in enumerate(ctx.record.signatories)),
    ):
        moment = _moment(value)
        if moment and moment > limit:
            yield field, {"value": value.value, "what": what, "what_fr": what_fr}


@rule(
    "BR-TREATMENT-PERIOD",
    S,
    B,
    "the treatment ends ({end}) before it starts ({start})",
    "le traitement se termine ({end}) avant de commencer ({start})",
)
def _treatment_period(ctx: SPSRuleContext):
    for field, line in _lines(ctx):
        for k, process in enumerate(line.applied_processes):
            period = process.period
            start, end = _moment(period.start) if period else None, _moment(period.end) if period else None
            if start and end and end < start:
                yield f"{field}.applied_processes[{k}].period.end", {"start": period.start.value, "end": period.end.value}


@rule("BR-DATE-EMPTY", W, B, "the date element {field} is empty", "l'élément de date {field} est vide")
def _empty_dates(ctx: SPSRuleContext):
    for field, value in (("issue_date_time", ctx.record.issue_date_time), *((f"signatories[{k}].actual_date_time", s.actual_date_time) for k, s in enumerate(ctx.record.signatories))):
        if value is not None and value.value.strip() == "":
            yield field, {}


@rule("BR-MEASURE-UNIT", S, B, "the quantity {value} has no unit", "la quantité {value} n'a pas d'unité")
def _measure_units(ctx: SPSRuleContext):
    for field, measure in _measures(ctx):
        if measure.unit is None and not field.endswith("item_quantity"):
            yield field, {"value": measure.value}


@rule("BR-MEASURE-NEGATIVE", S, B, "the quantity {value} is negative", "la quantité {value} est négative")
def _measure_sign(ctx: SPSRuleContext):
    for field, measure in _measures(ctx):
        if Decimal(measure.value) < 0:
            yield field, {"value": measure.value}


def _measures(ctx: SPSRuleContext) -> Iterator[tuple[str, Measure]]:
    for field, line in _lines(ctx):
        for name in ("net_weight", "gross_weight", "net_volume", "gross_volume"):
            if getattr(line, name) is not None:
                yield f"{field}.{name}", getattr(line, name)
        for k, package in enumerate(line.packages):
            if package.item_quantity is not None:
                yield f"{field}.packages[{k}].item_quantity", package.item_quantity


def _moment(value: DateTime | None) -> datetime | None:
    if value is None:
        return None
    moment = value.as_datetime()
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


# --------------------------------------------------------------------------------------------------- code lists

C = Area.CODE_LIST


def _in_list(list_id: str, code: str) -> bool:
    return code in load_code_list(list_id)


@rule("CL-COUNTRY", S, C, "{value} is not an ISO 3166-1 alpha-2 country code", "{value} n'est pas un code pays ISO 3166-1 alpha-2")
def _country_codes(ctx: SPSRuleContext):
    c = ctx.record.consignment
    places = [("consignment.export_country.id", c.export_country), ("consignment.import_country.id", c.import_country)]
    places += [(f"consignment.transit_countries[{i}].id", country) for i, country in enumerate(c.transit_countries)]
    for field, line in _lines(ctx):
        places += [(f"{field}.origin_countries[{i}].id", country) for i, country in enumerate(line.origin_countries)]
    for field, country in places:
        if country is not None and country.id is not None and country.id.value.strip() and not _in_list("ISO3166", country.id.value.strip()):
            yield field, {"value": country.id.value}


@rule("CL-TRANSPORT-MODE", S, C, "{value} is not a UN/ECE Rec 19 transport mode", "{value} n'est pas un mode de transport de la Rec. 19 CEE-ONU")
def _transport_modes(ctx: SPSRuleContext):
    for i, movement in enumerate(ctx.record.consignment.transport_movements):
        if movement.mode_code is not None and not _in_list("Rec19", movement.mode_code.value.strip()):
            yield f"consignment.transport_movements[{i}].mode_code", {"value": movement.mode_code.value}


@rule("CL-PACKAGE-TYPE", S, C, "{value} is not a UN/ECE Rec 21 package type", "{value} n'est pas un type d'emballage de la Rec. 21 CEE-ONU")
def _package_types(ctx: SPSRuleContext):
    for field, line in _lines(ctx):
        for k, package in enumerate(line.packages):
            if package.type_code is not None and package.type_code.value.strip() and not _in_list("Rec21", package.type_code.value.strip()):
                yield f"{field}.packages[{k}].type_code", {"value": package.type_code.value}


@rule(
    "CL-UNIT",
    W,
    C,
    "{value} is not a UN/ECE Rec 20 unit the hub knows (its Rec 20 list is partial)",
    "{value} n'est pas une unité de la Rec. 20 CEE-ONU connue du hub (sa liste est partielle)",
)
def _units(ctx: SPSRuleContext):
    for field, measure in _measures(ctx):
        if measure.unit is not None and not _in_list("Rec20", measure.unit):
            yield field, {"value": measure.unit}


@rule("CL-LANGUAGE", W, C, "{value} is not an ISO 639-1 language code", "{value} n'est pas un code de langue ISO 639-1")
def _languages(ctx: SPSRuleContext):
    for field, language in _languages_in(ctx.record, ""):
        if not _in_list("ISO639", language):
            yield field, {"value": language}


def _languages_in(value: object, path: str) -> Iterator[tuple[str, str]]:
    """Every ``language`` of every Text in a record, with its field path (walks the models, no serialisation; only
    the fields whose type may hold a Text, see :func:`_text_fields`)."""
    found: list[tuple[str, str]] = []
    if isinstance(value, Text):
        if value.language is not None:
            found.append((path, value.language))
    elif isinstance(value, list):
        _languages_in_list(value, path, found)
    elif isinstance(value, BaseModel):
        _languages_in_model(value, path, found)
    return iter(found)


def _languages_in_model(model: BaseModel, path: str, found: list[tuple[str, str]]) -> None:
    fields = model.__dict__
    for key in _text_fields(type(model)):
        item = fields.get(key)
        if item is None:
            continue
        if isinstance(item, Text):
            if item.language is not None:
                found.append((f"{path}.{key}" if path else key, item.language))
        elif isinstance(item, list):
            _languages_in_list(item, f"{path}.{key}" if path else key, found)
        elif isinstance(item, BaseModel):
            _languages_in_model(item, f"{path}.{key}" if path else key, found)


def _languages_in_list(items: list, path: str, found: list[tuple[str, str]]) -> None:
    for i, item in enumerate(items):
        if isinstance(item, Text):
            if item.language is not None:
                found.append((f"{path}[{i}]", item.language))
        elif isinstance(item, BaseModel):
            _languages_in_model(item, f"{path}[{i}]", found)
        elif isinstance(item, list):
            _languages_in_list(item, f"{path}[{i}]", found)


_TEXT_FIELDS: dict[type, tuple[str, ...]] = {}


def _text_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model``, in their order, whose type may hold a Text somewhere below (decided once per model:
    a code, a measure or a string never does, so the walk does not go into them)."""
    fields = _TEXT_FIELDS.get(model)
    if fields is None:
        _TEXT_FIELDS[model] = tuple(model.model_fields)  # a model that refers to itself: assume it may, meanwhile
        fields = _TEXT_FIELDS[model] = tuple(name for name, info in model.model_fields.items() if _may_hold_text(info.annotation))
    return fields


def _may_hold_text(annotation: object) -> bool:
    if isinstance(annotation, type):
        if issubclass(annotation, Text):
            return True
        if issubclass(annotation, BaseModel):
            return bool(_text_fields(annotation))
        if issubclass(annotation, (str, int, float, Enum, type(None))):
            return False
    if get_origin(annotation) is Literal:
        return False
    arguments = get_args(annotation)
    return any(_may_hold_text(argument) for argument in arguments) if arguments else annotation is not None
