"""The embedded Notifier: notices go to the terminal (and stay in memory for the demo)."""

from __future__ import annotations

import logging

from rich.console import Console

from uysp.ports import Channel, Notice

log = logging.getLogger(__name__)
_STYLE = {"info": "cyan", "warning": "yellow", "error": "bold red"}


class ConsoleNotifier:
    def __init__(self, console: Console | None = None, *, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.sent: list[tuple[Channel, Notice]] = []

    def notify(self, channel: Channel, notice: Notice) -> bool:
        self.sent.append((channel, notice))
        if self.quiet:
            return True
        try:
            style = _STYLE.get(notice.level, "white")
            self.console.print(f"[{style}][{channel}] {notice.title}[/{style}]")
            for line in notice.lines:
                self.console.print(f"  {line}", highlight=False, markup=False)
        except Exception:  # a notifier never stops a flow
            log.exception("console notifier failed")
            return False
        return True
