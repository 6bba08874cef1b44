"""Point-to-point delivery to a foreign authority: signed XML over HTTPS with mutual TLS (see README.md).

:class:`P2PConnector` and its :class:`P2PConfig`; the wire protocol's pure functions are in
:mod:`connectors.p2p.protocol`, the sandbox that plays a foreign authority in :mod:`connectors.p2p.sandbox`, and the
ways to run it in :mod:`connectors.serving`.
"""

from connectors.p2p.config import P2PConfig
from connectors.p2p.connector import P2PConnector

__all__ = ["P2PConfig", "P2PConnector"]
