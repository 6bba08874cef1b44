"""The ``hub`` command line: convert, parse, validate, sign and verify documents; make the development PKI; run
the broker (``serve``, ``worker``), manage its clients, routes and database, and read traces.

Every command reads a file path or ``-`` for standard input, writes documents to standard output and reports to
standard error, so they compose in a pipe: ``hub convert r.json | hub sign - | hub verify -``.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from hub.errors import HubError, InputError, RecordError, SignatureError
from hub.records import dump_record
from hub.report import ValidationReport

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Trade-document interoperability hub.")
certs_app = typer.Typer(no_args_is_help=True, help="The development PKI.")
app.add_typer(certs_app, name="certs")


def _register_broker_commands() -> None:
    from hub.cli.broker import clients_app, connectors, fetch_permit, sandbox, serve, trace, worker
    from hub.cli.routes import routes_app
    from hub.cli.db import db_app

    app.command(help="Run the hub: API, delivery worker and local sandboxes in one process.")(serve)
    app.command(help="Run a delivery worker (more processes share the outbox on PostgreSQL).")(worker)
    app.command(help="Print the timeline of a document or message.")(trace)
    app.command(help="Run a counterpart sandbox on its own.")(sandbox)
    app.command(help="List the counterparts with their health.")(connectors)
    app.command("fetch-permit", help="Fetch a partner authority's CITES permit through its exchange.")(fetch_permit)
    app.add_typer(clients_app, name="clients")
    app.add_typer(routes_app, name="routes", help="The routing table: show it, explain a document's destinations.")
    app.add_typer(db_app, name="db", help="The database: migrate, show the revision.")


_register_broker_commands()

DEFAULT_CERTS_DIR = Path(os.environ.get("HUB_CERTS_DIR", "certs/dev"))


class Profile(str, Enum):
    full = "full"
    ephyto = "ephyto"


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror}")
        raise  # unreachable: _fail exits


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _explain(exc: HubError) -> str:
    if isinstance(exc, RecordError):
        return "invalid record:\n" + "\n".join(f"  {p.path}: {p.message}" for p in exc.problems)
    return str(exc)


def _print_report(report: ValidationReport, output: OutputFormat, *, err: bool) -> None:
    if output is OutputFormat.json:
        typer.echo(report.model_dump_json(indent=2), err=err)
        return
    for f in report.findings:
        where = f"{f.xpath}" + (f" (field {f.field})" if f.field else "")
        typer.echo(f"{f.severity.value:<8} {f.rule:<26} {where}\n         {f.message_en}\n         {f.message_fr}", err=err)
    typer.echo(report.summary(), err=err)


@app.command()
def schema(kind: str = typer.Argument(..., help="phytosanitary, phytosanitary_reexport, veterinary or ched")) -> None:
    """Print the JSON Schema of a record kind."""
    from hub.records.sps import RECORD_MODELS, DocumentKind

    try:
        model = RECORD_MODELS[DocumentKind(kind)]
    except ValueError:
        _fail(f"unknown kind {kind!r}; known: {', '.join(k.value for k in DocumentKind)}")
    typer.echo(json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False))


@app.command()
def convert(
    record_file: str = typer.Argument(..., help="record JSON file, or - for standard input"),
    profile: Profile = typer.Option(Profile.full, help="full: all RAM content; ephyto: the IPPC Hub profile"),
) -> None:
    """Render a record as SPSCertificate 17 XML (validated; the report goes to standard error)."""
    from hub.mapping.sps_certificate import record_from_data, to_xml
    from hub.validation.validator import validate_record

    try:
        record = record_from_data(json.loads(_read(record_file)))
        root, report = validate_record(record, profile=profile.value)
    except json.JSONDecodeError as exc:
        _fail(f"{record_file} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    except HubError as exc:
        _fail(_explain(exc))
    if report.findings:
        _print_report(report, OutputFormat.text, err=True)
    if not report.valid:
        raise typer.Exit(1)
    sys.stdout.buffer.write(to_xml(root))


@app.command()
def parse(document: str = typer.Argument(..., help="XML file (bare, SOAP- or envelope-wrapped), or -")) -> None:
    """Print the record JSON of a certificate; what the record cannot represent is reported on standard error."""
    from hub.mapping.sps_certificate import parse_certificate

    try:
        parsed = parse_certificate(_read(document), source=document)
    except HubError as exc:
        _fail(_explain(exc))
    for f in parsed.findings:
        typer.echo(f"{f.severity.value} {f.rule} {f.xpath}: {f.message_en}", err=True)
    typer.echo(json.dumps(dump_record(parsed.record), indent=2, ensure_ascii=False))


@app.command()
def validate(
    document: str = typer.Argument(..., help="XML file, or -"),
    format: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json"),
) -> None:
    """Validate a certificate (schema, code lists, business rules). Exit 0 when no SEVERE finding, 1 otherwise."""
    from hub.validation.validator import validate_certificate

    try:
        report = validate_certificate(_read(document), source=document).report
    except InputError as exc:
        _fail(_explain(exc), 1)
    _print_report(report, format, err=False)
    raise typer.Exit(0 if report.valid else 1)


@app.command()
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
        _fail("--key and --cert go together")
    key = key or certs_dir / "signing" / f"{authority}.key"
    cert = cert or certs_dir / "signing" / f"{authority}.pem"
    try:
        signed = Signer(PemKeyProvider(key, cert)).sign(_read(document))
    except HubError as exc:
        _fail(_explain(exc), 1)
    sys.stdout.buffer.write(signed)


@app.command()
def verify(
    document: str = typer.Argument(..., help="signed XML file, or -"),
    trust: Optional[Path] = typer.Option(None, help="CA bundle (PEM) to trust; default: the development CA"),
    pin: list[Path] = typer.Option([], help="pinned signer certificate (PEM); may repeat"),
    certs_dir: Path = typer.Option(DEFAULT_CERTS_DIR, help="development PKI folder"),
) -> None:
    """Verify a signed document against the trusted CA bundle or pinned certificates. Exit 0 when valid."""
    from hub.signing import TrustStore, Verifier

    bundle = trust if trust is not None else (None if pin else certs_dir / "ca.pem")
    try:
        verified = Verifier(TrustStore.from_paths(ca_bundle=bundle, pinned=pin)).verify(_read(document))
    except SignatureError as exc:
        typer.echo(f"NOT VALID: {exc}", err=True)
        raise typer.Exit(1)
    except HubError as exc:
        _fail(_explain(exc), 1)
    typer.echo(f"valid signature by {verified.signer_subject} ({verified.signature_algorithm})")


@certs_app.command("init")
def certs_init(
    directory: Path = typer.Option(DEFAULT_CERTS_DIR, "--dir", help="where to write the PKI"),
    authority: list[str] = typer.Option(["FR", "EC", "NL", "US", "JP"], help="issuing authorities (ISO country) to make keys for (JP: the CITES sandbox's management authority)"),
    if_missing: bool = typer.Option(False, "--if-missing", help="keep an existing complete PKI"),
) -> None:
    """Make the development PKI: a CA, a signing certificate per authority, TLS server and client certificates."""
    from hub.signing import init_dev_pki

    pki = init_dev_pki(directory, authorities=tuple(authority), if_missing=if_missing)
    typer.echo(f"development PKI in {pki.directory} (private keys are git-ignored)")


@app.command()
def demo(certs_dir: Path = typer.Option(DEFAULT_CERTS_DIR, help="development PKI folder")) -> None:
    """Convert, validate, sign and verify the worked example certificate, showing each step."""
    from hub.cli.demo import run_demo

    raise typer.Exit(run_demo(certs_dir))


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
