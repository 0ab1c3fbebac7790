"""GET /l/{alias}: the redirect, every hit kept, and only people counted.

The counts are the ones the click tracker reads (`LocalShortener.clicks`) and writes to the
lead's Click Count and Clicked Link.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.builders import make_lead

BOOKING_URL = "https://calendly.com/uysp/audit"
PERSON = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15"


@pytest.fixture
def link(receiver):
    """A lead's tracking link, as the scheduler makes it."""
    (lead,) = receiver.svc.store.add_leads([make_lead(1)])
    short = receiver.svc.shortener.create(
        f"{BOOKING_URL}?utm_source=sms&utm_campaign=c1&utm_content={lead.id}",
        lead_id=lead.id,
        campaign="c1",
    )
    return lead, short.id


def hits(receiver, alias):
    return receiver.svc.store.db.query(
        "SELECT method, user_agent, counted FROM clicks WHERE alias = ? ORDER BY id", (alias,)
    )


def counted(receiver, alias) -> int:
    return receiver.svc.shortener.clicks([alias])[alias]


def test_a_click_redirects_to_the_booking_page_tagged_with_the_lead(receiver, link):
    lead, alias = link

    response = receiver.http.get(f"/l/{alias}", headers={"User-Agent": PERSON})

    assert response.status_code == 302
    target = urlsplit(response.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == BOOKING_URL
    assert parse_qs(target.query) == {
        "utm_source": ["sms"],
        "utm_campaign": ["c1"],
        "utm_content": [lead.id],
    }


def test_an_unknown_alias_is_a_plain_404_page(receiver, link):
    response = receiver.http.get("/l/nope42", headers={"User-Agent": PERSON})

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "does not exist" in response.text


def test_people_are_counted(receiver, link):
    _, alias = link
    for _ in range(2):
        assert receiver.http.get(f"/l/{alias}", headers={"User-Agent": PERSON}).status_code == 302

    assert counted(receiver, alias) == 2
    assert [(h["method"], h["user_agent"], h["counted"]) for h in hits(receiver, alias)] == [
        ("GET", PERSON, 1),
        ("GET", PERSON, 1),
    ]


@pytest.mark.parametrize(
    "agent",
    [
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Twitterbot/1.0",
        "WhatsApp/2.23.20.0",
        "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (Applebot/0.1)",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (X11; Linux x86_64) Chrome/120 Safari/537.36 Google-PageRenderer",
        "Mozilla/5.0 (Windows NT 10.0) SkypeUriPreview Preview/0.5",
        "SomeSecurityScannerBOT/3.2",
        "LinkPreviewer 1.0 (preview)",
    ],
)
def test_previews_and_scanners_are_kept_but_not_counted(receiver, link, agent):
    _, alias = link

    response = receiver.http.get(f"/l/{alias}", headers={"User-Agent": agent})

    assert response.status_code == 302
    assert [(h["user_agent"], h["counted"]) for h in hits(receiver, alias)] == [(agent, 0)]
    assert counted(receiver, alias) == 0


def test_a_head_request_is_kept_but_not_counted(receiver, link):
    _, alias = link

    response = receiver.http.head(f"/l/{alias}", headers={"User-Agent": PERSON})

    assert response.status_code == 302
    assert [(h["method"], h["counted"]) for h in hits(receiver, alias)] == [("HEAD", 0)]
    assert counted(receiver, alias) == 0
