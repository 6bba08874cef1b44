"""CITES business rules that need the store: the simplified re-export procedure (PSSM) — approvals, completion at
the sale, boxes that may never change (``pssm.py``).

The permit exchange with foreign management authorities (EPIX style: its SOAP codec, the hub's exchange endpoint,
the client and the sandbox) is the ``connectors/cites_p2p`` connector's; the CITES operations of the broker are in
:mod:`hub.broker.permits`.
"""
