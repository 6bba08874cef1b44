"""XML namespaces exactly as the standards spell them (note the capital S in the QDT namespace)."""

from __future__ import annotations

RSM_SPS_CERTIFICATE = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"
RSM_SPS_ACKNOWLEDGEMENT = "urn:un:unece:uncefact:data:standard:SPSAcknowledgement:17"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
QDT = "urn:un:unece:uncefact:data:Standard:QualifiedDataType:21"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21"
CCTS = "urn:un:unece:uncefact:documentation:standard:CoreComponentsTechnicalSpecification:2"

EPHYTO_HUB = "http://ephyto.ippc.int/"
EPHYTO_HUB_ENTITIES = "http://ephyto.ippc.int/HUB.Entities"

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"

TRACES_CHED_SUBMISSION = "http://ec.europa.eu/tracesnt/certificate/ched/submission/v01"

XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"

CITES_EPERMIT = "urn:un:unece:uncefact:data:standard:CITESEPermit:2"
CITES_RAM_DRAFT = "urn:un:unece:uncefact:data:draft:ReusableAggregateBusinessInformationEntity:1"
#: Toolkit v1 permits (root ``CBFShip``), which the hub does not read.
CITES_CBFSHIP_V1 = "urn:un:unece:uncefact:data:draft:CBFShip:1"
#: The EPIX hub's SOAP interface (toolkit v2 messages), whose responses carry the permit.
CITES_DATA_EXCHANGE_V1 = "urn:CitesDataExchange/v1/"
CITES_DATA_EXCHANGE_V2 = "urn:CitesDataExchange/v2/"

#: Prefixes the hub writes for SPSCertificate 17 documents.
SPS_PREFIXES: dict[str, str] = {"rsm": RSM_SPS_CERTIFICATE, "ram": RAM, "udt": UDT, "qdt": QDT}

#: Prefixes the hub writes for CITESEPermit 2 documents.
CITES_PREFIXES: dict[str, str] = {"rsm": CITES_EPERMIT, "ram": CITES_RAM_DRAFT}
