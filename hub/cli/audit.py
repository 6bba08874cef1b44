"""``hub audit``: the audit log of every action by a person or client (:mod:`hub.store.audit`).

::

    hub audit show [--since N] [--limit N] [--json]   the entries after N, oldest first
    hub audit verify [--anchor SEQ:HASH]              walk the chain: exit 0 with the count and the head when it is
                                                      whole, 1 naming the first broken entry
"""

from __future__ import annotations

import json
from typing import Optional

import typer

from hub.cli.common import SEVERE, DatabaseUrl, audited, fail, open_database, settings
from hub.store import audit

audit_app = typer.Typer(no_args_is_help=True, add_completion=False, help="The audit log: show it, prove it is whole.")


@audit_app.command()
@audited("audit.show", target="since")
def show(
    since: int = typer.Option(0, "--since", min=0, help="entries after this sequence number"),
    limit: int = typer.Option(100, "--limit", min=1, max=100_000, help="at most this many entries"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line, hashes included"),
    database_url: Optional[str] = DatabaseUrl,
) -> None:
    """List the entries after --since, oldest first: sequence number, time, actor, action, target, outcome."""
    database = open_database(settings(database_url))
    try:
        with database.sessions() as session:
            rows = audit.entries(session, since=since, limit=limit)
            for e in rows:
                if as_json:
                    typer.echo(json.dumps(audit.as_dict(e)))
                else:
                    typer.echo(f"{e.seq:>6}  {e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<24} {e.action:<48} {e.outcome:<6} {e.target or ''}".rstrip())
    finally:
        database.dispose()


@audit_app.command()
@audited("audit.verify")
def verify(
    anchor: Optional[str] = typer.Option(None, "--anchor", help="a head kept elsewhere (SEQ:HASH, as this command prints it): the chain must still reach it"),
    database_url: Optional[str] = DatabaseUrl,
) -> None:
    """Walk the whole chain and check every link. Exit 0 with the count and the head (keep it elsewhere, and give it
    back with --anchor later), 1 naming the first broken entry."""
    database = open_database(settings(database_url))
    try:
        with database.sessions() as session:
            verdict = audit.verify(session, anchor=anchor)
    except ValueError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    if not verdict.intact:
        typer.echo(f"BROKEN at entry {verdict.broken_at}: {verdict.reason}", err=True)
        typer.echo(f"{verdict.count} entries hold before it; last good head {verdict.anchor}", err=True)
        raise typer.Exit(SEVERE)
    typer.echo(f"intact: {verdict.count} entries" + (", anchor reached" if anchor else ""))
    typer.echo(f"head {verdict.anchor}")
