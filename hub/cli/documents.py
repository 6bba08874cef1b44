"""Document commands of the ``hub`` command line, for every document family (SPS certificates, CITES permits):
``schema``, ``convert``, ``parse``, ``validate``, ``sign``, ``verify`` and ``demo``.

Each reads a file path or ``-`` for standard input, writes documents to standard output and findings to standard
error, so they compose in a pipe: ``hub convert r.json | hub sign - | hub verify -`` and
``hub parse DOC | hub convert -``. Exit codes: 0 valid, 1 SEVERE findings (or a signature that does not hold),
2 bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from hub import families, jsonsafe
from hub.cli.common import DEFAULT_CERTS_DIR, SEVERE, OutputFormat, explain, fail, looks_like_json, print_report, read_input, settings
from hub.errors import HubError, InputError, SignatureError
from hub.mapping.sps_certificate import to_xml
from hub.records import dump_record
from hub.xmlsafe import parse_xml


def _document(path: str) -> tuple[bytes, object]:
    """The bytes and root element of an XML document, with a hint when a record is given instead."""
    data = read_input(path)
    if looks_like_json(data):
        fail(f"{path} is a record (JSON), not a document: `hub convert {path}` makes the document")
    try:
        return data, parse_xml(data, source=path)
    except HubError as exc:
        fail(explain(exc))


def schema(kind: str = typer.Argument(..., help=f"a record kind: {', '.join(families.KINDS)}")) -> None:
    """Print the JSON Schema of a record kind."""
    family = families.for_kind(kind)
    if family is None:
        fail(f"unknown kind {kind!r}; known: {', '.join(families.KINDS)}")
    typer.echo(json.dumps(family.record_schema(kind), indent=2, ensure_ascii=False))


def convert(
    record_file: str = typer.Argument(..., help="record JSON file, or - for standard input"),
    profile: Optional[str] = typer.Option(None, help="SPS: full (all RAM content) or ephyto (the IPPC Hub profile); CITES: standard or epix"),
) -> None:
    """Render a record as its standard XML (SPSCertificate 17 or CITESEPermit 2), validated: the document goes to
    standard output even with SEVERE findings, the findings to standard error, and the exit code reports them."""
    data = read_input(record_file)
    if not looks_like_json(data):
        fail(f"{record_file} is a document (XML), not a record: `hub parse {record_file}` reads it into a record")
    try:
        content = jsonsafe.loads(data, source=record_file)
    except InputError as exc:
        fail(explain(exc))
    if not isinstance(content, dict):
        fail(f"{record_file}: a record is a JSON object")
    family = families.for_data(content)
    chosen = profile or family.default_profile
    if chosen not in family.profiles:
        fail(f"a {family.title} has the profiles {', '.join(family.profiles)}, not {chosen!r}")
    try:
        root, report = family.render(family.from_data(content), profile=chosen)
    except HubError as exc:
        fail(explain(exc))
    if report.findings:
        print_report(report, err=True)
    sys.stdout.buffer.write(to_xml(root))
    sys.stdout.buffer.flush()
    raise typer.Exit(0 if report.valid else SEVERE)


def parse(document: str = typer.Argument(..., help="XML file (bare, SOAP- or envelope-wrapped), or -")) -> None:
    """Print the record JSON of a certificate or permit; what the record cannot represent is reported on standard
    error."""
    _data, root = _document(document)
    try:
        parsed = families.for_document(root, where=document).parse(root, source=document)
    except HubError as exc:
        fail(explain(exc))
    for f in parsed.findings:
        typer.echo(f"{f.severity.value} {f.rule} {f.xpath}: {f.message_en}", err=True)
    typer.echo(json.dumps(dump_record(parsed.record), indent=2, ensure_ascii=False))


def validate(
    document: str = typer.Argument(..., help="XML file, or -"),
    format: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json"),
) -> None:
    """Validate a certificate or permit (schema, code lists, business rules). Exit 0 when no SEVERE finding, 1
    otherwise, 2 for input that is not a document."""
    _data, root = _document(document)
    try:
        report = families.for_document(root, where=document).check_document(root, source=document).report
    except InputError as exc:
        fail(explain(exc))
    print_report(report, format, err=False)
    raise typer.Exit(0 if report.valid else SEVERE)


def sign(
    document: str = typer.Argument(..., help="XML file, or -"),
    authority: str = typer.Option("FR", help="issuing authority (country) whose development signing key to use"),
    key: Optional[Path] = typer.Option(None, help="PEM private key (instead of --authority)"),
    cert: Optional[Path] = typer.Option(None, help="PEM certificate matching --key"),
    certs_dir: Path = typer.Option(DEFAULT_CERTS_DIR, help="development PKI folder"),
) -> None:
    """Sign a document: enveloped XML-DSig, exclusive c14n, RSA-SHA256 or ECDSA-SHA256."""
    from hub.signing import PemKeyProvider, Signer

    if (key is None) != (cert is None):
        fail("--key and --cert go together")
    data, _root = _document(document)
    key = key or certs_dir / "signing" / f"{authority}.key"
    cert = cert or certs_dir / "signing" / f"{authority}.pem"
    try:
        signed = Signer(PemKeyProvider(key, cert)).sign(data)
    except HubError as exc:
        fail(explain(exc), SEVERE)
    sys.stdout.buffer.write(signed)


def verify(
    document: str = typer.Argument(..., help="signed XML file, or -"),
    trust: Optional[Path] = typer.Option(None, help="CA bundle (PEM) to trust; default: the development CA"),
    pin: list[Path] = typer.Option([], help="pinned signer certificate (PEM); may repeat"),
    certs_dir: Path = typer.Option(DEFAULT_CERTS_DIR, help="development PKI folder"),
    signers: Optional[Path] = typer.Option(None, help="signer registry (YAML; default HUB_SIGNERS, else each certificate signs for its own country)"),
) -> None:
    """Verify a signed document: its signature against the trusted CA bundle or pinned certificates, and that its
    signer may sign for the document's issuing authority. Exit 0 when valid."""
    from hub.signing import SignerRegistry, TrustStore, Verifier

    data, _root = _document(document)
    bundle = trust if trust is not None else (None if pin else certs_dir / "ca.pem")
    try:
        verified = Verifier(TrustStore.from_paths(ca_bundle=bundle, pinned=pin)).verify(data)
        family = families.for_document(verified.signed_root)
        record = family.parse(verified.signed_root, source=document).record
        # Trusted is not enough: the signer must speak for the authority that issued the document.
        SignerRegistry.load(signers or settings().signers_file).check(verified.signer_certificate, country=family.routing_facts(record).issuing_country, family=family.name)
    except SignatureError as exc:
        typer.echo(f"NOT VALID: {exc}", err=True)
        raise typer.Exit(SEVERE)
    except HubError as exc:
        fail(explain(exc), SEVERE)
    typer.echo(f"valid signature by {verified.signer_subject} ({verified.signature_algorithm})")


def demo(certs_dir: Path = typer.Option(DEFAULT_CERTS_DIR, help="development PKI folder")) -> None:
    """Convert, validate, sign and verify the worked example certificate, showing each step."""
    from hub.cli.demo import run_demo

    raise typer.Exit(run_demo(certs_dir))


def register(app: typer.Typer) -> None:
    """Add the document commands to ``app``."""
    for command in (schema, convert, parse, validate, sign, verify, demo):
        app.command()(command)


