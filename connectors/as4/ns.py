"""Namespaces and URIs of ebMS3, AS4, WS-Security and XML Signature/Encryption, spelt as the standards spell them.

Sources: ../shared/standards/FACTS.md § "AS4 / ebMS3 (eDelivery)" (OASIS AS4 Profile 1.0, CEF eDelivery AS4 1.15).
"""

from __future__ import annotations

# --- SOAP -----------------------------------------------------------------------------------------------------------
S12 = "http://www.w3.org/2003/05/soap-envelope"
S11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_NS = {"1.2": S12, "1.1": S11}
SOAP_CONTENT_TYPE = {"1.2": "application/soap+xml", "1.1": "text/xml"}
#: The prefix the hub writes for each SOAP namespace (and the SOAP namespaces themselves, as keys).
SOAP_PREFIX = {S12: "S12", S11: "S11"}

# --- ebMS3 ----------------------------------------------------------------------------------------------------------
EB = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
EBBP = "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0"
#: Multi-hop (ebMS3 Part 2): the AS4 profile's examples use the first, the Part 2 XSD and real EESSI traffic the second.
EBINT = ("http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/multihop/200902/",
         "http://docs.oasis-open.org/ebxml-msg/ns/ebms/v3.0/multihop/200902/")
WSA = "http://www.w3.org/2005/08/addressing"
NEXT_MSH = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/part2/200811/nextmsh"

DEFAULT_MPC = EB + "defaultMPC"
ROLE_INITIATOR = EB + "initiator"
ROLE_RESPONDER = EB + "responder"
ROLE_DEFAULT = EB + "defaultRole"
TEST_SERVICE = EB + "service"
TEST_ACTION = EB + "test"
MEP_ONE_WAY = EB + "oneWay"
MEP_TWO_WAY = EB + "twoWay"
BINDING_PUSH = EB + "push"
BINDING_PULL = EB + "pull"
ACTION_ONE_WAY_RECEIPT = EB + "oneWay.receipt"
ACTION_ONE_WAY_ERROR = EB + "oneWay.error"
PARTY_TYPE_UNREGISTERED = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"

GZIP = "application/gzip"

# --- WS-Security ----------------------------------------------------------------------------------------------------
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
BASE64_BINARY = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
X509_PKIPATH = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509PKIPathv1"
X509_SKI = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier"
SWA_CONTENT_SIGNATURE = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Signature-Transform"
SWA_COMPLETE_SIGNATURE = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Complete-Signature-Transform"
SWA_CIPHERTEXT = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Ciphertext-Transform"
SWA_CONTENT_ONLY = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Only"
SWA_COMPLETE = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Complete"

# --- XML Signature / Encryption -------------------------------------------------------------------------------------
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"

AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
RSA_OAEP = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
RSA_OAEP_MGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
MGF1_SHA1 = "http://www.w3.org/2009/xmlenc11#mgf1sha1"
MGF1_SHA256 = "http://www.w3.org/2009/xmlenc11#mgf1sha256"
MGF1_SHA384 = "http://www.w3.org/2009/xmlenc11#mgf1sha384"
MGF1_SHA512 = "http://www.w3.org/2009/xmlenc11#mgf1sha512"

#: Prefixes used when the hub writes an envelope (reading never depends on prefixes).
PREFIXES = {"S12": S12, "eb": EB, "wsse": WSSE, "wsu": WSU, "ds": DS, "xenc": XENC, "xenc11": XENC11, "ebbp": EBBP}
