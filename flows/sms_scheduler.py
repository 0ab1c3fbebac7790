"""sms-scheduler: the former n8n SMS scheduler, as a flow of retriable, chunked tasks.

Kill switch, run lock, reconciliation of interrupted sends, the gates, then the sends in chunks
of `chunk_size` leads per task run (10,000 leads make 200 task runs, not 10,000).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from pydantic import Field

from tasks.rollout import sending_paused_in_prefect
from tasks.runtime import services
from tasks.scheduling import (
    plan_batch,
    reconcile_reserved,
    repair_leads,
    settle_credits,
)
from tasks.send_pipeline import send_chunk, steady_pace
from tasks.sending import RunControl
from uysp.models import CampaignSettings
from uysp.planning import Plan, RunParams
from uysp.ports import SEND_LOCK, Notice
from uysp.rollout import SENDING_VARIABLE
from uysp.settings import get_settings

HARD_BATCH_CAP = 100
HARD_DAILY_CAP = 1000
HEAD_START_SECONDS = 30.0  # at most, should the first chunk neither send nor end


def _summary_lines(summary: dict[str, Any]) -> list[str]:
    lines = [
        f"campaign {summary['campaign']}: {summary['sent']} sent, {summary['failed_total']} failed,"
        f" {summary['held_total']} held back ({summary['status']})",
    ]
    lines += [f"held {reason}: {count}" for reason, count in sorted(summary["held"].items())]
    lines += [f"failed {kind}: {count}" for kind, count in sorted(summary["failed"].items())]
    if summary.get("halt_reason"):
        lines.append(f"halted: {summary['halt_reason']}")
    return lines


def _publish(summary: dict[str, Any], plan: Plan | None) -> None:
    held_rows = (
        [
            {"reason": reason, "leads": count, "example": (plan.messages.get(reason) or [""])[0]}
            for reason, count in sorted(summary["held"].items(), key=lambda kv: -kv[1])
        ]
        if plan
        else []
    )
    create_table_artifact(
        key="sms-scheduler-held",
        table=held_rows or [{"reason": "none", "leads": 0, "example": ""}],
        description="Leads held back by each gate in this run",
    )
    create_markdown_artifact(
        key="sms-scheduler-summary",
        markdown="\n".join(f"- {line}" for line in _summary_lines(summary)),
        description="sms-scheduler run summary",
    )
    level = "error" if summary.get("halt_reason") else "info"
    services().notifier.notify(
        "alerts" if level == "error" else "daily",
        Notice("SMS scheduler run", _summary_lines(summary), level=level),
    )


@flow(name="sms-scheduler", log_prints=False)
def sms_scheduler(
    campaign: str | None = None,
    batch_size: Annotated[int, Field(ge=1, le=HARD_BATCH_CAP)] = 20,
    daily_cap: Annotated[int, Field(ge=0, le=HARD_DAILY_CAP)] = 200,
    daily_segment_cap: Annotated[int | None, Field(ge=0)] = None,
    dry_run: bool = False,
    fast_mode: bool | None = None,
    test_mode: bool | None = None,
) -> dict[str, Any]:
    """Send the next batch of sequence texts. `campaign`, `fast_mode` and `test_mode` default to
    the Settings row; caps can only be lowered below the hard caps, never raised past them."""
    started = time.monotonic()
    logger = get_run_logger()
    config = get_settings()
    svc = services()
    store_settings = svc.store.get_settings()
    campaign = campaign or store_settings.active_campaign
    summary: dict[str, Any] = {
        "campaign": campaign,
        "status": "completed",
        "sent": 0,
        "failed": {},
        "held": {},
        "failed_total": 0,
        "held_total": 0,
        "dry_run": dry_run,
        "reconciled": {},
    }
    if not campaign:
        summary |= {"status": "halted", "halt_reason": "no campaign given and no Active Campaign"}
        _publish(summary, None)
        return summary
    paused_by = None
    if not dry_run:
        if not store_settings.sending_on:
            paused_by = "SMS Sending"
        elif sending_paused_in_prefect():
            paused_by = f"the Prefect variable {SENDING_VARIABLE}"
    if paused_by:
        summary |= {"status": "paused", "halt_reason": f"kill switch: {paused_by} is Paused"}
        logger.warning("%s is Paused; nothing sent", paused_by)
        _publish(summary, None)
        return summary

    owner = str(flow_run.get_id() or f"local-{time.time_ns()}")
    lock = (
        nullcontext(True)
        if dry_run
        else svc.lock.hold(SEND_LOCK, owner, config.run_lock_ttl_seconds)
    )
    with lock as held:
        if not held:
            summary |= {"status": "skipped", "halt_reason": "another run holds the send lock"}
            logger.warning("another scheduler run holds the send lock; this run sends nothing")
            return summary
        if not dry_run:
            summary["reconciled"] = vars(reconcile_reserved(config.reconcile_grace_seconds))
        params = RunParams(
            campaign=campaign,
            batch_size=batch_size,
            daily_cap=daily_cap,
            daily_segment_cap=daily_segment_cap,
            fast_mode=store_settings.fast_mode if fast_mode is None else fast_mode,
            credit_floor=config.credit_floor,
        )
        placeholder = f"{config.link_base_url.rstrip('/')}/XXXXXX"
        plan = plan_batch(params, store_settings, config.campaign_timezone, placeholder)
        for alert in plan.alerts:
            svc.notifier.notify("alerts", Notice(alert, level="warning"))
        if dry_run:
            summary |= {"status": "dry_run", "would_send": len(plan.sends)}
        else:
            repair_leads(plan.repairs)
            test_mode = store_settings.test_mode if test_mode is None else test_mode
            summary |= _send_plan(plan, owner, test_mode, store_settings)
    summary["held"] = dict(plan.held)
    summary["held_total"] = sum(plan.held.values())
    summary["failed_total"] = sum(summary["failed"].values())
    summary["wall_seconds"] = round(time.monotonic() - started, 3)
    _publish(summary, plan)
    return summary


def _send_plan(
    plan: Plan, owner: str, test_mode: bool, store_settings: CampaignSettings
) -> dict[str, Any]:
    """The send phase: chunks, then contact flush, credits, late reconciliation, auto-pause."""
    config, svc = get_settings(), services()
    control = RunControl(
        run_id=owner,
        error_rate_pause=config.error_rate_pause,
        min_attempts=config.error_rate_min_attempts,
        test_mode=test_mode,
        test_phone=store_settings.test_phone,
        booking_url=store_settings.calendly_url,
    )
    if control.test_mode and not control.test_phone:
        control.halt("test mode needs a Test Phone in Settings")
    with steady_pace():
        _send(plan, control, config.chunk_size, config.send_concurrency, config.parallel_chunks)
    svc.gateway.flush()
    result: dict[str, Any] = {
        "credits_left": settle_credits(control.credits, config.credit_alert_below)
    }
    if control.unknown_keys:
        result["reconciled_after"] = vars(
            reconcile_reserved(config.reconcile_grace_seconds, keys=control.unknown_keys)
        )
    if control.auto_paused:
        svc.store.update_settings(sms_sending="Paused")
        svc.notifier.notify(
            "alerts", Notice("SMS sending auto-paused", [control.halt_reason or ""], level="error")
        )
    plan.held.update(control.held)
    return result | {
        "sent": control.sent,
        "segments": control.segments,
        "credits": control.credits,
        "failed": dict(control.failed),
        "errors": control.errors,
        "status": "halted" if control.halted else "completed",
        "halt_reason": control.halt_reason,
    }


def staggered_chunks(sends: list, size: int, parallel: int) -> Iterator[list]:
    """Chunks of `size`, but the first `parallel - 1` are 1/p, 2/p ... of it: chunks started
    together would end together and leave the provider idle while the next ones start up."""
    sizes = [max(size * k // parallel, 1) for k in range(1, parallel)]
    start = 0
    while start < len(sends):
        step = sizes.pop(0) if sizes else size
        yield sends[start : start + step]
        start += step


def _send(plan: Plan, control: RunControl, chunk_size: int, concurrency: int, parallel: int):
    """Send the plan in chunk task runs, `parallel` of them in flight so one chunk's store
    writes overlap another's provider calls; a halt stops new chunks from starting."""
    pending = deque(staggered_chunks(plan.sends, chunk_size, parallel))
    total, done = len(plan.sends), 0
    progress = create_progress_artifact(progress=0.0, description=f"sending {total} texts")
    running: deque[tuple[PrefectFuture, int]] = deque()
    while pending or running:
        while pending and len(running) < parallel and not control.halted:
            chunk = pending.popleft()
            running.append((send_chunk.submit(chunk, control, concurrency), len(chunk)))
            # The first chunk has the providers to itself until its texts are going out: two
            # chunks starting together would both wait longer for their first links.
            control.under_way.wait(HEAD_START_SECONDS)
        future, size = running.popleft()
        control.hold("halted", future.result())
        done += size
        update_progress_artifact(artifact_id=progress, progress=100.0 * done / total)
        if control.halted and pending:
            control.hold("halted", sum(len(chunk) for chunk in pending))
            pending.clear()
    if total == 0:
        update_progress_artifact(artifact_id=progress, progress=100.0)
