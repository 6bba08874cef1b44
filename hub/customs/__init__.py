"""The hub as the certificate registry customs asks at clearance: GUN document codes, the quantity ledger, and the
services that check, reserve, write off and release quantities (REST for every code, CSW-CERTEX SOAP for CHEDs)."""
