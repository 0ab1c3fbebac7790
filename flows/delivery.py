"""delivery: one delivery receipt (the former delivery-status workflow).

DELIVERY_REPORT marks the message Delivered, NON_DELIVERED_REPORT Undelivered with the carrier;
the first final status of a message stands, and only failures reach Slack. The processing is
shared with the receiver's embedded worker (tasks/events.py).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from tasks.events import keep_payload, process_kept_event


@flow(name="delivery", log_prints=False)
def delivery(event_id: str | None = None, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply one SimpleTexting DELIVERY_REPORT, NON_DELIVERED_REPORT or OUTGOING_MESSAGE."""
    if event_id is None:
        if payload is None:
            raise ValueError("delivery needs an event_id or a SimpleTexting report")
        event_id = keep_payload("simpletexting", payload)
    result = process_kept_event(event_id)
    get_run_logger().info("%s: %s (%s)", event_id, result["status"], result["detail"])
    return result
