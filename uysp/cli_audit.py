"""`uysp reconcile`: the ledger, the leads and the provider's message log compared, and with
`--fix` the safe repairs made. Like the other operator commands it runs on the adapters chosen
by settings and needs no Prefect server."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console()


def reconcile(
    fix: Annotated[
        bool, typer.Option("--fix", help="settle Reserved rows, recover rows, move leads on")
    ] = False,
    since_days: Annotated[int, typer.Option(min=1, help="judge the texts of the last N days")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Compare the ledger, the leads and the provider's log. Exits 0 when they agree, 1 when a
    disagreement remains, 2 when the check could not be made."""
    from tasks.audit import AuditError, reconcile_all
    from tasks.runtime import services

    svc = services()
    since = svc.clock.now() - timedelta(days=since_days)
    try:
        report = reconcile_all(svc, since=since, fix=fix)
    except Exception as exc:  # exit 1 must only ever mean "a disagreement remains"
        why = str(exc) if isinstance(exc, AuditError) else f"{type(exc).__name__}: {exc}"
        Console(stderr=True).print(Text(f"uysp reconcile: {why}", style="bold red"), soft_wrap=True)
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps(report.to_json()))
    else:
        _print(report.to_json())
    raise typer.Exit(1 if report.remaining else 0)


def _print(report: dict) -> None:
    checked = report["checked"]
    console.print(
        f"Since {report['since']}: {checked['ledger_rows']} ledger rows, {checked['leads']} leads,"
        f" {checked['provider_messages']} provider messages checked",
        highlight=False,
    )
    if report["items"]:
        table = Table(title="Disagreements, by kind", show_lines=False)
        for column in ("kind", "lead", "send key", "message id", "what it found", "fixed"):
            table.add_column(column, overflow="fold")
        for kind in report["disagreements"]:
            items = [item for item in report["items"] if item["kind"] == kind]
            for item in items:
                table.add_row(
                    kind,
                    item["lead_id"] or "",
                    item["send_key"] or "",
                    item["message_id"] or "",
                    Text(item["detail"]),
                    "[green]yes[/green]" if item["fixed"] else "no",
                )
            if items:
                table.add_section()
        console.print(table)
    style = "bold red" if report["remaining"] else "green"
    console.print(
        f"[{style}]{report['remaining']} remaining[/{style}], {report['fixed']} fixed",
        highlight=False,
    )
