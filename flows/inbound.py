"""inbound: one text from a lead, or an unsubscribe report (the former reply workflow).

Opt-outs stop every lead with the number, START/UNSTOP/YES undo a STOP, HELP gets the help
reply, and anything else is a person answering: their sequence stops and sales hears it. The
processing is shared with the receiver's embedded worker (tasks/events.py).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from tasks.events import keep_payload, process_kept_event


@flow(name="inbound", log_prints=False)
def inbound(event_id: str | None = None, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply one SimpleTexting INCOMING_MESSAGE or UNSUBSCRIBE_REPORT."""
    if event_id is None:
        if payload is None:
            raise ValueError("inbound needs an event_id or a SimpleTexting report")
        event_id = keep_payload("simpletexting", payload)
    result = process_kept_event(event_id)
    get_run_logger().info("%s: %s (%s)", event_id, result["status"], result["detail"])
    return result
