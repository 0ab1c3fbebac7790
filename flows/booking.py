"""booking: one Calendly event (the former booking workflow), from the inbox or as a payload.

The receiver starts this flow's deployment for each Calendly event when a Prefect server is
configured; embedded, its worker runs the same processing (tasks/events.py) directly. Given a
`payload` instead of an `event_id` (a booking pasted from Calendly's UI), the flow first keeps it
in the inbox, so a booking handed in twice is still processed once.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from tasks.events import keep_payload, process_kept_event


@flow(name="booking", log_prints=False)
def booking(event_id: str | None = None, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Stop every lead record of the person who booked; clear Booked on a plain cancellation."""
    if event_id is None:
        if payload is None:
            raise ValueError("booking needs an event_id or a Calendly payload")
        event_id = keep_payload("calendly", payload)
    result = process_kept_event(event_id)
    get_run_logger().info("%s: %s (%s)", event_id, result["status"], result["detail"])
    return result
