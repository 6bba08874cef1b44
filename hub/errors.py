"""The hub's one exception tree.

::

    HubError
    ├── InputError                     bad input from a caller: a 4xx, nothing stored
    │   ├── HostileXMLError            DTD, entity, external reference, oversize: refused before parsing
    │   ├── MalformedXMLError          not well-formed XML
    │   ├── UnknownDocumentError       well-formed, but not a document kind the hub knows
    │   ├── RecordError                a record that breaks its model; carries every (field path, message)
    │   ├── ConflictError              the same business or idempotency key with other content (409)
    │   ├── PermissionDenied           an API key acting outside its tenant (403)
    │   └── NotFound                   no such document, message or subscription for this caller (404)
    ├── MappingError                   a spec that cannot be applied (a programming or configuration fault)
    ├── ValidationFailed               a document with SEVERE findings; carries the ValidationReport
    ├── SignatureError                 a signature that must not be trusted
    │   ├── SignatureMissing
    │   ├── WeakAlgorithmError         SHA-1 or another algorithm the policy forbids
    │   ├── UntrustedCertificateError  the signer's certificate does not chain to a trust anchor
    │   └── SignatureInvalid           digest or signature value does not match; wrapping attempts end here
    ├── KeyMaterialError               a key or certificate that cannot be loaded
    ├── ConfigurationError             settings that cannot work, found at start-up
    ├── DeliveryError                  raised by connectors
    │   ├── TransientDeliveryError     try again later (retry_after seconds, when the counterpart said)
    │   └── PermanentDeliveryError     retrying cannot help
    └── EpixFault                      a fault of the CITES permit exchange, with its EPIX error name
                                       (connectors/cites_p2p/epix.py, where the exchange's SOAP lives)

Retryability is in the type. Third-party exceptions (lxml, signxml, cryptography, zeep) are translated into this
tree where they cross into the hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class InputError(HubError):
    """The caller sent something the hub cannot take. ``where`` names the place (XPath, field path, file)."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class HostileXMLError(InputError):
    """XML carrying a DTD, entity declarations or references, or exceeding the hub's size limits."""


class MalformedXMLError(InputError):
    """Bytes that are not well-formed XML."""


class UnknownDocumentError(InputError):
    """Well-formed XML whose root (or wrapped payload) is not a document kind the hub handles."""


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one field of a record: ``path`` is dotted with list indexes, e.g. ``consignment.items[0].net_weight``."""

    path: str
    message: str


class RecordError(InputError):
    """A record that does not satisfy its model. Carries every problem, each with the field's path."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        summary = "; ".join(f"{p.path}: {p.message}" for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"invalid record: {summary}{more}")


class ConflictError(InputError):
    """A submission that reuses a business key or ``Idempotency-Key`` for different content."""


class PermissionDenied(InputError):
    """The caller is authenticated but acts outside its tenant (the issuing authority it belongs to)."""


class NotFound(InputError):
    """No such object visible to this caller."""


class MappingError(HubError):
    """A mapping spec that is inconsistent or cannot be applied."""


class ValidationFailed(HubError):
    """A document whose validation report has SEVERE findings."""

    def __init__(self, report: Any) -> None:
        self.report = report
        super().__init__(f"document is not valid: {len(report.severe)} SEVERE finding(s)")


class SignatureError(HubError):
    """A signature the hub refuses to trust."""


class SignatureMissing(SignatureError):
    """The document carries no ds:Signature where one is required."""


class WeakAlgorithmError(SignatureError):
    """The signature uses an algorithm the signing policy forbids (e.g. SHA-1)."""


class UntrustedCertificateError(SignatureError):
    """The signing certificate does not chain to a configured trust anchor or pinned certificate."""


class SignatureInvalid(SignatureError):
    """The signature does not verify, or does not cover the document it claims to (signature wrapping)."""


class KeyMaterialError(HubError):
    """A private key or certificate that cannot be read or does not fit its use."""


class ConfigurationError(HubError):
    """Configuration that cannot work; raised at start-up, never mid-flight."""


class DeliveryError(HubError):
    """A delivery to a counterpart did not succeed.

    ``request`` and ``response`` keep the raw bytes of the failed attempt (None when nothing was sent or nothing
    came back), so the trace shows what went over the wire even when it went wrong.
    """

    def __init__(self, message: str, *, request: bytes | None = None, response: bytes | None = None) -> None:
        self.request = request
        self.response = response
        super().__init__(message)


class TransientDeliveryError(DeliveryError):
    """Try again later; ``retry_after`` is the counterpart's hint in seconds, when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        request: bytes | None = None,
        response: bytes | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, request=request, response=response)


class PermanentDeliveryError(DeliveryError):
    """The counterpart refused the message for good; retrying cannot help."""
