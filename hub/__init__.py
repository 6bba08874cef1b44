"""Trade-document interoperability hub.

Issuing systems hand the hub records; the hub renders them as UN/CEFACT SPSCertificate 17 (or CITES ePermit) XML,
validates, signs, routes and delivers them, and parses what arrives from abroad back into records.
"""

__version__ = "0.1.0"
