"""CITES permits exchanged point to point with foreign management authorities, EPIX style (issue 5).

::

    epix.py       the ``urn:CitesDataExchange/v2/`` SOAP messages: requests, responses, faults (pure, no I/O)
    exchange.py   PermitExchange: who may fetch which permit, in EPIX form; quantities confirmed at import; tracing
    service.py    create_exchange_app(): the SOAP endpoint, the caller taken from its TLS client certificate
    pssm.py       the simplified re-export procedure: approvals, completion at the sale, boxes that may not change

The client and the sandbox that plays a foreign management authority are in ``connectors/cites_p2p``.
"""
