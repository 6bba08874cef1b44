"""What a sandbox playing a receiving authority checks of a document before it accepts it: the issuer's signature
against the trust store, then the document's validity. Shared by the sandboxes that receive certificates (the
point-to-point authority, the AS4 access point), so that they refuse for the same reasons with the same codes."""

from __future__ import annotations

from lxml import etree

from hub.errors import InputError, SignatureError, SignatureMissing
from hub.mapping.cites_permit import is_permit
from hub.signing import Verifier
from hub.validation.validator import validate_certificate, validate_permit


def check_signed_document(verifier: Verifier, body: bytes) -> tuple[etree._Element | None, tuple[str, str] | None]:
    """``(what was signed, None)`` for a document to accept; ``(what was signed or None, (reason code, text))`` for
    one to refuse: ``SIGNATURE_MISSING``, ``SIGNATURE_INVALID``, ``UNKNOWN_DOCUMENT`` or ``VALIDATION_FAILED``."""
    try:
        verified = verifier.verify(body)
    except SignatureMissing as exc:
        return None, ("SIGNATURE_MISSING", str(exc))
    except SignatureError as exc:
        return None, ("SIGNATURE_INVALID", str(exc))
    try:
        validate = validate_permit if is_permit(verified.signed_root) else validate_certificate
        validated = validate(verified.signed_root, source="signed document")
    except InputError as exc:
        return verified.signed_root, ("UNKNOWN_DOCUMENT", str(exc))
    severe = validated.report.severe
    if severe:
        first = severe[0]
        return verified.signed_root, ("VALIDATION_FAILED", f"{first.xpath}: {first.message_en} ({len(severe)} severe finding(s))")
    return verified.signed_root, None
