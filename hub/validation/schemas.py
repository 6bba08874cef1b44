"""XML Schema validation: the hub's own schemas (compiled once), the IPPC Hub's WSDL schemas, and schema findings.

``load_schema`` compiles the profiles the hub authors in ``xsd/`` (see ``xsd/SOURCES.md``); ``schema_from_wsdl``
compiles every ``xs:schema`` embedded in a WSDL's ``wsdl:types`` into one schema (the IPPC Hub's own restricted
SPSCertificate profile and envelope); ``schema_findings`` validates an element and turns every schema error into a
:class:`~hub.report.Finding` with a prefixed XPath (``rsm``/``ram``/``udt``), English and French text.
``cites_permit_findings`` does the same for a CITES ePermit (CITESEPermit 2), whether its root is in the
CITESEPermit namespace (as the hub renders it) or in none (as the EPIX hub writes it).
Nothing here reaches the network: imports resolve to local files or to schemas held in memory.
"""

from __future__ import annotations

import functools
import re
import threading
from copy import deepcopy
from pathlib import Path

from lxml import etree

from hub.errors import ConfigurationError
from hub.namespaces import CITES_EPERMIT, CITES_RAM_DRAFT, QDT, RAM, RSM_SPS_ACKNOWLEDGEMENT, RSM_SPS_CERTIFICATE, UDT
from hub.standards import PROJECT_ROOT
from hub.report import Area, Finding, Severity
from hub.xmlpath import element_xpath
from hub.xmlsafe import parse_xml

XSD_DIR = PROJECT_ROOT / "xsd"

#: Schema names accepted by :func:`load_schema`, and their file under ``xsd/``.
SCHEMA_FILES: dict[str, str] = {
    "SPSCertificate": "SPSCertificate_17p0.xsd",
    "SPSAcknowledgement": "SPSAcknowledgement_17p0.xsd",
    "HubEnvelope": "ephyto-hub/HUB.Entities.xsd",
    # CITES toolkit v2 ePermit: the namespaced root only (what the hub renders), and the same plus EPIX's
    # un-namespaced root (what the EPIX hub sends). Versioned: toolkit v1 (CBFShip) and v3 are other schemas.
    "CITESEPermit2": "CITESEPermit_2p0.xsd",
    "CITESEPermit2EPIX": "CITESEPermit_2p0_epix_root.xsd",
}

#: Prefixes used in finding XPaths and messages (URI → prefix).
FINDING_PREFIXES: dict[str, str] = {
    RSM_SPS_CERTIFICATE: "rsm",
    RSM_SPS_ACKNOWLEDGEMENT: "rsm",
    RAM: "ram",
    UDT: "udt",
    QDT: "qdt",
    CITES_EPERMIT: "rsm",
    CITES_RAM_DRAFT: "ram",
}

#: The root of a CITES permit as the hub renders it, and as the EPIX hub writes it (no namespace).
CITES_PERMIT_ROOT = f"{{{CITES_EPERMIT}}}CITESEPermit"
EPIX_CITES_PERMIT_ROOT = "CITESEPermit"

_XS = "http://www.w3.org/2001/XMLSchema"
_WSDL = "http://schemas.xmlsoap.org/wsdl/"
_WSDL_TYPES_BASE = "wsdl-types:///"

# An XMLSchema object keeps one error log per instance, cleared at each validation: concurrent validations with
# the same cached schema would mix their errors.
_VALIDATION_LOCK = threading.Lock()


def _schema_parser(resolver: etree.Resolver | None = None) -> etree.XMLParser:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False, remove_comments=True)
    if resolver is not None:
        parser.resolvers.add(resolver)
    return parser


def _compile(document: etree._ElementTree, source: str) -> etree.XMLSchema:
    try:
        return etree.XMLSchema(document)
    except etree.XMLSchemaParseError as exc:
        raise ConfigurationError(f"schema {source} does not compile: {exc}") from None


_per_thread = threading.local()


def load_schema(name: str) -> etree.XMLSchema:
    """The hub's own compiled schema called ``name`` (a key of :data:`SCHEMA_FILES`: "SPSCertificate",
    "SPSAcknowledgement", "HubEnvelope", "CITESEPermit2" or "CITESEPermit2EPIX").

    Compiled from ``xsd/`` once per thread: an lxml schema keeps its error log on itself, so threads must not share
    one, and libxml2 may not compile the same schema in two threads at once. Imports between our files resolve
    through relative schemaLocations. Raises :class:`~hub.errors.ConfigurationError` for an unknown name or a schema
    file that is missing or broken.
    """
    cache = _per_thread.__dict__.setdefault("schemas", {})
    if name not in cache:
        with _COMPILING:
            cache[name] = _load_schema(name)
    return cache[name]


_COMPILING = threading.Lock()


def _load_schema(name: str) -> etree.XMLSchema:
    try:
        path = XSD_DIR / SCHEMA_FILES[name]
    except KeyError:
        raise ConfigurationError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_FILES)}") from None
    if not path.is_file():
        raise ConfigurationError(f"schema file missing: {path}")
    return _compile(etree.parse(str(path), _schema_parser()), str(path))


class _InMemorySchemas(etree.Resolver):
    """Serves schema documents held in memory under synthetic ``wsdl-types:///`` URLs."""

    def __init__(self, documents: dict[str, bytes]) -> None:
        super().__init__()
        self._documents = documents

    def resolve(self, url, pubid, context):  # noqa: ANN001 - lxml's Resolver signature
        document = self._documents.get(url)
        return self.resolve_string(document, context, base_url=url) if document is not None else None


def schema_from_wsdl(path: str | Path) -> etree.XMLSchema:
    """One schema compiled from all ``xs:schema`` elements in the ``wsdl:types`` of the WSDL at ``path``.

    The embedded schemas import each other by namespace only; each is served from memory under a synthetic URL
    and a wrapper schema imports every namespace. Cached by resolved path. Raises
    :class:`~hub.errors.ConfigurationError` when the file is missing, holds no schema, or does not compile.
    """
    return _wsdl_schema(str(Path(path).resolve()))


@functools.cache
def _wsdl_schema(path: str) -> etree.XMLSchema:
    try:
        wsdl = parse_xml(Path(path).read_bytes(), source=path)
    except OSError as exc:
        raise ConfigurationError(f"cannot read WSDL {path}: {exc.strerror}") from None
    embedded = wsdl.findall(f"{{{_WSDL}}}types/{{{_XS}}}schema")
    if not embedded:
        raise ConfigurationError(f"no xs:schema in the wsdl:types of {path}")

    by_namespace: dict[str | None, list[etree._Element]] = {}
    for schema in embedded:
        by_namespace.setdefault(schema.get("targetNamespace"), []).append(schema)
    url_of = {namespace: f"{_WSDL_TYPES_BASE}ns{index}.xsd" for index, namespace in enumerate(by_namespace)}

    documents: dict[str, bytes] = {}
    for namespace, parts in by_namespace.items():
        part_urls = [f"{url_of[namespace]}.part{index}" for index in range(len(parts))]
        for part, url in zip(parts, part_urls):
            documents[url] = etree.tostring(_standalone(part, url_of))
        if len(parts) == 1:
            documents[url_of[namespace]] = documents.pop(part_urls[0])
        else:
            documents[url_of[namespace]] = etree.tostring(_including(namespace, part_urls))

    parser = _schema_parser(_InMemorySchemas(documents))
    wrapper = etree.fromstring(etree.tostring(_importing(url_of)), parser, base_url=f"{_WSDL_TYPES_BASE}wrapper.xsd")
    return _compile(wrapper.getroottree(), path)


def _standalone(schema: etree._Element, url_of: dict[str | None, str]) -> etree._Element:
    """A copy of an embedded schema carrying every in-scope namespace, its imports pointed at our URLs."""
    copy = etree.Element(schema.tag, attrib=dict(schema.attrib), nsmap=schema.nsmap)
    copy.extend(deepcopy(child) for child in schema)
    for imported in copy.findall(f"{{{_XS}}}import"):
        namespace = imported.get("namespace")
        if namespace in url_of:
            imported.set("schemaLocation", url_of[namespace])
    return copy


def _including(namespace: str | None, part_urls: list[str]) -> etree._Element:
    """A schema that gathers several embedded schemas of one target namespace."""
    schema = etree.Element(f"{{{_XS}}}schema", nsmap={"xs": _XS})
    if namespace is not None:
        schema.set("targetNamespace", namespace)
    for url in part_urls:
        etree.SubElement(schema, f"{{{_XS}}}include", schemaLocation=url)
    return schema


def _importing(url_of: dict[str | None, str]) -> etree._Element:
    """The wrapper schema: imports every namespace the WSDL embeds."""
    wrapper = etree.Element(f"{{{_XS}}}schema", nsmap={"xs": _XS})
    for namespace, url in url_of.items():
        imported = etree.SubElement(wrapper, f"{{{_XS}}}import", schemaLocation=url)
        if namespace is not None:
            imported.set("namespace", namespace)
    return wrapper


def schema_findings(schema: etree.XMLSchema, root_element: etree._Element | etree._ElementTree) -> list[Finding]:
    """Validate ``root_element`` against ``schema``; one SEVERE ``Schema`` finding per schema error (none if valid).

    ``root_element`` may sit inside a larger document (e.g. an SPSCertificate in a SOAP body): it is validated as
    if it were the document root, and XPaths start at it, e.g.
    ``/rsm:SPSCertificate/rsm:SPSConsignment/ram:ConsignorSPSParty/ram:Name``, whatever prefixes the document uses.
    """
    root = root_element.getroot() if isinstance(root_element, etree._ElementTree) else root_element
    with _VALIDATION_LOCK:
        valid = schema.validate(root)
        errors = list(schema.error_log)
    if valid:
        return []
    prefixes = _document_prefixes(root)
    findings = []
    for error in errors:
        message_en = _clean_message(error.message)
        findings.append(
            Finding(
                xpath=_error_xpath(root, error, prefixes),
                rule="XSD",
                severity=Severity.SEVERE,
                area=Area.SCHEMA,
                message_en=message_en,
                message_fr=_french(message_en),
                line=error.line or None,
            )
        )
    return findings


def cites_permit_findings(permit: etree._Element | etree._ElementTree) -> list[Finding]:
    """Validate a CITES ePermit (toolkit v2) against the hub's CITESEPermit 2 profile; findings as :func:`schema_findings`.

    ``permit`` is the ``rsm:CITESEPermit`` element the hub renders, or the EPIX form whose root ``CITESEPermit`` has
    no namespace (its children are in the CITESEPermit 2 namespace all the same); it may sit inside a SOAP body.
    The namespaced root is judged by the ``CITESEPermit2`` schema alone; any other root by ``CITESEPermit2EPIX``,
    which also declares the un-namespaced root, so that a root that is neither is reported as such. XPaths start at
    the permit and keep its own root name: ``/CITESEPermit/rsm:HeaderExchangedDocument/ram:TypeCode`` for EPIX's
    form, ``/rsm:CITESEPermit/...`` for the hub's.
    """
    root = permit.getroot() if isinstance(permit, etree._ElementTree) else permit
    name = "CITESEPermit2" if root.tag == CITES_PERMIT_ROOT else "CITESEPermit2EPIX"
    return schema_findings(load_schema(name), root)


_ELEMENT_IN_MESSAGE = re.compile(r"^Element '([^']+)'(?:, attribute '([^']+)')?")
_CLARK = re.compile(r"\{([^}]*)\}([\w.-]+)")


def _error_xpath(root: etree._Element, error: etree._LogEntry, prefixes: dict[str, str]) -> str:
    named = _ELEMENT_IN_MESSAGE.match(error.message or "")
    tag, attribute = (named.group(1), named.group(2)) if named else (None, None)
    element = _element_at(root, error.path, prefixes, tag)
    if element is None:
        element = _element_on_line(root, error.line, tag)
    if element is None:
        element = root
    xpath = element_xpath(element, FINDING_PREFIXES, root)
    return f"{xpath}/@{attribute}" if attribute else xpath


def _element_at(root: etree._Element, path: str | None, prefixes: dict[str, str], tag: str | None) -> etree._Element | None:
    """The element libxml2's path names; the path starts at the validated element (lxml validates it as a root)."""
    if not path or not path.startswith("/"):
        return None
    below_root = path.lstrip("/").partition("/")[2]
    try:
        found = root.xpath(f"./{below_root}" if below_root else ".", namespaces=prefixes)
    except etree.XPathError:
        return None
    if len(found) == 1 and isinstance(found[0], etree._Element) and (tag is None or found[0].tag == tag):
        return found[0]
    return None


def _element_on_line(root: etree._Element, line: int, tag: str | None) -> etree._Element | None:
    candidates = [e for e in root.iter(etree.Element) if e.sourceline == line and (tag is None or e.tag == tag)]
    return candidates[0] if candidates else None


def _document_prefixes(root: etree._Element) -> dict[str, str]:
    """Every prefix declared in or above ``root`` (first binding wins), as libxml2 writes them in error paths."""
    prefixes: dict[str, str] = {}
    for element in root.iter(etree.Element):
        for prefix, uri in element.nsmap.items():
            if prefix is not None:
                prefixes.setdefault(prefix, uri)
    return prefixes


def _clean_message(message: str) -> str:
    """lxml's message with ``{uri}Name`` written ``prefix:Name`` and whitespace collapsed."""

    def prefixed(match: re.Match[str]) -> str:
        prefix = FINDING_PREFIXES.get(match.group(1))
        return f"{prefix}:{match.group(2)}" if prefix else match.group(0)

    return " ".join(_CLARK.sub(prefixed, message or "").split())


_FRENCH = (
    ("No matching global declaration available for the validation root.",
     "Aucune déclaration globale ne correspond à l'élément racine."),
    ("This element is not expected.", "Cet élément n'est pas attendu."),
    ("Missing child element(s).", "Élément(s) enfant(s) manquant(s)."),
    ("Expected is one of", "Attendu : l'un de"),
    ("Expected is", "Attendu :"),
    ("is not a valid value of the atomic type", "n'est pas une valeur valide du type atomique"),
    ("is not a valid value of the local atomic type", "n'est pas une valeur valide du type atomique local"),
    ("is not a valid value of the union type", "n'est pas une valeur valide du type union"),
    ("is not an element of the set", "ne fait pas partie de l'ensemble"),
    ("is not allowed.", "n'est pas autorisé."),
    ("The attribute", "L'attribut"),
    ("Element '", "Élément '"),
    ("attribute '", "attribut '"),
    ("[facet 'enumeration'] The value", "[facette 'enumeration'] La valeur"),
)


def _french(message_en: str) -> str:
    """A French rendering: the known phrases of libxml2's messages translated, names and values kept."""
    text = message_en
    for english, french in _FRENCH:
        text = text.replace(english, french)
    return f"Non conforme au schéma : {text}"
