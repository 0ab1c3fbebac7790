"""Switchy's adapter over HTTP against the loopback fake: link creation and its failures, the
fallback, click counts by GraphQL, and its pace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from integrations.clock import SystemClock
from integrations.local_links import LocalShortener
from integrations.sqlite_store import SqliteDatabase
from integrations.switchy import FALLBACK_PREFIX, SwitchyShortener
from tests.fakes import switchy as sw
from tests.fakes.http import Fault, Reply
from uysp.errors import LinkError

DOMAIN = "go.uysp.example"
TARGET = "https://calendly.com/uysp/audit?utm_source=sms&utm_campaign=c1&utm_content=rec1"


@pytest.fixture
def fake() -> Iterator[sw.SwitchyFake]:
    with sw.SwitchyFake() as server:
        yield server


def shortener_for(fake: sw.SwitchyFake, **options) -> SwitchyShortener:
    settings = {
        "domain": DOMAIN,
        "api_url": fake.api_url,
        "graphql_url": fake.graphql_url,
        "links_per_hour": 1_800_000,
        "cluster": False,
        "timeout": 0.5,
        "backoff_seconds": 0.01,
    }
    return SwitchyShortener(fake.token, **(settings | options))


@pytest.fixture
def shortener(fake) -> Iterator[SwitchyShortener]:
    shortener = shortener_for(fake)
    yield shortener
    shortener.close()


@pytest.fixture
def local(tmp_path) -> Iterator[LocalShortener]:
    db = SqliteDatabase(tmp_path / "x.db")
    yield LocalShortener(db, SystemClock(), "https://uysp.example/l")
    db.close()


def test_a_link_is_created_with_the_documented_request(fake, shortener):
    link = shortener.create(TARGET, lead_id="rec1", campaign="c1")

    (request,) = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/links/create")
    assert request.headers["api-authorization"] == fake.token
    assert request.json() == {
        "link": {
            "url": TARGET,
            "domain": DOMAIN,
            "id": link.id,
            "title": "c1 rec1",
            "tags": ["c1"],
        },
        "autofill": False,
    }
    assert link.url == f"https://{DOMAIN}/{link.id}"
    assert fake.links[(DOMAIN, link.id)]["url"] == TARGET


def test_aliases_are_lower_case_because_switchy_ignores_case(shortener):
    links = [shortener.create(TARGET, lead_id="rec1", campaign="c1") for _ in range(10)]

    assert all(link.id == link.id.lower() for link in links)


def test_a_taken_alias_is_replaced_by_a_new_one(fake, shortener):
    fake.fail_next(Reply(409, {"message": "The id is already used"}), path=sw.CREATE)

    link = shortener.create(TARGET, lead_id="rec1", campaign="c1")

    tried = [r.json()["link"]["id"] for r in fake.requests_to("POST", sw.CREATE)]
    assert len(tried) == 2
    assert tried[0] != tried[1] == link.id


def test_a_link_whose_answer_was_lost_is_made_again_under_a_new_alias(fake, shortener):
    fake.fail_next(Fault.DROP_AFTER_ACCEPT, path=sw.CREATE)

    link = shortener.create(TARGET, lead_id="rec1", campaign="c1")

    assert len(fake.links) == 2  # the first one exists, unused
    assert fake.links[(DOMAIN, link.id)]["url"] == TARGET


def test_a_link_that_cannot_be_made_raises_link_error(fake, shortener):
    fake.fail_next(sw.SERVER_ERROR, times=3, path=sw.CREATE)

    with pytest.raises(LinkError, match="502"):
        shortener.create(TARGET, lead_id="rec1", campaign="c1")

    assert fake.links == {}


def test_a_refusal_that_would_repeat_is_not_retried(fake):
    shortener = shortener_for(fake)
    fake.token = "rotated"

    with pytest.raises(LinkError, match="401"):
        shortener.create(TARGET, lead_id="rec1", campaign="c1")

    assert len(fake.requests) == 1


def test_the_fallback_makes_the_link_when_switchy_cannot(fake, local):
    shortener = shortener_for(fake, fallback=local)
    fake.go_offline()

    link = shortener.create(TARGET, lead_id="rec1", campaign="c1")

    fake.come_online()
    assert link.id.startswith(FALLBACK_PREFIX)
    assert link.url.startswith("https://uysp.example/l/")


def test_clicks_come_from_whichever_shortener_made_the_link(fake, local):
    shortener = shortener_for(fake, fallback=local)
    on_switchy = shortener.create(TARGET, lead_id="rec1", campaign="c1")
    fake.fail_next(sw.SERVER_ERROR, times=3, path=sw.CREATE)
    on_fallback = shortener.create(TARGET, lead_id="rec2", campaign="c1")
    fake.click(DOMAIN, on_switchy.id, times=4)

    counts = shortener.clicks([on_switchy.id, on_fallback.id])

    assert counts == {on_switchy.id: 4, on_fallback.id: 0}


def test_clicks_are_read_in_queries_of_at_most_500_aliases(fake, shortener):
    made = [shortener.create(TARGET, lead_id=f"rec{n}", campaign="c1") for n in range(3)]
    fake.click(DOMAIN, made[2].id, times=2)
    aliases = [f"gone{n:04d}" for n in range(1_100)] + [link.id for link in made]

    counts = shortener.clicks(aliases)

    queries = fake.requests_to("POST", sw.GRAPHQL)
    assert [len(q.json()["variables"]["ids"]) for q in queries] == [500, 500, 103]
    assert all(q.headers["api-authorization"] == fake.token for q in queries)
    assert counts[made[2].id] == 2
    assert sum(counts.values()) == 2
    assert len(counts) == 1_103


def test_clicks_count_only_links_on_the_configured_domain(fake, shortener):
    link = shortener.create(TARGET, lead_id="rec1", campaign="c1")
    fake.take_alias("other.example", link.id)
    fake.click("other.example", link.id, times=9)

    assert shortener.clicks([link.id]) == {link.id: 0}


def test_a_refused_click_query_raises_link_error(fake, shortener):
    fake.token = "rotated"

    with pytest.raises(LinkError, match="access-denied"):
        shortener.clicks(["abc1234"])


def test_a_click_query_is_read_again_after_a_server_error(fake, shortener):
    link = shortener.create(TARGET, lead_id="rec1", campaign="c1")
    fake.click(DOMAIN, link.id)
    fake.fail_next(sw.SERVER_ERROR, path=sw.GRAPHQL)

    assert shortener.clicks([link.id]) == {link.id: 1}


def test_link_creation_keeps_to_its_hourly_rate():
    with sw.SwitchyFake(rate_limit=20, latency=0.02) as fake:
        shortener = shortener_for(fake, links_per_hour=18 * 3600)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=6) as pool:
            links = list(
                pool.map(
                    lambda n: shortener.create(TARGET, lead_id=f"rec{n}", campaign="c1"), range(27)
                )
            )
        elapsed = time.monotonic() - started
        shortener.close()

    assert len({link.id for link in links}) == 27
    assert fake.count_status(429) == 0
    assert fake.max_requests_per_second() <= 20
    assert elapsed >= 26 / 18
