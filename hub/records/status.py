"""Status models shared by every document kind.

``DocumentStatus`` is the status a document *carries* (UNCL 4405, ``ram:StatusCode``): an issuing system sends an
``issued`` certificate, a ``replaced`` or ``withdrawn`` one later. The lifecycle a document goes through in the hub
(issued → replaced / withdrawn / used / expired → cancellation requested → cancelled) is a separate model that the
broker keeps; transport states of messages are separate again.
"""

from __future__ import annotations

from enum import Enum


class DocumentStatus(str, Enum):
    """UNCL 4405 status codes used on SPS certificates and CITES permits (name → code in :data:`STATUS_CODES`)."""

    TO_BE_DONE = "to_be_done"
    APPROVED = "approved"
    WITHDRAWN = "withdrawn"
    REJECTED = "rejected"
    APPROVAL_PENDING = "approval_pending"
    REPLACED = "replaced"
    DRAFT = "draft"
    EXTRACTED = "extracted"
    CANCELLED = "cancelled"
    ISSUED = "issued"
    PENDING = "pending"
    PARTIAL = "partial"

    @property
    def code(self) -> str:
        return STATUS_CODES[self]

    @classmethod
    def from_code(cls, code: str) -> "DocumentStatus":
        """The status for a UNCL 4405 code; ``KeyError`` for a code the hub does not handle."""
        return _BY_CODE[code.strip()]


STATUS_CODES: dict[DocumentStatus, str] = {
    DocumentStatus.TO_BE_DONE: "1",
    DocumentStatus.APPROVED: "39",
    DocumentStatus.WITHDRAWN: "40",
    DocumentStatus.REJECTED: "41",
    DocumentStatus.APPROVAL_PENDING: "42",
    DocumentStatus.REPLACED: "44",
    DocumentStatus.DRAFT: "47",
    DocumentStatus.EXTRACTED: "55",
    DocumentStatus.CANCELLED: "64",
    DocumentStatus.ISSUED: "70",
    DocumentStatus.PENDING: "97",
    DocumentStatus.PARTIAL: "122",
}

_BY_CODE = {code: status for status, code in STATUS_CODES.items()}
