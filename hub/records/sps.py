"""SPS certificate records: what issuing systems send the hub, and what the hub makes of certificates from abroad.

One model per document kind (UNCL 1001 ``TypeCode``): phytosanitary (851), phytosanitary re-export (657), veterinary
(853) and TRACES-NT CHED (636, with its CHED type A / P / PP / D). They share the UN/CEFACT SPSCertificate 17 content;
field names follow the standard's aggregates (consignor, consignee, ``SPSExchangedDocument`` fields at the top level,
``SPSConsignment`` under ``consignment``). Unknown fields are errors; codes are checked by validation against the
UN/CEFACT and ISO code lists.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter, model_validator

from hub.records.common import Country, Extensible, Location, Person
from hub.records.common import RecordModel as _Record
from hub.records.status import DocumentStatus
from hub.records.values import BinaryObject, Code, DateTime, Identifier, Measure, Text



class DocumentKind(str, Enum):
    """The SPS document kinds, each with its UNCL 1001 document name code; ``sps_other`` is any other code, carried
    as it came in ``type_code``."""

    PHYTOSANITARY = "phytosanitary"
    PHYTOSANITARY_REEXPORT = "phytosanitary_reexport"
    VETERINARY = "veterinary"
    SANITARY = "sanitary"
    CHED = "ched"
    INSPECTION = "inspection"
    INSPECTION_APPLICATION = "inspection_application"
    TRADE_DATA = "trade_data"
    OTHER = "sps_other"

    @property
    def type_code(self) -> str | None:
        return DOCUMENT_KIND_CODES.get(self)

    @classmethod
    def for_code(cls, code: str) -> "DocumentKind":
        """The kind of a UNCL 1001 code; :attr:`OTHER` for a code of no named kind."""
        return _KIND_BY_CODE.get(code.strip(), cls.OTHER)


DOCUMENT_KIND_CODES: dict[DocumentKind, str] = {
    DocumentKind.PHYTOSANITARY: "851",
    DocumentKind.PHYTOSANITARY_REEXPORT: "657",
    DocumentKind.VETERINARY: "853",
    DocumentKind.SANITARY: "852",
    DocumentKind.CHED: "636",  # TRACES-NT's Common Health Entry Document
    DocumentKind.INSPECTION: "856",  # TRACES-NT's EU-Intra certificate
    DocumentKind.INSPECTION_APPLICATION: "855",
    DocumentKind.TRADE_DATA: "332",  # TRACES-NT's commercial document (DOCOM)
}
_KIND_BY_CODE = {code: kind for kind, code in DOCUMENT_KIND_CODES.items()}


class Note(_Record):
    """An ``IncludedSPSNote`` / ``AdditionalInformationSPSNote``: a subject (IPPC code such as ADEDL) and its content."""

    subject: str | None = None
    subject_code: Code | None = None
    content_code: Code | None = None
    content: list[Text] = Field(default_factory=list)


class Address(_Record):
    """A postal address (``SpecifiedSPSAddress``)."""

    postcode: Code | None = None
    line_one: str | None = None
    line_two: str | None = None
    line_three: str | None = None
    line_four: str | None = None
    line_five: str | None = None
    city_name: Text | None = None
    country_id: Identifier | None = None
    country_name: Text | None = None
    country_subdivision_name: Text | None = None


class Party(_Record):
    """A party: consignor, consignee, issuer (NPPO or competent authority), delivery party, customs agent."""

    id: Identifier | None = None
    name: Text | None = None
    type_codes: list[Code] = Field(default_factory=list)
    role_codes: list[Code] = Field(default_factory=list)
    address: Address | None = None
    person: Person | None = None


class Clause(_Record):
    """A certifying clause of the signatory (``IncludedSPSClause``); TRACES uses text IDs such as PURPOSE."""

    id: Identifier | None = None
    content: list[Text] = Field(default_factory=list)


class Signatory(_Record):
    """Who signed the certificate, where and when, and the clauses they certified."""

    type_code: Code | None = None
    actual_date_time: DateTime | None = None
    issue_location: Location | None = None
    provider: Party | None = None
    clauses: list[Clause] = Field(default_factory=list)


class ReferencedDocument(_Record):
    """A document the certificate refers to: import permit, replaced certificate, attached PDF, bill of lading…"""

    issue_date_time: DateTime | None = None
    type_code: Code | None = None
    relationship_type_code: Code | None = None
    id: Identifier | None = None
    attachment: BinaryObject | None = None
    information: list[Text] = Field(default_factory=list)


class TransportMovement(_Record):
    """A main-carriage movement: mode (UN/ECE Rec 19), voyage or flight ID, and the means of transport."""

    id: Identifier | None = None
    mode_code: Code | None = None
    means_name: Text | None = None


class Seal(_Record):
    id: Identifier | None = None


class TransportEquipment(_Record):
    """A container or other equipment with its seals."""

    id: Identifier | None = None
    seals: list[Seal] = Field(default_factory=list)


class Classification(_Record):
    """A product classification: HS code, IPPC commodity classes (IPPCPCVP, IPPCPCC), TRACES CN and EPPO codes."""

    system_id: Identifier | None = None
    system_name: Text | None = None
    class_code: Code | None = None
    class_names: list[Text] = Field(default_factory=list)


class Package(_Record):
    """Packages at one level (``LevelCode``), of a UN/ECE Rec 21 type, and how many."""

    level_code: Code | None = None
    type_code: Code | None = None
    item_quantity: Measure | None = None


class CountrySubdivision(_Record):
    name: Text | None = None
    hierarchical_level_code: Code | None = None


class AuthorisedSubdivision(_Record):
    """A subdivision of a country named for a function (UN/ECE location function code: 44 place of authentication,
    42 exit customs office …), with the parties authorised there (TRACES-NT: the competent authorities)."""

    id: Identifier | None = None
    name: Text | None = None
    function_type_code: Code | None = None
    authorised_parties: list[Party] = Field(default_factory=list)


class SPSCountry(Country):
    """A country of the consignment, with the subdivisions named in it (TRACES-NT's competent authorities)."""

    subdivisions: list[AuthorisedSubdivision] = Field(default_factory=list)


class OriginCountry(_Record):
    """Where the goods come from, down to a region or place of production."""

    id: Identifier | None = None
    name: Text | None = None
    subdivision: CountrySubdivision | None = None


class Period(_Record):
    start: DateTime | None = None
    end: DateTime | None = None
    duration: Measure | None = None


class ProcessCharacteristic(_Record):
    """One characteristic of a treatment: the IPPC code (TTFT, TTCH, TTTM…) then texts, or a measured value."""

    descriptions: list[Text] = Field(default_factory=list)
    value: Measure | None = None


class AppliedProcess(_Record):
    """A treatment applied to the goods, with its period and characteristics."""

    type_code: Code | None = None
    period: Period | None = None
    characteristics: list[ProcessCharacteristic] = Field(default_factory=list)
    notes: list[Note] = Field(default_factory=list)
    operator: Party | None = None


class TradeLineItem(_Record):
    """One line of goods: what it is (names, classifications), how much, how packed, from where, how treated."""

    sequence_number: int | None = None
    descriptions: list[Text] = Field(default_factory=list)
    common_names: list[Text] = Field(default_factory=list)
    scientific_names: list[Text] = Field(default_factory=list)
    intended_uses: list[Text] = Field(default_factory=list)
    net_weight: Measure | None = None
    gross_weight: Measure | None = None
    net_volume: Measure | None = None
    gross_volume: Measure | None = None
    notes: list[Note] = Field(default_factory=list)
    classifications: list[Classification] = Field(default_factory=list)
    packages: list[Package] = Field(default_factory=list)
    origin_countries: list[OriginCountry] = Field(default_factory=list)
    applied_processes: list[AppliedProcess] = Field(default_factory=list)

    def hs_codes(self) -> list[str]:
        """The HS (or TRACES CN) codes of this line."""
        return [
            c.class_code.value
            for c in self.classifications
            if c.class_code and ((c.system_name and c.system_name.value == "HS") or (c.system_id and c.system_id.value == "CN"))
        ]


class ConsignmentItem(_Record):
    """An ``IncludedSPSConsignmentItem``: a group of trade line items, with the nature of the cargo."""

    nature_code: Code | None = None
    line_items: list[TradeLineItem] = Field(default_factory=list)


class Consignment(_Record):
    """The ``SPSConsignment``: parties, countries, ports, transport and the goods."""

    availability_due_date_time: DateTime | None = None
    export_exit_date_time: DateTime | None = None
    consignor: Party | None = None
    consignee: Party | None = None
    export_country: SPSCountry | None = None
    import_country: SPSCountry | None = None
    transit_countries: list[SPSCountry] = Field(default_factory=list)
    unloading_port: Location | None = None
    loading_port: Location | None = None
    examination_location: Location | None = None
    delivery_party: Party | None = None
    customs_transit_agent: Party | None = None
    carrier: Party | None = None
    despatch_party: Party | None = None
    transport_movements: list[TransportMovement] = Field(default_factory=list)
    transport_equipment: list[TransportEquipment] = Field(default_factory=list)
    items: list[ConsignmentItem] = Field(default_factory=list)


class _SPSCertificateBase(Extensible):
    """Fields common to every SPS certificate (the ``SPSExchangedDocument`` and the ``SPSConsignment``)."""

    name: Text | None = None
    certificate_number: Identifier | None = Field(default=None, description="ram:ID, the issuer's certificate number")
    type_code: Code | None = Field(default=None, description="ram:TypeCode, the UNCL 1001 code of the kind (filled in from kind when absent), with its attributes")
    description: Text | None = None
    status: DocumentStatus | None = Field(default=None, description="UNCL 4405 status of the document, e.g. issued (70); a document to issue needs one")
    status_code: Code | None = Field(default=None, description="ram:StatusCode with its attributes (filled in from status when absent); a code of no named status is carried as it came")
    issue_date_time: DateTime | None = None
    issuer: Party | None = None
    notes: list[Note] = Field(default_factory=list)
    referenced_documents: list[ReferencedDocument] = Field(default_factory=list)
    signatories: list[Signatory] = Field(default_factory=list, description="every SignatorySPSAuthentication: the issuing officer first; TRACES-NT adds the applicant, the checks and the border post's decision with its clauses")
    consignment: Consignment = Field(default_factory=Consignment)

    @model_validator(mode="before")
    @classmethod
    def _one_signatory(cls, data: Any) -> Any:
        # ``signatory`` (one) is how records were first written: it is the first of the signatories.
        if isinstance(data, dict) and "signatory" in data:
            data = dict(data)
            single = data.pop("signatory")
            if data.get("signatories"):
                raise ValueError("give signatories, or signatory alone, not both")
            data["signatories"] = [single] if single is not None else []
        return data

    @property
    def signatory(self) -> Signatory | None:
        """The first signatory: the officer who issued the certificate."""
        return self.signatories[0] if self.signatories else None

    @model_validator(mode="after")
    def _status_code_of_status(self) -> "_SPSCertificateBase":
        if self.status_code is None:
            if self.status is not None:
                self.status_code = Code(value=self.status.code)
            return self
        try:
            coded = DocumentStatus.from_code(self.status_code.value)
        except KeyError:
            coded = None
        if self.status is None:
            self.status = coded
        elif coded is not self.status:
            raise ValueError(f"status_code {self.status_code.value!r} is not the code of status {self.status.value} ({self.status.code})")
        return self

    @model_validator(mode="after")
    def _type_code_of_kind(self) -> "_SPSCertificateBase":
        expected = DocumentKind(self.kind).type_code
        if self.type_code is None:
            if expected is not None:  # a document of no named kind may name no code either (a CSW-CERTEX answer)
                self.type_code = Code(value=expected)
        elif expected is not None and self.type_code.value.strip() != expected:
            raise ValueError(f"type_code {self.type_code.value!r} is not the code of kind {DocumentKind(self.kind).value} ({expected})")
        elif expected is None and DocumentKind.for_code(self.type_code.value) is not DocumentKind.OTHER:
            raise ValueError(f"type_code {self.type_code.value!r} is the code of kind {DocumentKind.for_code(self.type_code.value).value}: give that kind")
        return self

    def line_items(self) -> list[TradeLineItem]:
        """Every trade line item of every consignment item, in document order."""
        return [line for item in self.consignment.items for line in item.line_items]

    def notes_with_subject(self, subject: str) -> list[Note]:
        return [n for n in self.notes if n.subject == subject]


class PhytosanitaryCertificate(_SPSCertificateBase):
    """An ePhyto phytosanitary certificate for export (UNCL 1001 code 851)."""

    kind: Literal[DocumentKind.PHYTOSANITARY] = DocumentKind.PHYTOSANITARY


class PhytosanitaryReexportCertificate(_SPSCertificateBase):
    """An ePhyto phytosanitary certificate for re-export (UNCL 1001 code 657)."""

    kind: Literal[DocumentKind.PHYTOSANITARY_REEXPORT] = DocumentKind.PHYTOSANITARY_REEXPORT


class VeterinaryCertificate(_SPSCertificateBase):
    """A veterinary / health export certificate (UNCL 1001 code 853)."""

    kind: Literal[DocumentKind.VETERINARY] = DocumentKind.VETERINARY


class SanitaryCertificate(_SPSCertificateBase):
    """A sanitary certificate (UNCL 1001 code 852): products fit for human consumption."""

    kind: Literal[DocumentKind.SANITARY] = DocumentKind.SANITARY


class InspectionCertificate(_SPSCertificateBase):
    """An inspection certificate (UNCL 1001 code 856): TRACES-NT's EU-Intra animal health certificate."""

    kind: Literal[DocumentKind.INSPECTION] = DocumentKind.INSPECTION


class InspectionApplication(_SPSCertificateBase):
    """An application for an inspection certificate (UNCL 1001 code 855)."""

    kind: Literal[DocumentKind.INSPECTION_APPLICATION] = DocumentKind.INSPECTION_APPLICATION


class TradeDataDocument(_SPSCertificateBase):
    """A trade data document (UNCL 1001 code 332): TRACES-NT's commercial document (DOCOM)."""

    kind: Literal[DocumentKind.TRADE_DATA] = DocumentKind.TRADE_DATA


class OtherSPSDocument(_SPSCertificateBase):
    """An SPSCertificate of any other UNCL 1001 code, carried as it came (``type_code``); validation warns."""

    kind: Literal[DocumentKind.OTHER] = DocumentKind.OTHER


CHED_TYPE_SUBJECT = "CHED_TYPE"


class ChedCertificate(_SPSCertificateBase):
    """A TRACES-NT Common Health Entry Document (UNCL 1001 code 636).

    ``ched_type`` (A live animals, P products of animal origin, PP plants, D feed and food of non-animal origin)
    travels as an ``IncludedSPSNote`` with ``SubjectCode`` CHED_TYPE and the type as ``ContentCode``, as TRACES
    writes it; give either and the other is filled in.
    """

    kind: Literal[DocumentKind.CHED] = DocumentKind.CHED
    ched_type: Literal["A", "P", "PP", "D"] | None = None

    @model_validator(mode="after")
    def _ched_type_note(self) -> "ChedCertificate":
        notes = [n for n in self.notes if n.subject_code and n.subject_code.value == CHED_TYPE_SUBJECT]
        noted = notes[0].content_code.value if notes and notes[0].content_code else None
        if self.ched_type is None and noted is None:
            raise ValueError("a CHED needs its ched_type (A, P, PP or D)")
        if self.ched_type is None:
            if noted not in ("A", "P", "PP", "D"):
                raise ValueError(f"CHED_TYPE note carries {noted!r}, not one of A, P, PP, D")
            self.ched_type = noted  # type: ignore[assignment]
        elif noted is None:
            self.notes.insert(0, Note(subject_code=Code(value=CHED_TYPE_SUBJECT), content_code=Code(value=self.ched_type), content=[Text(value="")]))
        elif noted != self.ched_type:
            raise ValueError(f"ched_type {self.ched_type!r} contradicts the CHED_TYPE note {noted!r}")
        return self


#: One model per kind, in the order of :class:`DocumentKind`.
SPS_RECORD_CLASSES: tuple[type[_SPSCertificateBase], ...] = (
    PhytosanitaryCertificate, PhytosanitaryReexportCertificate, VeterinaryCertificate, SanitaryCertificate, ChedCertificate,
    InspectionCertificate, InspectionApplication, TradeDataDocument, OtherSPSDocument,
)

SPSCertificateRecord = Annotated[Union[SPS_RECORD_CLASSES], Field(discriminator="kind")]
"""Any SPS certificate record; ``kind`` selects the model."""

SPS_RECORD_ADAPTER: TypeAdapter[SPSCertificateRecord] = TypeAdapter(SPSCertificateRecord)

RECORD_MODELS: dict[DocumentKind, type[_SPSCertificateBase]] = {model.model_fields["kind"].default: model for model in SPS_RECORD_CLASSES}
