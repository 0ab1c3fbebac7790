"""The operator's commands: `uysp import`, `uysp report`, `uysp doctor`.

They run the same steps as the ingestion, daily-report and health flows, as plain calls on the
adapters chosen by settings, so none of them needs a Prefect server (the doctor must work when
Prefect is down). Imports are lazy, like the rest of the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

app = typer.Typer(no_args_is_help=True)
console = Console()
STEP_COLUMNS = (
    "campaign",
    "variant",
    "step",
    "sent",
    "delivered",
    "failed",
    "clicked",
    "booked",
    "opted out",
    "replied",
    "credits",
)
AB_COLUMNS = (
    "campaign",
    "variant",
    "people",
    "click rate",
    "p",
    "P(best)",
    "booking rate",
    "p",
    "P(best)",
)


@app.command("import")
def import_csv(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV export")],
    campaign: Annotated[
        str | None, typer.Option(help="SMS Campaign ID for new leads (they wait for it)")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="Lead Source for every row (default: the file's column, else its name)"),
    ] = None,
    backlog: Annotated[bool, typer.Option(help="new leads go to Backlog, not Queued")] = False,
    client_tag: Annotated[
        list[str] | None,
        typer.Option(help="regex for a tag that marks a current client (repeatable)"),
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="rejects CSV (default: FILE.rejects.csv)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Import a CSV of leads: new ones Queued, duplicates merged, bad rows to a rejects file."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from tasks.ingest import ImportFileError, ImportRequest, run_import, tag_patterns

    request = ImportRequest(
        path=str(file),
        campaign=campaign,
        source=source,
        backlog=backlog,
        client_tag_patterns=tag_patterns(client_tag),
        rejects_path=str(rejects) if rejects else None,
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), disable=as_json) as bar:
        writing = bar.add_task(f"importing {file.name}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(writing, completed=done, total=total)

        try:
            summary = run_import(request, progress, as_tasks=False)
        except ImportFileError as exc:
            Console(stderr=True).print(Text(str(exc), style="bold red"), soft_wrap=True)
            raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps(summary.as_dict()))
        return
    from flows.ingestion import summary_lines

    for line in summary_lines(summary):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


@app.command()
def report(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    post: Annotated[bool, typer.Option(help="also post it to the daily channel")] = False,
) -> None:
    """Campaign to date, per campaign, variant and step, with the A/B comparison."""
    from flows.daily_report import headline, records, report_lines
    from tasks.reporting import build_report
    from tasks.runtime import services
    from uysp.ports import Notice

    built = build_report.fn()
    fields = headline(built)
    if post:
        notice = Notice(f"Daily report, {built.as_of:%a %d %b}", report_lines(built), fields=fields)
        services().notifier.notify("daily", notice)
    if as_json:
        payload = {"headline": fields, "steps": records(built.steps), "ab": records(built.ab)}
        print(json.dumps(payload))
        return
    console.print(" · ".join(f"[bold]{k}[/bold] {v}" for k, v in fields.items()))
    console.print(_steps_table(records(built.steps)))
    console.print(_ab_table(records(built.ab)))


def _share(count: int, rate: float) -> str:
    return f"{count} ({100 * rate:.1f}%)"


def _steps_table(rows: list[dict]) -> Table:
    table = Table(title="By campaign, variant and step")
    for name in STEP_COLUMNS:
        table.add_column(name, justify="left" if name in ("campaign", "variant") else "right")
    for r in rows:
        table.add_row(
            r["campaign"],
            r["variant"],
            str(r["step"]),
            str(r["sent"]),
            _share(r["delivered"], r["delivery_rate"]),
            str(r["failed"] + r["undelivered"]),
            _share(r["clicked"], r["click_rate"]),
            _share(r["booked"], r["booking_rate"]),
            _share(r["opted_out"], r["opt_out_rate"]),
            _share(r["replied"], r["reply_rate"]),
            f"{r['credits']:g}",
        )
    return table


def _ab_table(rows: list[dict]) -> Table:
    table = Table(title="A/B comparison: people reached, 95% intervals, p against the first")
    for name in AB_COLUMNS:
        table.add_column(name, justify="left" if name in ("campaign", "variant") else "right")
    for r in rows:
        cells = [r["campaign"], r["variant"], str(r["people"])]
        for name in ("click", "booking"):
            p_value = r[f"{name}_p_value"]
            cells += [
                f"{100 * r[f'{name}_rate']:.1f}% ({100 * r[f'{name}_low']:.1f}-"
                f"{100 * r[f'{name}_high']:.1f})",
                "" if p_value is None else f"{p_value:.3f}",
                f"{100 * r[f'{name}_p_best']:.0f}%",
            ]
        table.add_row(*cells)
    return table


@app.command()
def doctor(
    flow: Annotated[
        list[str] | None, typer.Option(help="check only these flows' runs and deployments")
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option(help="webhook receiver base URL (default: UYSP_WEBHOOK_URL)")
    ] = None,
    stuck_hours: Annotated[float, typer.Option(help="a lead in one status longer is stuck")] = 48,
) -> None:
    """The morning checklist; exits 1 when something is wrong."""
    from tasks.health import HealthOptions, run_checks

    options = HealthOptions(
        flows=tuple(flow) if flow else None, webhook_url=webhook_url, stuck_hours=stuck_hours
    )
    checks = run_checks(options, as_tasks=False)
    table = Table(title="uysp doctor", show_lines=True)
    for name in ("check", "status", "what it found"):
        table.add_column(name)
    for check in checks:
        status = "[green]OK[/green]" if check.ok else "[bold red]PROBLEM[/bold red]"
        table.add_row(check.name, status, Text("\n".join([check.summary, *check.details])))
    console.print(table, highlight=False)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)
