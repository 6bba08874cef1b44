"""The hub as the certificate registry customs asks at clearance: GUN document codes, the quantity ledger, and the
registry that checks, reserves, writes off and releases quantities (REST for every code; for CHEDs, TRACES-NT's
CSW-CERTEX first, through any connector that is a :class:`~hub.customs.registry.ChedQuantities`)."""
