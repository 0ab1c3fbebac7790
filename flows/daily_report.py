"""daily-report: campaign to date, per campaign, variant and step, with the A/B comparison.

Posted to the daily Slack channel (the Slack notifier renders it as Block Kit) and left as
Prefect artifacts: the funnel as a table, the headline and A/B comparison as markdown.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.reporting import Report, build_report
from tasks.runtime import services
from uysp.ports import Notice


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain JSON values (no numpy types, NaN as None) for artifacts and Slack."""
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def markdown_table(frame: pd.DataFrame) -> str:
    rows = records(frame)
    if not rows:
        return "_no data_"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += [
        "| " + " | ".join("" if r[c] is None else str(r[c]) for c in header) + " |" for r in rows
    ]
    return "\n".join(lines)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def report_lines(report: Report) -> list[str]:
    """The Slack body: each campaign's variants and steps, then its A/B comparison."""
    lines: list[str] = []
    for campaign, steps in report.steps.groupby("campaign"):
        lines.append(f"*{campaign}*")
        for row in records(steps):
            failed = row["failed"] + row["undelivered"]
            lines.append(
                f"{row['variant']} step {row['step']}: {row['sent']} sent,"
                f" {_pct(row['delivery_rate'])} delivered, {failed} failed,"
                f" {row['clicked']} clicked ({_pct(row['click_rate'])}),"
                f" {row['booked']} booked, {row['opted_out']} opted out,"
                f" {row['replied']} replied, {row['credits']:g} credits"
            )
        for row in records(report.ab[report.ab["campaign"] == campaign]):
            vs = (
                "" if row["click_p_value"] is None else f", p={row['click_p_value']:.3f} vs control"
            )
            lines.append(
                f"A/B {row['variant']}: clicks {_pct(row['click_rate'])}"
                f" ({_pct(row['click_low'])}-{_pct(row['click_high'])}){vs},"
                f" P(best) {_pct(row['click_p_best'])}; bookings {_pct(row['booking_rate'])},"
                f" P(best) {_pct(row['booking_p_best'])}"
            )
    return lines or ["no texts sent yet"]


def headline(report: Report) -> dict[str, str]:
    totals = report.variants[["sent", "delivered", "clicked", "booked", "opted_out", "credits"]]
    sums = totals.sum() if len(totals) else pd.Series(0, index=totals.columns)
    return {
        "Sent": f"{int(sums['sent'])}",
        "Sent, last 24 h": f"{report.sent_last_24h}",
        "Delivered": f"{int(sums['delivered'])}",
        "Clicked": f"{int(sums['clicked'])}",
        "Booked": f"{int(sums['booked'])}",
        "Opted out": f"{int(sums['opted_out'])}",
        "Credits": f"{float(sums['credits']):g}",
    }


@flow(name="daily-report", log_prints=False)
def daily_report() -> dict[str, Any]:
    """Build the report from the ledger and the leads, post it, and keep it as artifacts."""
    report = build_report()
    create_table_artifact(
        key="daily-report-funnel",
        table=records(report.steps) or [{"campaign": "none"}],
        description="Per campaign, variant and step: messages, outcomes, credits and rates",
    )
    fields = headline(report)
    create_markdown_artifact(
        key="daily-report",
        markdown="\n\n".join(
            [
                f"## UYSP daily report, {report.as_of:%Y-%m-%d %H:%M} UTC",
                " · ".join(f"**{k}** {v}" for k, v in fields.items()),
                "### By variant (all steps)",
                markdown_table(report.variants),
                "### A/B comparison (people reached; intervals 95% Wilson)",
                markdown_table(report.ab),
            ]
        ),
        description="daily report: headline, variants and the A/B comparison",
    )
    services().notifier.notify(
        "daily",
        Notice(f"Daily report, {report.as_of:%a %d %b}", report_lines(report), fields=fields),
    )
    return {
        "steps": records(report.steps),
        "ab": records(report.ab),
        "headline": fields,
    }
