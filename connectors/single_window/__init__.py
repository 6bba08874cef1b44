"""A national single window reached through the IOP ``EnvioCertificadoFitosanitario`` SOAP service (see README.md).

:class:`SingleWindowConnector` and its :class:`SingleWindowConfig`; the envelopes are built and read by the pure
functions of :mod:`connectors.single_window.protocol`, our WSDL and XSDs are in ``wsdl/``, and a local single window
to test against is in :mod:`connectors.single_window.sandbox`. Border tracking events (our own
``consultaEventosSeguimiento`` operation, not part of the IOP) are built and read by
:mod:`connectors.single_window.tracking` and played by the sandbox's :mod:`connectors.single_window.border`.
"""

from connectors.single_window.config import SingleWindowConfig
from connectors.single_window.connector import SingleWindowConnector

__all__ = ["SingleWindowConfig", "SingleWindowConnector"]
