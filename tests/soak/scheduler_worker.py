"""The soak's sms-scheduler process: the real flow on the adapters the UYSP_* environment names
(the fakes' loopback URLs), on the shared simulated clock, one run per line of stdin.

    python -m tests.soak.scheduler_worker      # SOAK_CLOCK names the clock file

It stays up between runs like a `uysp serve` process, so a week of runs does not pay for an
interpreter start each; the soak kills it with SIGKILL at random moments and starts another.
Each run's parameters come as a JSON line, and its summary goes back as `RESULT <json>`.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from flows.sms_scheduler import sms_scheduler
from integrations.factory import build_services
from tasks.runtime import using
from tests.soak.clock import SharedClock
from uysp.settings import get_settings

READY = "READY"
RESULT = "RESULT "


def main() -> None:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the soak's view of a hung run
    clock = SharedClock(os.environ["SOAK_CLOCK"])
    with (
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        using(build_services(get_settings(), clock)),
    ):
        print(READY, flush=True)
        for line in sys.stdin:
            try:
                summary = sms_scheduler(**json.loads(line))
            except Exception as exc:  # a failed run is a result too; the process goes on
                summary = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            print(RESULT + json.dumps(summary, default=str), flush=True)


if __name__ == "__main__":
    main()
