"""click-tracker: every 10 minutes, the click counts of links still in their tracking window.

Counts are read in batches from the shortener (Switchy's GraphQL, 500 links a query, or the
local click table); only leads whose count went up are written, in batches; a count that went
down at the provider is ignored. One digest per run goes to the sales channel, listing the leads
with new clicks, hot ones first; a run with no new clicks posts nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.utilities.annotations import quote
from pydantic import Field

from tasks.clicks import NewClicks, flag_hot, sync_clicks, tracked_links
from tasks.runtime import services
from uysp.ports import Notice

DIGEST_LINES = 40


@flow(name="click-tracker", log_prints=False)
def click_tracker(
    window_days: Annotated[float, Field(gt=0)] = 30,
    batch_size: Annotated[int, Field(ge=1, le=50_000)] = 5000,
    hot_minutes: Annotated[float, Field(ge=0)] = 5,
    every_minutes: Annotated[float, Field(gt=0)] = 10,
) -> dict[str, Any]:
    """Sync click counts. `batch_size` links go to each task run (best a multiple of Switchy's
    500 a query); `every_minutes` is how often this runs: a new click is known only to have come
    since the previous run, which decides whether it can be hot."""
    links = tracked_links(window_days)
    new: list[NewClicks] = []
    lowered = 0
    for start in range(0, len(links), batch_size):
        result = sync_clicks(quote(links[start : start + batch_size]))
        new += result.new
        lowered += result.lowered
    new = flag_hot(quote(new), hot_minutes, every_minutes)
    summary = {
        "tracked": len(links),
        "clicked": len(new),
        "hot": sum(n.hot for n in new),
        "lowered_ignored": lowered,
    }
    _publish(summary, new)
    return summary


def _publish(summary: dict[str, Any], new: list[NewClicks]) -> None:
    create_table_artifact(
        key="click-tracker-new-clicks",
        table=[
            {
                "lead": n.link.lead_id,
                "name": n.link.name,
                "phone": n.link.phone,
                "clicks_before": n.link.clicks,
                "clicks": n.clicks,
                "hot": n.hot,
            }
            for n in new
        ]
        or [{"lead": "none"}],
        description="Leads with new clicks in this run",
    )
    create_markdown_artifact(
        key="click-tracker-summary",
        markdown=(
            f"- {summary['tracked']} links tracked\n- {summary['clicked']} leads with new clicks,"
            f" {summary['hot']} hot\n- {summary['lowered_ignored']} lower counts ignored"
        ),
        description="click-tracker run summary",
    )
    if not new:
        return
    lines = [n.line for n in new[:DIGEST_LINES]]
    if len(new) > DIGEST_LINES:
        lines.append(f"... and {len(new) - DIGEST_LINES} more")
    hot = f", {summary['hot']} hot" if summary["hot"] else ""
    services().notifier.notify(
        "sales", Notice(f"{len(new)} lead(s) clicked their link{hot}", lines)
    )
