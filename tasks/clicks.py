"""The click tracker's tasks: which links to watch, their counts in batches, the leads whose
count went up, and which of those clicked right after their text arrived.

The shortener reports counts, not click times, so a new click is only known to have come since
the tracker last looked (`every_minutes` ago). It is hot when it can have come within
`hot_minutes` of the text's delivery, that is when the text was delivered no more than
`hot_minutes` before that last look.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.runtime import services
from uysp.models import Lead, LedgerStatus
from uysp.phones import mask

WENT_OUT = (LedgerStatus.SENT, LedgerStatus.DELIVERED)


@dataclass(frozen=True)
class TrackedLink:
    lead_id: str
    link_id: str
    clicks: int
    name: str
    phone: str
    campaign: str | None
    step: int

    @classmethod
    def of(cls, lead: Lead) -> TrackedLink:
        return cls(
            lead.id,
            lead.short_link_id or "",
            lead.click_count,
            lead.name,
            mask(lead.phone),
            lead.campaign_id,
            lead.sequence_position,
        )


@dataclass(frozen=True)
class NewClicks:
    link: TrackedLink
    clicks: int  # the count now; link.clicks is the count before
    delivered_at: datetime | None = None
    hot: bool = False

    @property
    def line(self) -> str:
        link = self.link
        flag = "HOT " if self.hot else ""
        return (
            f"{flag}{link.name} ({link.phone}), {link.campaign or 'no campaign'} step {link.step}:"
            f" {link.clicks} -> {self.clicks} clicks"
        )


@dataclass
class ChunkResult:
    new: list[NewClicks]
    lowered: int  # counts the provider reported below ours: ignored


@task(name="tracked-links", cache_policy=NO_CACHE)
def tracked_links(window_days: float) -> list[TrackedLink]:
    """Links whose lead was last texted within the window."""
    svc = services()
    since = svc.clock.now() - timedelta(days=window_days)
    return [
        TrackedLink.of(lead) for lead in svc.store.leads_with_links(since) if lead.short_link_id
    ]


@task(name="sync-clicks", cache_policy=NO_CACHE)
def sync_clicks(links: list[TrackedLink]) -> ChunkResult:
    """Read these links' counts in one call to the shortener and write only the leads whose
    count went up, in one batch. Click Count never goes down."""
    svc = services()
    counts = svc.shortener.clicks([link.link_id for link in links])
    new = [
        NewClicks(link, counts[link.link_id])
        for link in links
        if counts.get(link.link_id, 0) > link.clicks
    ]
    lowered = sum(counts.get(link.link_id, 0) < link.clicks for link in links)
    if new:
        svc.store.update_leads(
            {n.link.lead_id: {"click_count": n.clicks, "clicked_link": True} for n in new}
        )
    return ChunkResult(new, lowered)


@task(name="flag-hot-clicks", cache_policy=NO_CACHE)
def flag_hot(new: list[NewClicks], hot_minutes: float, every_minutes: float) -> list[NewClicks]:
    """Each lead's last delivery (or send, before a receipt) from the ledger, and whether the
    new click can have come within `hot_minutes` of it."""
    if not new:
        return []
    svc = services()
    last_look = svc.clock.now() - timedelta(minutes=every_minutes)
    # With statuses given, the Airtable store does not take this for the scheduler's look at
    # the leads it is about to text.
    rows = svc.store.ledger_rows(statuses=WENT_OUT, lead_ids=[n.link.lead_id for n in new])
    delivered: dict[str, datetime] = {}
    for row in rows:
        at = row.delivery_at or row.sent_at
        if at and (row.lead_id not in delivered or at > delivered[row.lead_id]):
            delivered[row.lead_id] = at
    flagged = []
    for item in new:
        at = delivered.get(item.link.lead_id)
        hot = at is not None and at >= last_look - timedelta(minutes=hot_minutes)
        flagged.append(replace(item, delivered_at=at, hot=hot))
    return sorted(flagged, key=lambda n: (not n.hot, n.link.name))
