"""Trade-document interoperability hub.

Issuing systems hand the hub records; the hub renders them as UN/CEFACT SPSCertificate 17 (or CITES ePermit) XML,
validates, signs, routes and delivers them, and parses what arrives from abroad back into records.
"""

from hub import redaction

__version__ = "0.1.0"

# Every process that uses the hub masks secrets in its log records and escapes line breaks in their messages.
redaction.install()
