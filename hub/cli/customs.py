"""``hub customs …``: the quantity ledgers the hub keeps with TRACES-NT's CSW-CERTEX.

::

    hub customs reconcile [--repair] [--format text|json] [--grace SECONDS]

Exit codes: 0 when the ledgers agree (after the repair, with ``--repair``) or differ only by declarations the hub
never saw; 1 when a difference is left to do or for a person, or a CHED could not be read; 2 for bad settings.
"""

from __future__ import annotations

import json
from typing import Optional

import typer

from hub.cli.common import SEVERE, DatabaseUrl, OutputFormat, audited, fail, open_broker, settings
from hub.errors import HubError

customs_app = typer.Typer(help="Customs: the quantity ledgers kept with TRACES-NT (CSW-CERTEX).", no_args_is_help=True)


@customs_app.command("reconcile")
@audited("customs.reconcile", target="repair")
def reconcile(
    repair: bool = typer.Option(False, "--repair", help="settle the operations whose outcome is unknown and repair the differences"),
    output: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json"),
    grace: float = typer.Option(300.0, "--grace", min=0, help="seconds an operation's last attempt may still be on its way (left to a later run)"),
    database_url: Optional[str] = DatabaseUrl,
) -> None:
    """Compare the hub's quantity ledger with TRACES-NT's for every CHED with movements and report every difference
    (CHED, declaration, goods item, line, ours, theirs); with --repair, settle and repair them."""
    from hub.customs.reconcile import Reconciler

    chosen = settings(database_url)
    broker = open_broker(chosen)
    try:
        if not broker.customs.ched_authorities:
            fail(f"no connector in {chosen.connectors_file} keeps CHED quantities: give the TRACES-NT connector a customs "
                 "(CSW-CERTEX) account (certex_username and certex_authentication_key)")
        report = Reconciler(broker.customs, grace=grace).run(repair=repair)
    except HubError as exc:
        fail(str(exc), SEVERE)
    finally:
        broker.close()
    if output is OutputFormat.json:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        typer.echo(format_report(report))
    if report.needs_attention:
        raise typer.Exit(SEVERE)


def format_report(report) -> str:
    """The report as text: per CHED, its lines (ours against TRACES-NT's) and every difference with its action."""
    out = []
    for ched in report.cheds:
        state = f"not read: {ched.error}" if ched.error else ("ledgers agree" if ched.agree else "ledgers DIFFER")
        out.append(f"CHED {ched.ched} ({ched.certificate_number}, {ched.authority}): {state}")
        for line in ched.lines:
            foreign = f"; other customs offices' declarations: {line.foreign}" if line.foreign else ""
            out.append(f"  line {line.line}: ours reserved {line.ours_reserved}, written off {line.ours_written_off} | "
                       f"{ched.authority} reserved {line.theirs_reserved}, written off {line.theirs_written_off}{foreign}")
        for d in ched.differences:
            where = f"declaration {d.declaration}" + (f" goods item {d.goods_item} line {d.line}" if d.line is not None else "")
            out.append(f"  {where}: ours {d.ours}, theirs {d.theirs} → {d.action}")
    count = len(report.differences)
    tail = "repaired" if report.repaired else ("run with --repair to repair them" if count else "nothing to repair")
    out.append(f"{len(report.cheds)} CHED(s), {count} difference(s): {tail}")
    return "\n".join(out)

