"""The PDF signature of the issuing authority on its facsimile (pyHanko): a PAdES signature with the authority's
document-signing key and certificate (``certs_dir/signing/<CC>.key`` and ``.pem``, the very identity that signs its
XML documents), the CA certificate embedded for the chain, and a visible signature in the sheet's signature box. A
PDF reader that trusts the CA shows it valid; any change to the signed bytes breaks it."""

from __future__ import annotations

import io
from pathlib import Path

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.stamp import TextStampStyle

from hub.errors import ConfigurationError

SIGNATURE_FIELD = "IssuingAuthority"
#: What the visible signature says (pyHanko fills in the signer's name and the signing time); plain, no artwork.
STAMP = TextStampStyle(stamp_text="Digitally signed by / Signé électroniquement par\n%(signer)s\n%(ts)s", border_width=1,
                       text_box_style=TextBoxStyle(font_size=7), timestamp_format="%Y-%m-%d %H:%M:%S %Z")


def signing_files(certs_dir: Path | str, country: str) -> tuple[Path, Path, list[Path]]:
    """The key, certificate and chain files of ``country``'s issuing authority; :class:`ConfigurationError` when
    the hub holds no key for it."""
    folder = Path(certs_dir) / "signing"
    key, cert = folder / f"{country}.key", folder / f"{country}.pem"
    if not (key.is_file() and cert.is_file()):
        raise ConfigurationError(f"no signing key for the issuing authority of {country} in {folder}: the facsimile cannot be signed")
    ca = Path(certs_dir) / "ca.pem"
    return key, cert, [ca] if ca.is_file() else []


def sign_pdf(pdf: bytes, *, certs_dir: Path | str, country: str, page: int, box: tuple[int, int, int, int], reason: str, location: str = "") -> bytes:
    """``pdf`` signed by the issuing authority of ``country``, the signature shown in ``box`` (points) of ``page``."""
    key, cert, chain = signing_files(certs_dir, country)
    try:
        signer = signers.SimpleSigner.load(str(key), str(cert), ca_chain_files=[str(p) for p in chain])
    except Exception as exc:  # pyHanko and cryptography raise many kinds for a file that cannot be read
        raise ConfigurationError(f"the signing key of {country} in {key.parent} cannot be loaded: {exc}") from None
    if signer is None:
        raise ConfigurationError(f"the signing key of {country} in {key.parent} cannot be loaded")
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    metadata = signers.PdfSignatureMetadata(field_name=SIGNATURE_FIELD, reason=reason, location=location or None, md_algorithm="sha256")
    spec = fields.SigFieldSpec(sig_field_name=SIGNATURE_FIELD, on_page=page, box=box)
    output = io.BytesIO()
    signers.PdfSigner(metadata, signer=signer, stamp_style=STAMP, new_field_spec=spec).sign_pdf(writer, output=output)
    return output.getvalue()
