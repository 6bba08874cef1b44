"""EU TRACES-NT: CHEDs submitted for decision over SOAP 1.1 with WS-Security, decisions polled with TRACES's signed
CHED as evidence, CHEDs read back, and the customs CSW-CERTEX quantity calls with a separate account (see README.md).

:class:`TracesNtConnector` and its :class:`TracesNtConfig`; the WS-Security header and its check are in
:mod:`connectors.traces_nt.wssecurity`, the messages in :mod:`connectors.traces_nt.protocol`, and the sandbox that
plays TRACES-NT in :mod:`connectors.traces_nt.sandbox` (its ChedCertificateServiceV2 port in
:mod:`connectors.traces_nt.certificates`, its CSW-CERTEX port in :mod:`connectors.traces_nt.customs`).
"""

from connectors.traces_nt.config import TracesNtConfig
from connectors.traces_nt.connector import TracesNtConnector

__all__ = ["TracesNtConfig", "TracesNtConnector"]
