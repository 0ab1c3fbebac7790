"""The soak's one simulated clock, shared by every process of the run through a small file.

Simulated time runs at the real rate from an anchor, and the orchestrator moves the anchor
forward between scheduler runs: within a run, texts, webhooks and stop checks happen in real
order at real spacing, and a week still passes in minutes. Each process reads the anchor again
whenever the file changes; the file is replaced whole, so a reader never sees half of it.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


class SharedClock:
    """A Clock (uysp.ports.Clock) read by every process, moved only by the orchestrator."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._anchor = (0.0, 0.0)  # (real epoch seconds, simulated epoch seconds)

    def now(self) -> datetime:
        real, simulated = self._read()
        return datetime.fromtimestamp(simulated + time.time() - real, UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    # The orchestrator's side
    def set(self, when: datetime) -> None:
        """Jump to `when`; simulated time never goes back."""
        if when.tzinfo is None:
            raise ValueError("the soak clock needs a timezone-aware time")
        if self.path.exists() and when < self.now():
            raise ValueError(f"the soak clock cannot go back from {self.now()} to {when}")
        partial = self.path.with_suffix(".partial")
        partial.write_text(f"{time.time()!r} {when.timestamp()!r}")
        os.replace(partial, self.path)

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)

    def _read(self) -> tuple[float, float]:
        info = os.stat(self.path)
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        with self._lock:
            if stamp != self._stamp:
                real, simulated = self.path.read_text().split()
                self._anchor, self._stamp = (float(real), float(simulated)), stamp
            return self._anchor
