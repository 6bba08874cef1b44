"""CITES permit records: the permit boxes 1–15 as the CITES ePermit toolkit v2 document (``CITESEPermit``) holds them.

One model, :class:`CITESPermit`, for the four kinds of document the permit form names in Box 1 (export permit, import
permit, re-export certificate, other certificate). Field names follow the standard's aggregates where they say what a
value is (``consignor``, ``consignee``, ``first_signatory``, ``origin_country``); where the standard's name would
mislead (``ExportTradeCountry`` is the country of *last re-export*, Box 12a) the field is named after its box. Each
field's description names its permit box and its element, as EPIX maps them (FACTS §4). Texts, codes and identifiers
keep their attributes (``languageID``, ``listID``, ``schemeID``) so that a parsed permit renders back unchanged.

Where the standard allows repetitions a permit box holds once (a permit number, a purpose code, a term code), the
record holds one value; a document repeating it is parsed with the repetition reported, never silently dropped.
"""

from __future__ import annotations

from enum import Enum

from pydantic import Field, ValidationInfo, field_validator, model_validator

from hub.records.common import Country, Extensible, Location, Person
from hub.records.common import RecordModel as _Record
from hub.records.values import Code, DateTime, Identifier, Quantity, Text



class PermitKind(str, Enum):
    """What Box 1 says the document is (``HeaderExchangedDocument/TypeCode``, code in :data:`PERMIT_KIND_CODES`)."""

    CITES_EXPORT = "cites_export"
    CITES_IMPORT = "cites_import"
    CITES_REEXPORT = "cites_reexport"
    CITES_OTHER = "cites_other"

    @property
    def type_code(self) -> str:
        return PERMIT_KIND_CODES[self]


# R is what the real EPIX re-export certificate carries; O is the toolkit's "category code O for Other" (toolkit 3.3
# EDI annex, Box 1.1). E and I are INFERRED (the initial letters of the Box 1 heading "Export, Re-export, Import,
# Other"): no document carrying them was found.
PERMIT_KIND_CODES: dict[PermitKind, str] = {
    PermitKind.CITES_EXPORT: "E",
    PermitKind.CITES_IMPORT: "I",
    PermitKind.CITES_REEXPORT: "R",
    PermitKind.CITES_OTHER: "O",
}
_KIND_BY_CODE = {code: kind for kind, code in PERMIT_KIND_CODES.items()}

#: UNCL 1001 document codes of the documents a permit line refers to (Box 12 and 12a).
ORIGIN_PERMIT_CODE = "861"
REEXPORT_CERTIFICATE_CODE = "811"

#: Box 10: the CITES Appendices, and the source codes of Res. Conf. 12.3 (for validation to check against).
APPENDICES = ("I", "II", "III")
SOURCE_CODES = ("W", "R", "D", "A", "C", "F", "U", "I", "O", "X", "Y")

#: The business process every CITESEPermit declares (toolkit v2 schema: fixed value, document version 1).
BUSINESS_PROCESS = "CITES PERMITTING"

_SIGNATORY_TYPE_CODES = {"first_signatory": "A", "second_signatory": "B", "third_signatory": "C", "fourth_signatory": "D"}


def document_code(value: str) -> Code:
    """A UNCL 1001 document code as EPIX writes it (``listID="1001" listAgencyID="6"``)."""
    return Code(value=value, list_id="1001", list_agency_id="6")


class DocumentVersion(_Record):
    """A ``SpecifiedDocumentVersion``: the version of a context parameter."""

    id: Identifier | None = None
    issue_date_time: DateTime | None = None


class ContextParameter(_Record):
    """A ``…SpecifiedDocumentContextParameter`` of ``SpecifiedExchangedDocumentContext``."""

    id: Identifier | None = None
    value: Text | None = None
    version: DocumentVersion | None = None


class Period(_Record):
    """An ``EffectiveSpecifiedPeriod``."""

    start: DateTime | None = Field(default=None, description="StartDateTime")
    end: DateTime | None = Field(default=None, description="EndDateTime")


class Address(_Record):
    """A ``PostalTradeAddress`` (v2 gives the country as ``CountryID`` / ``CountryName`` directly)."""

    postcode: Code | None = Field(default=None, description="PostcodeCode")
    post_office_box: Text | None = Field(default=None, description="PostOfficeBox")
    street_names: list[Text] = Field(default_factory=list, description="StreetName, one per street line")
    city_name: Text | None = Field(default=None, description="CityName")
    country_id: Identifier | None = Field(default=None, description="CountryID (ISO 3166-1 alpha-2)")
    country_name: Text | None = Field(default=None, description="CountryName")
    country_subdivision_name: Text | None = Field(default=None, description="CountrySubDivisionName")


class Party(_Record):
    """A ``…TradeParty``: importer, exporter, issuing authority, certifying customs office."""

    id: Identifier | None = None
    name: Text | None = None
    address: Address | None = Field(default=None, description="PostalTradeAddress")
    representative_person: Person | None = Field(default=None, description="SpecifiedRepresentativePerson")
    authoritative_signatory_persons: list[Person] = Field(default_factory=list, description="SpecifiedAuthoritativeSignatoryPerson")


class Signatory(_Record):
    """A ``…SignatoryDocumentAuthentication``: who authenticated the permit, where and when."""

    type_code: Code | None = Field(default=None, description="TypeCode: A, B, C or D for the first to fourth signatory")
    actual_date_time: DateTime | None = Field(default=None, description="ActualDateTime")
    id: Identifier | None = Field(default=None, description="ID; the first signatory's is the security stamp (Box 5b)")
    statement: Text | None = None
    provider: Party | None = Field(default=None, description="ProviderTradeParty; the first signatory's is the issuing authority (Box 6)")
    issue_location: Location | None = Field(default=None, description="IssueLogisticsLocation")


class ReferencedDocument(_Record):
    """A document the permit refers to: origin permit, re-export certificate, bill of lading, replaced permit."""

    issue_date_time: DateTime | None = None
    type_code: Code | None = Field(default=None, description="UNCL 1001 document code: 861 origin permit, 811 re-export certificate")
    id: Identifier | None = None
    name: Text | None = None
    validity: Period | None = Field(default=None, description="EffectiveSpecifiedPeriod")


class ExaminationEvent(_Record):
    """An ``ExaminationTransportEvent``: the export endorsement customs make when the specimens leave (Box 14)."""

    actual_date_time: DateTime | None = Field(default=None, description="Box 14 date (ActualOccurrenceDateTime)")
    actual_quantity: Quantity | None = Field(default=None, description="Box 14 quantity actually exported (UnitQuantity)")
    location: Location | None = Field(default=None, description="Box 14 port of export (OccurrenceLogisticsLocation)")
    certifying_parties: list[Party] = Field(default_factory=list, description="Box 14 endorsing office (CertifyingTradeParty)")


class PermitItem(_Record):
    """One specimen line of the permit (an ``IncludedSupplyChainConsignmentItem`` with its trade line item and
    product, and its cross-border regulatory procedure): boxes 7 to 12b, and its own Box 14 quantity."""

    id: Identifier | None = Field(default=None, description="the line's letter or number (ID)")
    markings: list[Text] = Field(default_factory=list, description="Box 9 marks, tags, ring numbers (PhysicalLogisticsShippingMarks/Marking)")
    origin_country: Country | None = Field(default=None, description="Box 12 country of origin (OriginTradeCountry)")
    last_reexport_country: Country | None = Field(default=None, description="Box 12a country of last re-export (ExportTradeCountry)")
    origin_permit: ReferencedDocument | None = Field(default=None, description="Box 12 origin permit number and date (AssociatedReferencedDocument, TypeCode 861)")
    last_reexport_certificate: ReferencedDocument | None = Field(default=None, description="Box 12a certificate number and date (AssociatedReferencedDocument, TypeCode 811)")
    other_documents: list[ReferencedDocument] = Field(default_factory=list, description="any other AssociatedReferencedDocument")
    quantity: Quantity | None = Field(default=None, description="Box 11 quantity and unit (TransportLogisticsPackage/ItemQuantity)")
    appendix: Code | None = Field(default=None, description="Box 10 Appendix I, II or III (IncludedSupplyChainTradeLineItem/TypeCode)")
    source: Code | None = Field(default=None, description="Box 10 source code, e.g. W, C, D (TypeExtensionCode)")
    seller_assigned_id: Identifier | None = Field(default=None, description="SpecifiedTradeProduct/SellerAssignedID")
    manufacturer_assigned_ids: list[Identifier] = Field(default_factory=list, description="SpecifiedTradeProduct/ManufacturerAssignedID")
    descriptions: list[Text] = Field(default_factory=list, description="Box 9 description of the specimens (Description)")
    term_code: Code | None = Field(default=None, description="Box 9 term code, e.g. LPS, LPL, GAR, SKI (SpecifiedTradeProduct/TypeCode)")
    common_names: list[Text] = Field(default_factory=list, description="Box 8 common names, one per language (CommonName)")
    scientific_name: Text | None = Field(default=None, description="Box 7 scientific name of the species (ScientificName)")
    customs_endorsement: ExaminationEvent | None = Field(default=None, description="Box 14 for this line: quantity actually exported")
    category_code: Code | None = Field(default=None, description="Box 12b number of the operation (ApplicableCrossBorderRegulatoryProcedure/CategoryCode)")
    used_to_date_quota: Quantity | None = Field(default=None, description="Box 11a total exported to date under the quota (UsedToDateQuotaQuantity)")
    annual_quota: Quantity | None = Field(default=None, description="Box 11a annual export quota (AnnualQuotaQuantity)")
    acquisition_date_time: DateTime | None = Field(default=None, description="Box 12b date of acquisition (AcquisitionDateTime)")
    previous_documents: list[ReferencedDocument] = Field(default_factory=list, description="PreviousReferencedDocument of the procedure")
    eu_annex: Code | None = Field(default=None, description="national data, not in the XML: the Annex of Regulation (EC) 338/97 (A, B, C, D; code list EUAnnex)")
    specimen_code: str | None = Field(default=None, description="national data, not in the XML: the specimen code of the simplified procedure's approval")

    @field_validator("origin_permit", mode="after")
    @classmethod
    def _origin_permit_code(cls, document: ReferencedDocument | None) -> ReferencedDocument | None:
        return _typed(document, ORIGIN_PERMIT_CODE, "an origin permit")

    @field_validator("last_reexport_certificate", mode="after")
    @classmethod
    def _reexport_certificate_code(cls, document: ReferencedDocument | None) -> ReferencedDocument | None:
        return _typed(document, REEXPORT_CERTIFICATE_CODE, "a re-export certificate")


def _typed(document: ReferencedDocument | None, code: str, what: str) -> ReferencedDocument | None:
    """``document`` with its UNCL 1001 code (filled in when absent); another code is an error."""
    if document is None:
        return None
    if document.type_code is None:
        return document.model_copy(update={"type_code": document_code(code)})
    if document.type_code.value.strip() != code:
        raise ValueError(f"{what} is document type {code}, not {document.type_code.value!r}")
    return document


class SimplifiedProcedure(_Record):
    """The French simplified re-export procedure (PSSM) a re-export certificate is issued under: national data the
    certificate abroad does not carry (kept in the stored record, never written to the XML).

    The approval holds for one entity (an account, or one of its sub-accounts) and one specimen code. The certificate
    may leave the importer, the country of import, the quantities and the descriptions blank at issue; they are
    reported at the sale, whose date ``sale_date`` then records (blank until the certificate is completed).
    """

    approval_number: str = Field(description="the number of the approval the certificate is issued under")
    holder_account: str = Field(description="the account holding the approval")
    holder_sub_account: str | None = Field(default=None, description="the sub-account holding the approval, if the approval is for one")
    specimen_code: str = Field(description="the specimen code the approval is for")
    sale_date: DateTime | None = Field(default=None, description="the date of the sale, given when the blank boxes are reported (completion)")


class Consignment(_Record):
    """The ``SpecifiedSupplyChainConsignment``: importer, exporter, transport document, endorsement, specimens."""

    consignor: Party | None = Field(default=None, description="Box 4 exporter or re-exporter (ConsignorTradeParty)")
    consignee: Party | None = Field(default=None, description="Box 3 importer, Box 3a country of import in its address (ConsigneeTradeParty)")
    transport_document: ReferencedDocument | None = Field(default=None, description="Box 15 bill of lading or air waybill (TransportContractReferencedDocument)")
    customs_endorsement: ExaminationEvent | None = Field(default=None, description="Box 14 export endorsement: port, date, office (ExaminationTransportEvent)")
    items: list[PermitItem] = Field(default_factory=list, description="Boxes 7 to 12b, one line per species or specimen (IncludedSupplyChainConsignmentItem)")


class CITESPermit(Extensible):
    """A CITES permit or certificate (``CITESEPermit``, toolkit v2): export permit, import permit, re-export
    certificate or other certificate.

    Give ``kind`` or ``type_code`` (Box 1) and the other is filled in; the business process context
    (``CITES PERMITTING``, version 1) is filled in when absent, and so are the TypeCodes of the signatories (A–D)
    and of a line's origin permit (861) and re-export certificate (811).
    """

    kind: PermitKind | None = Field(default=None, description="Box 1 type of document; filled in from type_code when absent")
    business_process_context: ContextParameter | None = Field(
        default=None, validate_default=True, description="BusinessProcessSpecifiedDocumentContextParameter: CITES PERMITTING"
    )
    bim_context: ContextParameter | None = Field(default=None, description="BIMSpecifiedDocumentContextParameter")
    permit_number: Identifier | None = Field(default=None, description="Box 1 permit or certificate number (HeaderExchangedDocument/ID)")
    names: list[Text] = Field(default_factory=list, description="the document's title (Name)")
    type_code: Code | None = Field(default=None, validate_default=True, description="Box 1 type of document: E, I, R or O (TypeCode)")
    issue_date_time: DateTime | None = Field(default=None, description="Box 13 date of issue (IssueDateTime)")
    copy_indicator: bool | None = Field(default=None, description="whether this is a copy of the permit (CopyIndicator)")
    purpose: Text | None = Field(default=None, description="Box 5a purpose of the transaction, as text (Purpose)")
    purpose_code: Code | None = Field(default=None, description="Box 5a purpose code, e.g. T commercial, P personal (PurposeCode)")
    information: list[Text] = Field(default_factory=list, description="Box 5 special conditions (Information)")
    referenced_documents: list[ReferencedDocument] = Field(default_factory=list, description="documents the permit refers to (ReferenceReferencedDocument)")
    validity: Period | None = Field(default=None, description="Box 2 valid from / valid until (EffectiveSpecifiedPeriod)")
    issue_location: Location | None = Field(default=None, description="Box 13 place of issue (IssueLogisticsLocation)")
    first_signatory: Signatory | None = Field(default=None, description="Box 5b security stamp (ID) and Box 6 issuing authority (ProviderTradeParty); TypeCode A")
    second_signatory: Signatory | None = Field(default=None, description="SecondSignatoryDocumentAuthentication, TypeCode B")
    third_signatory: Signatory | None = Field(default=None, description="Box 13 signatory of the issuing authority; TypeCode C")
    fourth_signatory: Signatory | None = Field(default=None, description="FourthSignatoryDocumentAuthentication, TypeCode D")
    consignment: Consignment = Field(default_factory=Consignment, description="boxes 3, 4, 7 to 12b, 14 and 15")
    simplified_procedure: SimplifiedProcedure | None = Field(default=None, description="national data, not in the XML: the simplified re-export procedure (PSSM) approval it is issued under")

    @field_validator("business_process_context", mode="after")
    @classmethod
    def _business_process(cls, context: ContextParameter | None) -> ContextParameter:
        return context or ContextParameter(value=Text(value=BUSINESS_PROCESS), version=DocumentVersion(id=Identifier(value="1")))

    @field_validator("type_code", mode="after")
    @classmethod
    def _type_code(cls, type_code: Code | None, info: ValidationInfo) -> Code:
        kind = info.data.get("kind")
        if type_code is None:
            if kind is None:
                raise ValueError("a permit needs its kind (cites_export, cites_import, cites_reexport, cites_other) or its type_code (E, I, R, O)")
            return document_code(PERMIT_KIND_CODES[kind])
        coded = _KIND_BY_CODE.get(type_code.value.strip())
        if coded is None:
            raise ValueError(f"{type_code.value!r} is not a CITES permit type code (E export, I import, R re-export, O other)")
        if kind is not None and kind is not coded:
            raise ValueError(f"type_code {type_code.value!r} ({coded.value}) contradicts kind {kind.value}")
        return type_code

    @field_validator("first_signatory", "second_signatory", "third_signatory", "fourth_signatory", mode="after")
    @classmethod
    def _signatory_type_code(cls, signatory: Signatory | None, info: ValidationInfo) -> Signatory | None:
        if signatory is None or signatory.type_code is not None:
            return signatory
        return signatory.model_copy(update={"type_code": Code(value=_SIGNATORY_TYPE_CODES[info.field_name])})

    @model_validator(mode="after")
    def _kind_from_type_code(self) -> "CITESPermit":
        if self.kind is None and self.type_code is not None:
            self.kind = _KIND_BY_CODE[self.type_code.value.strip()]
        return self

    @property
    def security_stamp(self) -> Identifier | None:
        """Box 5b: the security stamp number (the first signatory's ID)."""
        return self.first_signatory.id if self.first_signatory else None

    @property
    def issuing_authority(self) -> Party | None:
        """Box 6: the Management Authority that issued the permit (the first signatory's provider)."""
        return self.first_signatory.provider if self.first_signatory else None

    def exporting_country(self) -> str | None:
        """The exporter's (or re-exporter's) country code, from its address (Box 4)."""
        return _country_of(self.consignment.consignor)

    def importing_country(self) -> str | None:
        """The country of import (Box 3a), from the importer's address."""
        return _country_of(self.consignment.consignee)


def _country_of(party: Party | None) -> str | None:
    country = party.address.country_id if party and party.address else None
    return (country.value.strip() or None) if country else None

