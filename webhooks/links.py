"""GET /l/{alias}: the local shortener's redirect to the booking page.

Every hit is kept in the shortener's click table with its time, method and user agent, and
counted only when a person made it (not a HEAD request, not a link-preview or scanner agent).
The click tracker syncs those counts to the lead's Click Count and Clicked Link.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from integrations.local_links import LocalShortener
from uysp.events import counts_as_click


def booking_target(target_url: str, campaign: str, lead_id: str) -> str:
    """The campaign's booking page, tagged so a booking names its lead."""
    parts = urlsplit(target_url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query |= {"utm_source": "sms", "utm_campaign": campaign, "utm_content": lead_id}
    return urlunsplit(parts._replace(query=urlencode(query)))


def follow(
    shortener: LocalShortener, alias: str, method: str, user_agent: str | None
) -> str | None:
    """Where the link goes, after keeping the hit; None for an unknown alias."""
    rows = shortener.db.query(
        "SELECT lead_id, campaign, target_url FROM links WHERE alias = ?", (alias,)
    )
    if not rows:
        return None
    link = rows[0]
    shortener.record_click(
        alias,
        user_agent=user_agent or "",
        method=method,
        counted=counts_as_click(method, user_agent),
    )
    return booking_target(link["target_url"], link["campaign"], link["lead_id"])
