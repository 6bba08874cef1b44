"""The rules of the French simplified re-export procedure (PSSM, issue 5), each a named rule in English and French.

A re-export certificate issued under the procedure names its approval (``simplified_procedure``); the approval holds
for one entity (an account, or one of its sub-accounts) and one specimen code, for species of Annex B of Regulation
(EC) 338/97 only. The importer, the country of import, the quantities and the descriptions may be blank at issue and
are reported at the sale (the certificate is then *completed*, ``simplified_procedure.sale_date`` given); the
importer's country is never an EU member state.

Two sets: :data:`PSSM_RULES` judge the record alone and run with every permit validation; :data:`PSSM_APPROVAL_RULES`
need the approval from the store and run at submission (:func:`approval_findings`, called by
:mod:`hub.intake.submission` inside its transaction). None of them applies to a permit without
``simplified_procedure``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache, partial

from hub.records.cites import CITESPermit, PermitKind
from hub.validation.cites_rules import _aware, _blank
from hub.codelists import load_cites_code_list
from hub.report import Area, Finding, Severity
from hub.validation.ruleset import RuleContext, RuleSet

PSSM_RULES = RuleSet("CITES simplified re-export procedure")
rule = PSSM_RULES.rule
B, C = Area.BUSINESS_RULE, Area.CODE_LIST
S = Severity.SEVERE

#: The only Annex of Regulation (EC) 338/97 the procedure covers.
ANNEX_B = "B"


@lru_cache(maxsize=1)
def eu_members() -> frozenset[str]:
    """The EU member states (the ``EU`` zone of :mod:`hub.zones`)."""
    from hub.zones import builtin_zones

    return builtin_zones()["EU"].members


def _pssm(ctx: RuleContext) -> CITESPermit | None:
    """The permit when it is issued under the simplified procedure, else None (the rules then say nothing)."""
    permit: CITESPermit = ctx.record
    return permit if permit.simplified_procedure is not None else None


def completed(permit: CITESPermit) -> bool:
    """Whether a simplified-procedure certificate has had its blank boxes reported (its sale date is given)."""
    procedure = permit.simplified_procedure
    return procedure is not None and not _blank(procedure.sale_date)


@rule(
    "PSSM-REEXPORT", S, B,
    "the simplified procedure is for re-export certificates only, not {kind}",
    "la procédure simplifiée ne vaut que pour les certificats de réexportation, pas pour {kind}",
)
def _reexport_only(ctx: RuleContext):
    permit = _pssm(ctx)
    if permit is not None and permit.kind is not PermitKind.CITES_REEXPORT:
        yield "simplified_procedure", {"kind": permit.kind.value if permit.kind else "(no kind)"}


@rule(
    "PSSM-ANNEX-B", S, C,
    "the simplified procedure covers only species of Annex B of Regulation (EC) 338/97, not {value}",
    "la procédure simplifiée ne couvre que les espèces de l'annexe B du règlement (CE) 338/97, pas {value_fr}",
)
def _annex_b(ctx: RuleContext):
    permit = _pssm(ctx)
    if permit is None:
        return
    annexes = load_cites_code_list("EUAnnex")
    for index, item in enumerate(permit.consignment.items):
        annex = str(getattr(item.eu_annex, "value", "") or "").strip()
        if annex != ANNEX_B:
            if annex in annexes:
                shown = {"value": f"Annex {annex}", "value_fr": f"l'annexe {annex}"}
            else:
                shown = {"value": repr(annex), "value_fr": repr(annex)} if annex else {"value": "(no annex)", "value_fr": "(aucune annexe)"}
            yield f"consignment.items[{index}].eu_annex", shown


@rule(
    "PSSM-IMPORTER-NOT-EU", S, B,
    "under the simplified procedure the country of import cannot be an EU member state: {country}",
    "en procédure simplifiée le pays d'importation ne peut pas être un État membre de l'UE : {country}",
)
def _importer_not_eu(ctx: RuleContext):
    permit = _pssm(ctx)
    if permit is None:
        return
    country = permit.importing_country()
    if country and country.upper() in eu_members():
        yield "consignment.consignee.address.country_id", {"country": country}


@rule(
    "PSSM-COMPLETED", S, B,
    "a completed simplified-procedure certificate gives {missing}",
    "un certificat en procédure simplifiée complété indique {missing_fr}",
)
def _completed_boxes(ctx: RuleContext):
    permit = _pssm(ctx)
    if permit is None or not completed(permit):
        return
    consignee = permit.consignment.consignee
    if consignee is None or _blank(consignee.name):
        yield "consignment.consignee.name", {"missing": "the importer (Box 3)", "missing_fr": "l'importateur (case 3)"}
    if not permit.importing_country():
        yield "consignment.consignee.address.country_id", {"missing": "the country of import (Box 3a)", "missing_fr": "le pays d'importation (case 3a)"}
    for index, item in enumerate(permit.consignment.items):
        if not any(not _blank(text) for text in item.descriptions):
            yield f"consignment.items[{index}].descriptions", {"missing": "the description of the specimens (Box 9)", "missing_fr": "la description des spécimens (case 9)"}


# --- the rules that need the approval ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    """An approval of the simplified procedure as the store holds it (``cites_approvals``), for the rules."""

    number: str
    holder_account: str
    specimen_code: str
    valid_from: datetime
    holder_sub_account: str | None = None
    valid_until: datetime | None = None

    @property
    def entity(self) -> str:
        """The identifier of the re-exporter the approval is for: ``account``, or ``account/sub-account``."""
        return f"{self.holder_account}/{self.holder_sub_account}" if self.holder_sub_account else self.holder_account

    def in_force(self, moment: datetime) -> bool:
        moment = _aware(moment)
        return _aware(self.valid_from) <= moment and (self.valid_until is None or moment <= _aware(self.valid_until))


@dataclass
class ApprovalContext(RuleContext):
    """What the approval rules see: the record, and the approval of its number for the issuing tenant (None: none)."""

    approval: Approval | None = None
    tenant: str | None = None

    def issued_at(self) -> datetime:
        """The moment of issue: Box 13 when given, else the time of the check (a submission is an issue)."""
        issued = self.record.issue_date_time
        return _aware(issued.as_datetime()) if not _blank(issued) else self.now


PSSM_APPROVAL_RULES = RuleSet("CITES simplified re-export procedure: approvals", context=ApprovalContext)
approval_rule = PSSM_APPROVAL_RULES.rule


@approval_rule(
    "PSSM-APPROVAL", S, B,
    "approval {number} {problem}",
    "l'agrément {number} {problem_fr}",
)
def _approval(ctx: ApprovalContext):
    permit = _pssm(ctx)
    if permit is None:
        return
    number = permit.simplified_procedure.approval_number
    approval = ctx.approval
    if approval is None:
        yield "simplified_procedure.approval_number", {
            "number": number, "problem": f"does not exist for {ctx.tenant}", "problem_fr": f"n'existe pas pour {ctx.tenant}",
        }
    elif not approval.in_force(ctx.issued_at()):
        until = approval.valid_until.isoformat() if approval.valid_until else "open"
        yield "simplified_procedure.approval_number", {
            "number": number,
            "problem": f"is not in force at issue ({ctx.issued_at().isoformat()}; valid {approval.valid_from.isoformat()} to {until})",
            "problem_fr": f"n'est pas en vigueur à la délivrance ({ctx.issued_at().isoformat()} ; valable du {approval.valid_from.isoformat()} au {until})",
        }


@approval_rule(
    "PSSM-ENTITY", S, B,
    "the re-exporter (Box 4) must be the approval's holder {expected}, not {value}",
    "le réexportateur (case 4) doit être le titulaire de l'agrément {expected}, pas {value}",
)
def _entity(ctx: ApprovalContext):
    permit = _pssm(ctx)
    if permit is None or ctx.approval is None:
        return
    approval, procedure = ctx.approval, permit.simplified_procedure
    consignor = permit.consignment.consignor
    given = str(getattr(consignor.id if consignor else None, "value", "") or "").strip()
    if given != approval.entity:
        yield "consignment.consignor.id", {"expected": approval.entity, "value": repr(given) if given else "(no identifier)"}
    declared = f"{procedure.holder_account}/{procedure.holder_sub_account}" if procedure.holder_sub_account else procedure.holder_account
    if declared != approval.entity:
        yield "simplified_procedure.holder_account", {"expected": approval.entity, "value": repr(declared)}


@approval_rule(
    "PSSM-SPECIMEN-CODE", S, B,
    "approval {number} is for specimen code {expected}, not {value}",
    "l'agrément {number} vaut pour le code spécimen {expected}, pas {value}",
)
def _specimen_code(ctx: ApprovalContext):
    permit = _pssm(ctx)
    if permit is None or ctx.approval is None:
        return
    expected, number = ctx.approval.specimen_code, ctx.approval.number
    if permit.simplified_procedure.specimen_code != expected:
        yield "simplified_procedure.specimen_code", {"number": number, "expected": expected, "value": repr(permit.simplified_procedure.specimen_code)}
    for index, item in enumerate(permit.consignment.items):
        code = (item.specimen_code or "").strip()
        if code != expected:
            yield f"consignment.items[{index}].specimen_code", {"number": number, "expected": expected, "value": repr(code) if code else "(none)"}


class _FieldPaths:
    """Locations for findings on a record not read from XML: the field path itself."""

    def nearest(self, field: str) -> str:
        return field


def approval_findings(permit: CITESPermit, approval: Approval | None, *, tenant: str, now: datetime | None = None) -> list[Finding]:
    """The findings of the approval rules on ``permit``, given the approval its number names for ``tenant`` (None
    when the store has none). Empty for a permit not issued under the simplified procedure."""
    if permit.simplified_procedure is None:
        return []
    rules = RuleSet(PSSM_APPROVAL_RULES.name, context=partial(ApprovalContext, approval=approval, tenant=tenant))  # type: ignore[arg-type]
    rules.rules = PSSM_APPROVAL_RULES.rules
    return rules.run(permit, _FieldPaths(), now=now)  # type: ignore[arg-type]
