"""The scale-out test deployments' entrypoint: the real sms-scheduler flow, on the adapters the
worker's environment configures (SimpleTexting fake, shared SQLite file, Prefect run lock), with
the clock held at Tuesday 11:00 in New York so the send window is open whenever the test runs.
"""

from contextlib import ExitStack
from datetime import UTC, datetime

from flows.sms_scheduler import sms_scheduler
from integrations.clock import SimulatedClock
from integrations.factory import build_services
from tasks.runtime import using
from uysp.settings import get_settings

START = datetime(2026, 11, 17, 16, 0, tzinfo=UTC)

# Installed for the life of the flow-run process, which runs this one flow and exits.
_installed = ExitStack()
_installed.enter_context(using(build_services(get_settings(), SimulatedClock(START))))

__all__ = ["sms_scheduler"]
