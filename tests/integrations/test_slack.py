"""Slack's adapter over HTTP against the loopback fake: what a posted notice looks like, and
that every way Slack fails is logged, counted and survived."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.slack import SlackNotifier
from tests.fakes import slack as sl
from tests.fakes.http import Fault
from uysp.ports import Notice

CHANNELS = {"alerts": "#uysp-alerts", "daily": "#uysp-daily", "sales": "C0SALES"}


@pytest.fixture
def fake() -> Iterator[sl.SlackFake]:
    with sl.SlackFake(retry_after=0, stall_seconds=1.0) as server:
        yield server


def notifier_for(fake: sl.SlackFake, **options) -> SlackNotifier:
    settings = {
        "channels": CHANNELS,
        "api_url": fake.api_url,
        "timeout": 0.5,
        "rate_per_second": 200,
        "cluster": False,
    }
    return SlackNotifier(fake.token, **(settings | options))


@pytest.fixture
def notifier(fake) -> SlackNotifier:
    return notifier_for(fake)


def test_a_notice_is_block_kit_with_a_fallback_text(fake, notifier):
    notice = Notice(
        "3 send(s) with unknown outcome",
        ["lead:c1:1 to ***0101: provider log unavailable", "R&D <team> asked"],
        level="error",
        fields={"unknown": 3, "run": "r-1"},
    )

    assert notifier.notify("alerts", notice) is True

    (post,) = fake.posts
    assert post["channel"] == "C0ALERTS"
    assert post["text"].startswith("3 send(s) with unknown outcome\n")
    header, lines, fields = post["blocks"]
    assert header["type"] == "header"
    assert header["text"]["text"] == ":rotating_light: 3 send(s) with unknown outcome"
    assert lines["text"]["text"].splitlines() == [
        "lead:c1:1 to ***0101: provider log unavailable",
        "R&amp;D &lt;team&gt; asked",
    ]
    assert [f["text"] for f in fields["fields"]] == ["*unknown*\n3", "*run*\nr-1"]


@pytest.mark.parametrize(("channel", "slack_id"), [("daily", "C0DAILY"), ("sales", "C0SALES")])
def test_each_channel_goes_where_settings_say(fake, notifier, channel, slack_id):
    assert notifier.notify(channel, Notice("Daily report")) is True

    assert fake.posts[0]["channel"] == slack_id


def test_a_long_notice_is_clipped_to_what_slack_accepts(fake, notifier):
    notice = Notice("t" * 400, ["line " * 100] * 20, fields={f"f{n}": n for n in range(15)})

    assert notifier.notify("alerts", notice) is True

    assert len(fake.posts[0]["blocks"][2]["fields"]) == 10


def test_a_rate_limited_post_is_retried_after_retry_after(fake, notifier):
    fake.fail_next(fake.rate_limited(), path=sl.POST_MESSAGE)

    assert notifier.notify("alerts", Notice("Run finished")) is True

    assert len(fake.requests) == 2
    assert len(fake.posts) == 1


@pytest.mark.parametrize(
    ("break_it", "reason"),
    [
        (lambda fake: setattr(fake, "token", "rotated"), "invalid_auth"),
        (lambda fake: fake.channels.clear(), "channel_not_found"),
        (lambda fake: fake.fail_next(fake.rate_limited(), times=3), "ratelimited"),
        (lambda fake: fake.fail_next(sl.SERVER_ERROR), "http_503"),
        (lambda fake: fake.fail_next(Fault.STALL), "TimeoutError"),
        (lambda fake: fake.go_offline(), "URLError"),
    ],
    ids=["bad-token", "unknown-channel", "rate-limited", "5xx", "timeout", "offline"],
)
def test_a_slack_failure_is_counted_and_logged_never_raised(fake, caplog, break_it, reason):
    notifier = notifier_for(fake, rate_limit_retries=2)
    break_it(fake)

    assert notifier.notify("alerts", Notice("Run paused")) is False

    assert notifier.failures == {reason: 1}
    assert "Run paused" in caplog.text
    assert fake.token not in caplog.text and "xoxb" not in caplog.text


def test_an_unknown_channel_name_is_a_failure_not_a_crash(fake):
    notifier = notifier_for(fake, channels={"alerts": "#uysp-alerts"})

    assert notifier.notify("sales", Notice("New booking")) is False
    assert fake.requests == []
