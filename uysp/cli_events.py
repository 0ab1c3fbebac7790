"""`uysp events` (the webhook inbox: what arrived, what failed, and retrying it) and
`uysp webhooks` (the receiver). Commands import what they run lazily, so `uysp --help` stays
instant."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

events_app = typer.Typer(no_args_is_help=True, help="The webhook inbox: list and replay events.")
console = Console()


class Status(StrEnum):
    pending = "pending"
    dispatched = "dispatched"
    done = "done"
    dead = "dead"


class Dispatch(StrEnum):
    auto = "auto"
    embedded = "embedded"
    prefect = "prefect"


@events_app.command("list")
def list_events(
    status: Annotated[Status | None, typer.Option(help="only events with this status")] = None,
    limit: Annotated[int, typer.Option(min=1, help="newest events to show")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON array")] = False,
) -> None:
    """Show the newest events in the inbox, with what processing made of each."""
    from tasks.events import event_inbox

    events = event_inbox().events(status.value if status else None, limit)
    if as_json:
        rows = [
            {
                "id": e.id,
                "source": e.source,
                "kind": e.kind,
                "status": e.status,
                "attempts": e.attempts,
                "received_at": e.received_at.isoformat(),
                "detail": e.detail,
            }
            for e in events
        ]
        print(json.dumps(rows))
        return
    table = Table(title=f"Inbox: {len(events)} newest" + (f" {status.value}" if status else ""))
    for column in ("received", "id", "status", "tries", "detail"):
        table.add_column(column, overflow="fold")
    for e in events:
        table.add_row(
            f"{e.received_at:%Y-%m-%d %H:%M:%S}", e.id, e.status, str(e.attempts), e.detail or ""
        )
    console.print(table)


@events_app.command("replay")
def replay(
    event_ids: Annotated[
        list[str] | None, typer.Argument(help="events to process again (default: --status)")
    ] = None,
    status: Annotated[Status, typer.Option(help="replay every event with this status")] = (
        Status.dead
    ),
    limit: Annotated[int, typer.Option(min=1, help="at most this many events")] = 1000,
) -> None:
    """Process events again, here and now: dead letters after an import or a fix, by default.
    Exits 1 when any of them is still dead."""
    from tasks.events import event_inbox, process
    from tasks.runtime import services

    inbox = event_inbox()
    if event_ids:
        found = {event_id: inbox.get(event_id) for event_id in event_ids}
        missing = [event_id for event_id, event in found.items() if event is None]
        if missing:
            raise typer.BadParameter(f"not in the inbox: {', '.join(missing)}")
        events = [event for event in found.values() if event is not None]
    else:
        events = list(reversed(inbox.events(status.value, limit)))  # oldest first
    svc = services()
    still_dead = 0
    for event in events:
        (result,) = process(svc, inbox, [event])
        still_dead += result == "dead"
        settled = inbox.get(event.id)
        typer.echo(f"{event.id}: {result} ({settled.detail if settled else ''})")
    typer.echo(f"replayed {len(events)}, still dead {still_dead}")
    if still_dead:
        raise typer.Exit(1)


def webhooks(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port; UYSP_LINK_BASE_URL must point here")] = 8787,
    dispatch: Annotated[
        Dispatch, typer.Option(help="auto: prefect when PREFECT_API_URL is set, else embedded")
    ] = Dispatch.auto,
) -> None:
    """Run the webhook receiver: Calendly, SimpleTexting and the tracking-link redirects."""
    import uvicorn

    from webhooks.app import create_app

    uvicorn.run(create_app(dispatch=dispatch.value), host=host, port=port, access_log=False)
