"""CITES permits point to point with foreign management authorities, EPIX style: the client of the exchange
(:class:`~connectors.cites_p2p.client.CitesExchangeClient`) and a sandbox foreign authority that uses it
(:func:`~connectors.cites_p2p.sandbox.create_cites_authority_sandbox`). The hub's side is :mod:`hub.cites`; the
protocol is in README.md beside this file."""
