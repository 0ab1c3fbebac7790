"""The Notifier contract: the same assertions over the console notifier and over Slack's
adapter talking HTTP to the loopback fake."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from rich.console import Console

from integrations.console import ConsoleNotifier
from integrations.slack import SlackNotifier
from tests.fakes.slack import SlackFake
from uysp.ports import Notice, Notifier

NOTICE = Notice(
    "Send run finished: 42 sent, 1 held",
    ["***4567: held by the send window", "credits left: 98,000"],
    level="warning",
    fields={"sent": 42, "held": 1},
)


@dataclass
class NotifierCase:
    notifier: Notifier
    break_backend: Callable[[], None]


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("stderr is gone")


@pytest.fixture(params=["console", "slack"])
def case(request) -> Iterator[NotifierCase]:
    if request.param == "console":
        console = Console(file=io.StringIO())

        def break_console() -> None:
            console.file = BrokenStream()

        yield NotifierCase(ConsoleNotifier(console), break_console)
        return
    with SlackFake() as fake:
        notifier = SlackNotifier(
            fake.token,
            channels={"alerts": "#uysp-alerts", "daily": "#uysp-daily", "sales": "#uysp-sales"},
            api_url=fake.api_url,
            timeout=1,
            rate_per_second=100,
            cluster=False,
        )
        yield NotifierCase(notifier, fake.go_offline)


@pytest.mark.parametrize("channel", ["alerts", "daily", "sales"])
def test_a_notice_is_posted_to_each_channel(case, channel):
    assert case.notifier.notify(channel, NOTICE) is True


def test_a_notice_with_only_a_title_is_posted(case):
    assert case.notifier.notify("alerts", Notice("Run paused")) is True


def test_a_failing_backend_returns_false_instead_of_raising(case):
    case.break_backend()

    assert case.notifier.notify("alerts", NOTICE) is False
