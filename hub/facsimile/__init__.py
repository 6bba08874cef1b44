"""The printable facsimile of a certificate or permit: a PDF on A4 laid out like the official model, labelled in
the document's languages, carrying a QR code to the public verification page with the verification code printed
beside it, and signed (PDF signature) by the issuing authority.

::

    labels.py     the printed words in English, French and Spanish; which languages a document is labelled in
    sheet.py      what a facsimile shows: sections of rows of boxes (no record, no PDF)
    sps.py        the sheets of the phytosanitary certificate (ISPM 12), the health certificate and the CHED
    cites.py      the sheet of the CITES permit (boxes 1 to 15)
    values.py     record values as printed (parties, countries, dates, measures)
    page.py       drawing a sheet on A4 (fpdf2), the QR code (segno)
    signature.py  the issuing authority's PDF signature (pyHanko)

:func:`for_document` makes the facsimile of a stored document (``GET /v1/documents/{id}/pdf``, ``hub facsimile``);
:func:`render` of a record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from hub.errors import ConfigurationError, InputError
from hub.facsimile.cites import permit_sheet
from hub.facsimile.labels import LANGUAGES, label, languages_for
from hub.facsimile.sps import sheet_for
from hub.families import for_kind
from hub.records.cites import CITESPermit
from hub.signing.verification import SECRET_FILE, load_secret, verification_code, verification_url
from hub.store.models import Document

__all__ = ["Facsimile", "LANGUAGES", "for_document", "render"]

#: Lifecycles printed under the number: a paper whose document is no longer simply in force says so.
_IN_FORCE = {None, "", "issued"}


@dataclass(frozen=True)
class Facsimile:
    """A signed facsimile: the PDF, the verification address its QR code carries and the code printed beside it,
    the languages it is labelled in, and a file name for it."""

    pdf: bytes
    url: str
    code: str
    languages: tuple[str, ...]
    filename: str


def render(record: Any, *, issuing_country: str, number: str | None = None, certs_dir: Path | str, public_url: str,
           lifecycle: str | None = None, languages: Sequence[str] | None = None) -> Facsimile:
    """The facsimile of ``record`` (an SPS certificate or a CITES permit) issued by ``issuing_country``, signed
    with that authority's key in ``certs_dir``; its QR code leads to ``public_url``'s verification page.
    ``languages`` (of :data:`LANGUAGES`) overrides those the record carries."""
    chosen = tuple(languages) if languages else languages_for(_languages_in(record.model_dump(mode="json")))
    is_permit = isinstance(record, CITESPermit)
    number = number or str(getattr(record.permit_number if is_permit else record.certificate_number, "value", "") or "")
    code = verification_code(load_secret(Path(certs_dir) / SECRET_FILE), issuing_country=issuing_country, number=number)
    url = verification_url(public_url, number=number, code=code)
    sheet = permit_sheet(record, chosen) if is_permit else sheet_for(record)
    status = lifecycle if lifecycle not in _IN_FORCE else None
    title = " / ".join(label(sheet.titles[-1] if is_permit else sheet.titles[0], chosen))
    from hub.facsimile.page import draw  # fpdf2 and pyHanko (~37 MB) are loaded by the first facsimile made
    from hub.facsimile.signature import sign_pdf

    drawn = draw(sheet, languages=chosen, url=url, code=code, status=status, title=f"{title} {number}", author=sheet.subtitle)
    signed = sign_pdf(drawn.pdf, certs_dir=certs_dir, country=issuing_country, page=drawn.signature_page, box=drawn.signature_box,
                      reason=f"{number}: facsimile issued by the authority of {issuing_country}")
    return Facsimile(signed, url, code, chosen, f"{re.sub(r'[^A-Za-z0-9._-]+', '_', number) or 'document'}.pdf")


def for_document(document: Document, *, certs_dir: Path | str, public_url: str, languages: Sequence[str] | None = None) -> Facsimile:
    """The facsimile of a stored document, as its issuing authority prints it. :class:`InputError` when the hub
    holds no signing key of that authority (a document received from abroad is printed by its own authority) or
    when ``languages`` names one the facsimile does not speak."""
    unknown = [language for language in languages or () if language not in LANGUAGES]
    if unknown:
        raise InputError(f"no facsimile in {', '.join(unknown)}: the languages are {', '.join(LANGUAGES)}", where="lang")
    try:
        from hub.facsimile.signature import signing_files

        signing_files(certs_dir, document.issuing_country)
    except ConfigurationError:
        raise InputError(f"document {document.id} was issued by the authority of {document.issuing_country}, whose signing key this hub does not hold: "
                         "its facsimile is printed by that authority", where="id") from None
    family = for_kind(document.kind)
    if family is None:
        raise InputError(f"document {document.id} is of kind {document.kind}, which no family prints", where="id")
    record = family.from_data(document.record)
    return render(record, issuing_country=document.issuing_country, number=document.certificate_number, certs_dir=certs_dir,
                  public_url=public_url, lifecycle=document.lifecycle, languages=languages)


def _languages_in(data: Any) -> Iterator[str]:
    """Every ``language`` a record's texts carry (record JSON)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "language" and isinstance(value, str):
                yield value
            else:
                yield from _languages_in(value)
    elif isinstance(data, list):
        for value in data:
            yield from _languages_in(value)
