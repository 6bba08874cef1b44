"""The IPPC ePhyto Hub (see README.md): :class:`EphytoHubConnector` and its :class:`EphytoHubConfig`.

Our own WSDL of the Hub's ``DeliveryService`` is ``wsdl/DeliveryService.wsdl``; the sandbox that plays the Hub is
:func:`connectors.ephyto_hub.sandbox.create_ephyto_hub_sandbox` (run it with :mod:`connectors.serving`).
"""

from connectors.ephyto_hub.config import EphytoHubConfig
from connectors.ephyto_hub.connector import EphytoHubConnector, HUBTrackingInfo, ack_from_tracking

__all__ = ["EphytoHubConfig", "EphytoHubConnector", "HUBTrackingInfo", "ack_from_tracking"]
