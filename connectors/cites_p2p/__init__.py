"""CITES permits point to point with foreign management authorities, EPIX style (the protocol is in README.md beside
this file)::

    epix.py       the ``urn:CitesDataExchange/v2/`` SOAP messages: requests, responses, faults (pure, no I/O)
    exchange.py   PermitExchange: who may fetch which permit, in EPIX form; quantities confirmed at import; tracing
    service.py    create_exchange_app(): the hub's own SOAP endpoint, the caller taken from its TLS client certificate
    client.py     CitesExchangeClient: the hub (or a sandbox) fetching a partner's permit
    sandbox.py    a foreign management authority that fetches permits from the hub and confirms quantities
"""
