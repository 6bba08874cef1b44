"""The hub's one exception tree. Each error declares what it answers: its HTTP ``status`` on the API and the
``refusal`` code a counterpart is told when it refuses a document received from it (an ePhyto Hub failed receipt, a
point-to-point negative acknowledgement, an AS4 error). Nothing above this module switches on error types.

::

    HubError                            status  refusal
    ├── InputError                        422   INVALID_INPUT    bad input from a caller: nothing stored
    │   ├── HostileXMLError               400   HOSTILE_XML      DTD, entity, external reference, oversize
    │   ├── MalformedXMLError             400   MALFORMED_XML    not well-formed XML
    │   ├── UnknownDocumentError          422   UNKNOWN_DOCUMENT well-formed, but no document the hub reads
    │   ├── RecordError                   422   INVALID_RECORD   a record that breaks its model (every field path)
    │   ├── NoRouteError                  422   NO_ROUTE         no rule of the routing table matches the document
    │   ├── ConflictError                 409   DUPLICATE        a business or idempotency key reused for other content
    │   │   └── BoxesChanged              409   DUPLICATE        a PSSM completion changing a box filled at issue
    │   ├── PermissionDenied              403   NOT_ENTITLED     acting outside the caller's tenant
    │   └── NotFound                      404   UNKNOWN_REFERENCE no such object for this caller
    │       └── UnmatchedAnswer           404   UNMATCHED_ANSWER an answer naming no message of its counterpart
    │           └── ForeignAnswerer       403   NOT_ENTITLED     an answer from another authority than the message's
    ├── Unauthenticated                   401   NOT_AUTHENTICATED no credentials, or unknown ones
    ├── MappingError                      500   INTERNAL         a spec that cannot be applied (a programming fault)
    ├── ValidationFailed                  422   INVALID          SEVERE findings; carries the ValidationReport
    ├── SignatureError                    422   SIGNATURE_REFUSED a signature that must not be trusted
    │   ├── SignatureMissing
    │   ├── WeakAlgorithmError                                   SHA-1 or another algorithm the policy forbids
    │   ├── UntrustedCertificateError                            no chain to a trust anchor
    │   ├── SignatureInvalid                                     digest or value mismatch; wrapping ends here
    │   ├── WrongKeyUsage                                        a TLS certificate, or no signature usage
    │   └── NotEntitled                           NOT_ENTITLED   trusted, but not for this issuing authority
    ├── KeyMaterialError                  500   INTERNAL         a key or certificate that cannot be loaded
    ├── ConfigurationError                503   UNAVAILABLE      settings that cannot work, found at start-up
    ├── InvalidTransition                 409   INTERNAL         a message state change the model forbids
    ├── DeliveryError                     502   UNAVAILABLE      raised by connectors
    │   ├── TransientDeliveryError                               try again later (retry_after, when given)
    │   └── PermanentDeliveryError                               retrying cannot help
    └── EpixFault                         502   (its EPIX name)  a fault of the CITES permit exchange
                                                                 (connectors/cites_p2p/epix.py)

Retryability is in the type. Third-party exceptions (lxml, signxml, cryptography, zeep) are translated into this
tree where they cross into the hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class HubError(Exception):
    """Base of every error the hub raises on purpose; ``status`` is its HTTP status, ``refusal`` the code a
    counterpart is told when the hub refuses what it sent."""

    status: int = 500
    refusal: str = "INTERNAL"


class InputError(HubError):
    """The caller sent something the hub cannot take. ``where`` names the place (XPath, field path, file)."""

    status = 422
    refusal = "INVALID_INPUT"

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class HostileXMLError(InputError):
    """XML carrying a DTD, entity declarations or references, or exceeding the hub's size limits."""

    status = 400
    refusal = "HOSTILE_XML"


class MalformedXMLError(InputError):
    """Bytes that are not well-formed XML."""

    status = 400
    refusal = "MALFORMED_XML"


class UnknownDocumentError(InputError):
    """Well-formed XML whose root (or wrapped payload) is not a document kind the hub handles."""

    status = 422
    refusal = "UNKNOWN_DOCUMENT"


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one field of a record: ``path`` is dotted with list indexes, e.g. ``consignment.items[0].net_weight``."""

    path: str
    message: str


class RecordError(InputError):
    """A record that does not satisfy its model. Carries every problem, each with the field's path."""

    status = 422
    refusal = "INVALID_RECORD"

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        summary = "; ".join(f"{p.path}: {p.message}" for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"invalid record: {summary}{more}")


class ConflictError(InputError):
    """A submission that reuses a business key or ``Idempotency-Key`` for different content."""

    status = 409
    refusal = "DUPLICATE"


class PermissionDenied(InputError):
    """The caller is authenticated but acts outside its tenant (the issuing authority it belongs to)."""

    status = 403
    refusal = "NOT_ENTITLED"


class NotFound(InputError):
    """No such object visible to this caller."""

    status = 404
    refusal = "UNKNOWN_REFERENCE"


class UnmatchedAnswer(NotFound):
    """An answer that moves no message: it names nothing the hub sent to that counterpart, names it ambiguously, or
    comes from another authority than the one the message went to. Kept as unmatched, never applied."""

    refusal = "UNMATCHED_ANSWER"


class ForeignAnswerer(UnmatchedAnswer):
    """An answer about a message, from another authority than the one the message went to."""

    status = 403
    refusal = "NOT_ENTITLED"


class NoRouteError(InputError):
    """No rule of the routing table matches a document: the hub cannot tell where it goes."""

    refusal = "NO_ROUTE"

    def __init__(self, facts: Any) -> None:
        self.facts = facts
        super().__init__(f"no rule of the routing table matched the document ({facts.describe()})")


class BoxesChanged(ConflictError):
    """A simplified-procedure completion that would change boxes filled at issue: refused, each changed field named."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(f"a box filled at issue can never be changed; the completion changes {', '.join(fields)} (flagged as a possible fraud)", where=fields[0])
        self.fields = fields
        self.problems = [FieldProblem(path=field, message="filled at issue: it cannot be changed") for field in fields]


class Unauthenticated(HubError):
    """No credentials, or credentials the hub does not know."""

    status = 401
    refusal = "NOT_AUTHENTICATED"


class InvalidTransition(HubError):
    """A state change the model does not allow (a programming error or a stale update)."""

    status = 409


class MappingError(HubError):
    """A mapping spec that is inconsistent or cannot be applied."""


class ValidationFailed(HubError):
    """A document whose validation report has SEVERE findings."""

    status = 422
    refusal = "INVALID"

    def __init__(self, report: Any) -> None:
        self.report = report
        super().__init__(f"document is not valid: {len(report.severe)} SEVERE finding(s)")


class SignatureError(HubError):
    """A signature the hub refuses to trust."""

    status = 422
    refusal = "SIGNATURE_REFUSED"


class SignatureMissing(SignatureError):
    """The document carries no ds:Signature where one is required."""


class WeakAlgorithmError(SignatureError):
    """The signature uses an algorithm the signing policy forbids (e.g. SHA-1)."""


class UntrustedCertificateError(SignatureError):
    """The signing certificate does not chain to a configured trust anchor or pinned certificate."""


class SignatureInvalid(SignatureError):
    """The signature does not verify, or does not cover the document it claims to (signature wrapping)."""


class WrongKeyUsage(SignatureError):
    """The signer's certificate is not one for signing documents (a TLS certificate, a KeyUsage without signatures)."""


class NotEntitled(SignatureError):
    """The signer is trusted, but not to sign for this issuing authority or this family of documents."""

    refusal = "NOT_ENTITLED"


class KeyMaterialError(HubError):
    """A private key or certificate that cannot be read or does not fit its use."""


class ConfigurationError(HubError):
    """Configuration that cannot work; raised at start-up, never mid-flight."""

    status = 503
    refusal = "UNAVAILABLE"


class DeliveryError(HubError):
    """A delivery to a counterpart did not succeed.

    ``request`` and ``response`` keep the raw bytes of the failed attempt (None when nothing was sent or nothing
    came back), so the trace shows what went over the wire even when it went wrong.
    """

    status = 502
    refusal = "UNAVAILABLE"

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
