"""The hub as the certificate registry customs asks at clearance: GUN document codes, the quantity ledger, and the
registry that checks, reserves, writes off and releases quantities (REST for every code; for CHEDs, TRACES-NT's
CSW-CERTEX too, through any connector that is a :class:`~hub.customs.registry.ChedQuantities`); the operations sent
to TRACES-NT, recorded before each call (``operations``), and the reconciliation of the two ledgers (``reconcile``).
Each step on the hub's own ledger is one transaction of a few SQLAlchemy Core statements on a bare connection
(``step``, ``sheet``)."""
