"""``hub routes``: show the routing table, and explain where a document goes and why.

Both commands read the table from ``--routes``, else ``HUB_ROUTES``, else ``config/routes.yaml`` in the project.
Exit codes: 0 done, 1 no rule matches the document, 2 the table or the document cannot be used.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Optional

import typer

from hub.cli.common import fail as _fail
from hub.errors import HubError, RecordError
from hub.families import routing_facts
from hub.routing.table import RoutingTable

routes_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="The routing table: which counterparts get each document."
)

ROUTES_OPTION = typer.Option(
    None, "--routes", help="routing table (.yaml or .toml); default HUB_ROUTES, else config/routes.yaml"
)


def default_routes_path() -> Path:
    """``HUB_ROUTES`` if set, else ``config/routes.yaml`` under the project root (as the hub's settings decide)."""
    from hub.config import Settings

    return Settings.from_env().routes_file


@routes_app.command()
def show(routes: Optional[Path] = ROUTES_OPTION) -> None:
    """Print the rules in order: their conditions, destinations and whether they stop evaluation."""
    table = _load(routes)
    destinations = ", ".join(sorted(table.destinations))
    typer.echo(f"routing table {table.source}: {len(table.rules)} rules, destinations {destinations}")
    rows = [("#", "RULE", "WHEN", "TO", "FINAL")]
    for number, rule in enumerate(table.rules, start=1):
        when = ([f"direction: {rule.direction}"] if rule.direction != "outbound" else []) + [f"{c.field}: {c.written}" for c in rule.conditions]
        when = when or ["(any document)"]
        rows.append((str(number), rule.name, when[0], ", ".join(rule.destinations), "final" if rule.final else ""))
        rows.extend(("", "", line, "", "") for line in when[1:])
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    described = [rule for rule in table.rules if rule.description]
    if described:
        typer.echo("")
        for rule in described:
            text = f"{rule.name}: {' '.join(rule.description.split())}"
            typer.echo(textwrap.fill(text, width=116, subsequent_indent="    "))


@routes_app.command()
def explain(
    document: str = typer.Argument(..., help="record JSON or SPSCertificate XML file, or - for standard input"),
    routes: Optional[Path] = ROUTES_OPTION,
    inbound: bool = typer.Option(False, "--inbound", help="as a document received from abroad (direction: inbound rules)"),
) -> None:
    """Evaluate every rule against a document: MATCH or no, why, and the destinations it ends up with."""
    table = _load(routes)
    facts = routing_facts(_read_record(document), direction="inbound" if inbound else "outbound")
    typer.echo(f"routing table {table.source}")
    typer.echo(f"document {document}: {facts.describe()}")
    typer.echo("")
    for explanation in table.explain(facts):
        verdict = "MATCH" if explanation.matched else "no"
        typer.echo(f"{verdict:<5}  {explanation.name} → {', '.join(explanation.destinations)}")
        for reason in explanation.reasons:
            typer.echo(f"       {reason}")
    routing = table.route(facts)
    typer.echo("")
    if not routing.matched and inbound:
        typer.echo("destinations: none (a received document is kept for its importing authority)")
        return
    if not routing.matched:
        typer.echo(f"error: no rule of the routing table matched the document ({facts.describe()})", err=True)
        raise typer.Exit(1)
    typer.echo(f"destinations: {', '.join(routing.destinations)}")


def _load(routes: Path | None) -> RoutingTable:
    try:
        return RoutingTable.load(routes or default_routes_path())
    except HubError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


def _read_record(document: str):
    """The record of a document (XML of any family) or of record JSON."""
    from hub import families
    from hub.xmlsafe import parse_xml

    try:
        data = sys.stdin.buffer.read() if document == "-" else Path(document).read_bytes()
    except OSError as exc:
        _fail(f"cannot read {document}: {exc.strerror}")
    try:
        if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
            root = parse_xml(data, source=document)
            return families.for_document(root, where=document).parse(root, source=document).record
        content = json.loads(data)
        if not isinstance(content, dict):
            _fail(f"{document}: a record is a JSON object")
        return families.for_data(content).from_data(content)
    except json.JSONDecodeError as exc:
        _fail(f"{document} is neither XML nor JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    except RecordError as exc:
        _fail(f"{document}: invalid record:\n" + "\n".join(f"  {p.path}: {p.message}" for p in exc.problems))
    except HubError as exc:
        _fail(str(exc))
