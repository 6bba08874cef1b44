"""ebMS3 errors (EBMS:0001 … EBMS:0303) and the exception that carries one.

Every problem found in an AS4 message is an :class:`As4Error` holding the :class:`EbmsError` it is answered with, so
the code that reads a message never decides how a failure is reported: the access point turns it into an
``eb:Error`` signal, the command line into a reason, the connector into a delivery outcome.
"""

from __future__ import annotations

import enum

from hub.errors import InputError


class EbmsError(enum.Enum):
    """The ebMS3 Core (§6.7) and AS4 profile (§3.6) error codes: (code, short description, category, severity)."""

    VALUE_NOT_RECOGNIZED = ("EBMS:0001", "ValueNotRecognized", "Content", "failure")
    FEATURE_NOT_SUPPORTED = ("EBMS:0002", "FeatureNotSupported", "Content", "warning")
    VALUE_INCONSISTENT = ("EBMS:0003", "ValueInconsistent", "Content", "failure")
    OTHER = ("EBMS:0004", "Other", "Content", "failure")
    CONNECTION_FAILURE = ("EBMS:0005", "ConnectionFailure", "Communication", "failure")
    EMPTY_MPC = ("EBMS:0006", "EmptyMessagePartitionChannel", "Communication", "warning")
    MIME_INCONSISTENCY = ("EBMS:0007", "MimeInconsistency", "Unpackaging", "failure")
    FEATURE_NOT_SUPPORTED_INCONSISTENCY = ("EBMS:0008", "FeatureNotSupportedInconsistency", "Unpackaging", "failure")
    INVALID_HEADER = ("EBMS:0009", "InvalidHeader", "Unpackaging", "failure")
    PROCESSING_MODE_MISMATCH = ("EBMS:0010", "ProcessingModeMismatch", "Processing", "failure")
    EXTERNAL_PAYLOAD_ERROR = ("EBMS:0011", "ExternalPayloadError", "Content", "failure")
    FAILED_AUTHENTICATION = ("EBMS:0101", "FailedAuthentication", "Processing", "failure")
    FAILED_DECRYPTION = ("EBMS:0102", "FailedDecryption", "Processing", "failure")
    POLICY_NONCOMPLIANCE = ("EBMS:0103", "PolicyNoncompliance", "Processing", "failure")
    DYSFUNCTIONAL_RELIABILITY = ("EBMS:0201", "DysfunctionalReliability", "Processing", "failure")
    DELIVERY_FAILURE = ("EBMS:0202", "DeliveryFailure", "Communication", "failure")
    MISSING_RECEIPT = ("EBMS:0301", "MissingReceipt", "Communication", "failure")
    INVALID_RECEIPT = ("EBMS:0302", "InvalidReceipt", "Communication", "failure")
    DECOMPRESSION_FAILURE = ("EBMS:0303", "DecompressionFailure", "Communication", "failure")

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def short_description(self) -> str:
        return self.value[1]

    @property
    def category(self) -> str:
        return self.value[2]

    @property
    def severity(self) -> str:
        return self.value[3]

    @classmethod
    def from_code(cls, code: str) -> EbmsError | None:
        """The error named by ``code`` (``EBMS:0101``; the bare ``0101`` of old ebMS3 examples too), or None."""
        text = (code or "").strip()
        if not text.startswith("EBMS:"):
            text = "EBMS:" + text
        return _BY_CODE.get(text)


_BY_CODE = {member.code: member for member in EbmsError}


class As4Error(InputError):
    """A problem in an AS4 message, with the ebMS3 error it is reported as.

    ``where`` names the place (an XPath-like path, a MIME part's Content-ID); ``ref_to_message_id`` is the
    ``eb:MessageId`` of the message in error when it could be read.
    """

    def __init__(self, error: EbmsError, message: str, *, where: str | None = None,
                 ref_to_message_id: str | None = None) -> None:
        super().__init__(message, where=where)
        self.error = error
        self.ref_to_message_id = ref_to_message_id

    @property
    def code(self) -> str:
        return self.error.code
