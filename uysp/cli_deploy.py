"""`uysp serve` and `uysp setup prefect`, mounted by uysp/cli.py. What they run is imported
inside each command, so `uysp --help` stays instant."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="address of the webhook receiver")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port of the webhook receiver")] = 8787,
    webhooks: Annotated[bool, typer.Option(help="run the webhook receiver too")] = True,
) -> None:
    """Every flow on its schedule, plus the webhook receiver, in one process: no work pool."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        typer.echo(
            "uysp serve needs a Prefect server: start one (`prefect server start`) and set"
            " PREFECT_API_URL, e.g. http://127.0.0.1:4200/api",
            err=True,
        )
        raise typer.Exit(1)
    from flows.serve import run

    run(host, port, webhooks=webhooks)


def setup_prefect(
    failures: Annotated[
        int, typer.Option(min=1, help="failed runs of a phase deployment that pause it")
    ] = 2,
    within_minutes: Annotated[
        int, typer.Option(min=1, help="the window those failures must fall in")
    ] = 360,
) -> None:
    """Create or update the Prefect limits, variables and failure automation, and leave only
    the current phase's scheduler schedule active; idempotent."""
    from integrations.prefect_setup import ensure_prefect_setup

    for line in ensure_prefect_setup(failures=failures, within=timedelta(minutes=within_minutes)):
        typer.echo(line)
