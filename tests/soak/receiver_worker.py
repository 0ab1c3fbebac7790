"""The soak's webhook receiver process: the real FastAPI app and its inbox worker, on the
adapters the UYSP_* environment names and the shared simulated clock.

    python -m tests.soak.receiver_worker PORT      # SOAK_CLOCK names the clock file

Events are worked in this process (embedded dispatch), as `uysp webhooks --dispatch embedded`
does: the soak's Prefect server has no booking, inbound or delivery deployments to start.
"""

from __future__ import annotations

import os
import sys

import uvicorn

from integrations.factory import build_services
from tests.soak.clock import SharedClock
from uysp.settings import get_settings
from webhooks.app import create_app


def main() -> None:
    settings = get_settings()
    services = build_services(settings, SharedClock(os.environ["SOAK_CLOCK"]))
    app = create_app(services, dispatch="embedded", settings=settings)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
