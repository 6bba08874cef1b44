"""An eDelivery AS4 access point (OASIS ebMS3 / AS4 profile, CEF eDelivery AS4 1.15): see README.md.

:class:`As4Connector` and its P-Mode :class:`As4Config`; the protocol without I/O is in :mod:`connectors.as4.msh`
(built on :mod:`~connectors.as4.packaging`, :mod:`~connectors.as4.ebms`, :mod:`~connectors.as4.signature`,
:mod:`~connectors.as4.encryption`, :mod:`~connectors.as4.compression`, :mod:`~connectors.as4.receipts`), the sandbox
access point in :mod:`connectors.as4.sandbox`, ``hub as4 inspect`` in :mod:`connectors.as4.inspect`.
"""

from connectors.as4.config import As4Config
from connectors.as4.connector import As4Connector

__all__ = ["As4Config", "As4Connector"]
