"""The `uysp` command. Commands import what they run lazily, so `uysp --help` is instant."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from uysp import cli_audit, cli_deploy
from uysp.cli_events import events_app, webhooks
from uysp.cli_ops import app as ops_app

app = typer.Typer(no_args_is_help=True, help="UYSP SMS lead outreach.")
setup_app = typer.Typer(no_args_is_help=True, help="Create what the system needs, idempotently.")
app.add_typer(setup_app, name="setup")
app.add_typer(ops_app)
app.add_typer(events_app, name="events")
app.command()(webhooks)
app.command()(cli_deploy.serve)
app.command()(cli_audit.reconcile)
setup_app.command("prefect")(cli_deploy.setup_prefect)
console = Console()


@app.command()
def demo(
    leads: Annotated[int, typer.Option(min=1, help="synthetic leads to generate")] = 500,
    days: Annotated[int, typer.Option(min=1, max=60, help="simulated days")] = 14,
    seed: Annotated[int, typer.Option(help="random seed for leads and replies")] = 7,
    db: Annotated[
        Path | None, typer.Option(help="SQLite file to create (default: a temp dir)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Run a whole simulated campaign on the embedded default: SQLite, sandbox SMS, local links."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.demo import run_demo

    if as_json:
        print(json.dumps(run_demo(leads, days, seed, db)))
        return
    with console.status("simulating...") as status:

        def on_run(label: str, summary: dict) -> None:
            status.update(f"{label}: {summary['sent']} sent")

        result = run_demo(leads, days, seed, db, on_run=on_run)
    _print_demo(result)


def _print_demo(result: dict) -> None:
    table = Table(title="UYSP demo campaign", show_header=False)
    for name in ("leads", "sent", "delivered", "clicked", "booked", "stopped", "completed"):
        table.add_row(name, str(result[name]))
    table.add_row("by step", ", ".join(f"{k}: {v}" for k, v in result["by_step"].items()))
    table.add_row("by variant", ", ".join(f"{k}: {v}" for k, v in result["by_variant"].items()))
    table.add_row("alerts", str(result["alerts"]))
    table.add_row("wall seconds", str(result["wall_seconds"]))
    console.print(table)
    held = Table(title="Held back, by gate (summed over runs)")
    held.add_column("gate")
    held.add_column("leads", justify="right")
    for reason, count in result["held_by_gate"].items():
        held.add_row(reason, str(count))
    console.print(held)
    checks = Table(title="Invariants, from the outbox")
    checks.add_column("check")
    checks.add_column("violations", justify="right")
    for name in ("duplicate_sends", "quiet_hour_violations", "after_stop_sends"):
        style = "green" if result[name] == 0 else "bold red"
        checks.add_row(name, f"[{style}]{result[name]}[/{style}]")
    console.print(checks)
    console.print(f"database: {result['database']}")


@app.command()
def pause(reason: Annotated[str, typer.Option(help="why, for the alert")] = "operator") -> None:
    """Set the kill switch: no scheduler run sends until `uysp resume`."""
    _switch("Paused", reason)


@app.command()
def resume() -> None:
    """Clear the kill switch."""
    _switch("On", "operator")


def _switch(value: str, reason: str) -> None:
    from prefect.variables import Variable

    from integrations.pacing import prefect_server_configured
    from tasks.runtime import services
    from uysp.ports import Notice
    from uysp.rollout import SENDING_VARIABLE

    svc = services()
    svc.store.update_settings(sms_sending=value)
    if prefect_server_configured():  # the Prefect UI's kill switch follows
        Variable.set(SENDING_VARIABLE, value, overwrite=True)
    svc.notifier.notify("alerts", Notice(f"SMS Sending set to {value}", [f"by {reason}"]))
    console.print(f"SMS Sending: {value}")


@setup_app.command("airtable")
def setup_airtable() -> None:
    """Create any missing tables and fields in the Airtable base; prints what it found and did."""
    from integrations.airtable import AirtableStore
    from integrations.airtable_setup import ensure_airtable_rate_limit, ensure_airtable_schema
    from integrations.pacing import prefect_server_configured
    from uysp.settings import get_settings

    store = AirtableStore.from_settings(get_settings())
    if prefect_server_configured():
        ensure_airtable_rate_limit()
    for line in ensure_airtable_schema(store.api, store.base_id, store.tables).lines():
        console.print(line, highlight=False)


if __name__ == "__main__":
    app()
