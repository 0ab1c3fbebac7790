"""The LinkShortener contract: the same assertions over the local shortener and over Switchy's
adapter talking HTTP to the loopback fake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from integrations.clock import SystemClock
from integrations.local_links import LocalShortener
from integrations.sqlite_store import SqliteDatabase, to_sql
from integrations.switchy import SwitchyShortener
from tests.fakes.switchy import SwitchyFake
from uysp.ports import LinkShortener

TARGET = "https://calendly.com/uysp/audit?utm_source=sms&utm_campaign=c1&utm_content=rec1"
DOMAIN = "hi.switchy.io"


@dataclass
class ShortenerCase:
    shortener: LinkShortener
    click: Callable[[str], None]
    """Record one counted click on the link with this id."""


@pytest.fixture(params=["local", "switchy"])
def case(request, tmp_path) -> Iterator[ShortenerCase]:
    if request.param == "local":
        db = SqliteDatabase(tmp_path / "x.db")
        clock = SystemClock()
        local = LocalShortener(db, clock, "http://127.0.0.1:8787/l")

        def click(alias: str) -> None:
            with db.transaction() as conn:
                conn.execute(
                    "INSERT INTO clicks (alias, at, user_agent, method, counted)"
                    " VALUES (?, ?, 'Mozilla/5.0', 'GET', 1)",
                    (alias, to_sql(clock.now())),
                )

        yield ShortenerCase(local, click)
        db.close()
        return
    with SwitchyFake() as fake:
        switchy = SwitchyShortener(
            fake.token,
            domain=DOMAIN,
            api_url=fake.api_url,
            graphql_url=fake.graphql_url,
            links_per_hour=360_000,
            cluster=False,
        )
        yield ShortenerCase(switchy, lambda alias: fake.click(DOMAIN, alias))
        switchy.close()


def test_a_link_has_an_id_and_a_url_that_carries_it(case):
    link = case.shortener.create(TARGET, lead_id="rec1", campaign="c1")

    assert link.id
    assert link.url.startswith("http")
    assert link.url.endswith(link.id)


def test_links_are_unique_per_call_even_for_the_same_lead(case):
    links = [case.shortener.create(TARGET, lead_id="rec1", campaign="c1") for _ in range(20)]

    assert len({link.id for link in links}) == 20
    assert len({link.url for link in links}) == 20


def test_new_links_have_no_clicks(case):
    links = [case.shortener.create(TARGET, lead_id=f"rec{n}", campaign="c1") for n in range(3)]

    assert case.shortener.clicks([link.id for link in links]) == {link.id: 0 for link in links}


def test_clicks_are_counted_for_their_own_link_only(case):
    clicked = case.shortener.create(TARGET, lead_id="rec1", campaign="c1")
    other = case.shortener.create(TARGET, lead_id="rec2", campaign="c1")
    case.click(clicked.id)
    case.click(clicked.id)

    assert case.shortener.clicks([clicked.id, other.id]) == {clicked.id: 2, other.id: 0}


def test_clicks_of_no_links_is_empty(case):
    assert case.shortener.clicks([]) == {}
