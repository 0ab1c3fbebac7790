"""The demo: a whole simulated campaign on the embedded default, with no account anywhere.

Synthetic leads go into a fresh SQLite file, a 3-step A/B campaign is seeded, and 14 days run on
a simulated clock: the real sms-scheduler flow on the rollout's weekday schedules, and between
runs the world answers (delivery receipts, clicks, STOP replies, bookings), written straight to
the store. The violation counts at the end come from the sandbox outbox and the demo's own event
record, not from the scheduler's counters.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_SERVER_ANALYTICS_ENABLED,
    PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED,
    temporary_settings,
)

from flows.sms_scheduler import sms_scheduler
from integrations.clock import SimulatedClock
from integrations.console import ConsoleNotifier
from integrations.local_links import LocalShortener
from integrations.sandbox_sms import SandboxGateway
from integrations.sqlite_store import SqliteDatabase, SqliteRunLock, SqliteStore
from tasks.runtime import using
from uysp.compliance import CampaignHours, window_reason
from uysp.models import LedgerStatus, ProcessingStatus, StopReason, Template
from uysp.ports import Services
from uysp.rollout import PHASES
from uysp.synthetic import synthetic_leads

EASTERN = ZoneInfo("America/New_York")
CAMPAIGN = "demo-audit"
FIRST_DAY = date(2026, 11, 2)  # a Monday
TEMPLATES = {
    1: "Hi {Name}, it's Ana at UYSP. Free 15-min pipeline audit this week? {Link}"
    " Reply STOP to opt out",
    2: "{Name}, following up on the audit offer, a few slots left: {Link}",
    3: "Last note, {Name}: if sales coaching is on your list this quarter, grab a time {Link}",
}
VARIANT_B_OPENERS = {1: "Hey {Name}! ", 2: "", 3: ""}
HUMAN_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X)"


@dataclass
class World:
    """What the simulated people did, recorded independently of the scheduler."""

    rng: random.Random
    stopped_at: dict[str, datetime] = field(default_factory=dict)  # phone -> STOP or booking
    receipted: set[str] = field(default_factory=set)
    replies: int = 0
    clicks: int = 0


def phase_for(day: int):
    return PHASES[0] if day < 3 else PHASES[1] if day < 8 else PHASES[2]


def seed_campaign(store: SqliteStore) -> None:
    store.update_settings(
        active_campaign=CAMPAIGN,
        sms_sending="On",
        ab_ratio_a=50,
        calendly_url="https://calendly.com/uysp/pipeline-audit",
        send_start_hour=9,
        send_end_hour=20,
        send_weekdays="Mon,Tue,Wed,Thu,Fri",
    )
    store.save_templates(
        Template(
            campaign=CAMPAIGN,
            variant=variant,
            step=step,
            body=(VARIANT_B_OPENERS[step] if variant == "B" else "") + body,
            delay_days=0 if step == 1 else 2,
            fast_delay_minutes=0 if step == 1 else 30,
        )
        for variant in "AB"
        for step, body in TEMPLATES.items()
    )


def answer(svc: Services, shortener: LocalShortener, world: World) -> None:
    """Between runs: receipts for new texts, then some people click, book or say STOP."""
    store, now, rng = svc.store, svc.clock.now(), world.rng
    fresh = [
        r
        for r in store.ledger_rows(statuses=[LedgerStatus.SENT])
        if r.send_key not in world.receipted
    ]
    receipts, lead_status = [], {}
    for row in fresh:
        world.receipted.add(row.send_key)
        delivered = rng.random() < 0.96
        receipts.append(
            row.model_copy(
                update={
                    "status": LedgerStatus.DELIVERED if delivered else LedgerStatus.UNDELIVERED,
                    "delivery_at": now,
                    "carrier": None if delivered else "T-Mobile",
                }
            )
        )
        lead_status[row.lead_id] = {"sms_status": "Delivered" if delivered else "Failed"}
    store.record_sends(receipts, lead_status)

    updates: dict[str, dict] = {}
    for lead in store.get_leads([r.lead_id for r in receipts if r.status == "Delivered"]):
        if lead.phone in world.stopped_at:
            continue
        roll = rng.random()
        if roll < 0.02:
            world.stopped_at[lead.phone] = now
            world.replies += 1
            updates[lead.id] = {
                "sms_stop": True,
                "stop_reason": StopReason.STOP,
                "processing_status": ProcessingStatus.STOPPED,
                "last_reply_at": now,
                "last_reply_text": "STOP",
            }
        elif roll < 0.14 and lead.short_link_id:
            world.clicks += 1
            shortener.record_click(
                lead.short_link_id, user_agent=HUMAN_AGENT, method="GET", counted=True
            )
            updates[lead.id] = {"click_count": lead.click_count + 1, "clicked_link": True}
            if rng.random() < 0.35:
                world.stopped_at[lead.phone] = now
                updates[lead.id] |= {
                    "booked": True,
                    "booked_at": now + timedelta(days=2),
                    "sms_stop": True,
                    "stop_reason": StopReason.BOOKED,
                    "processing_status": ProcessingStatus.COMPLETE,
                }
    store.update_leads(updates)


def report(svc: Services, world: World, held: Counter[str], wall: float) -> dict[str, Any]:
    """The campaign's outcome, with the three violations computed from the outbox."""
    store = svc.store
    gateway: SandboxGateway = svc.gateway  # type: ignore[assignment]
    outbox = gateway.outbox()
    hours = CampaignHours.from_settings(store.get_settings())
    texts_per_phone = Counter(m.phone for m in outbox)
    distinct = Counter(phone for phone, _ in {(m.phone, m.text) for m in outbox})
    leads = store.all_leads()
    sent_rows = [r for r in store.ledger_rows() if r.status in _WENT_OUT]
    return {
        "leads": len(leads),
        "sent": len(sent_rows),
        "by_step": dict(sorted(Counter(str(r.step) for r in sent_rows).items())),
        "by_variant": dict(sorted(Counter(r.variant for r in sent_rows).items())),
        "delivered": sum(r.status == LedgerStatus.DELIVERED for r in sent_rows),
        "clicked": sum(lead.clicked_link for lead in leads),
        "stopped": sum(lead.stop_reason == StopReason.STOP for lead in leads),
        "booked": sum(lead.booked for lead in leads),
        "completed": sum(lead.processing_status == ProcessingStatus.COMPLETE for lead in leads),
        "held_by_gate": dict(held.most_common()),
        "duplicate_sends": sum(texts_per_phone[p] - distinct[p] for p in texts_per_phone),
        "quiet_hour_violations": sum(
            window_reason(m.phone, m.sent_at, hours) is not None for m in outbox
        ),
        "after_stop_sends": sum(
            m.phone in world.stopped_at and m.sent_at > world.stopped_at[m.phone] for m in outbox
        ),
        "wall_seconds": round(wall, 2),
    }


_WENT_OUT = {LedgerStatus.SENT, LedgerStatus.DELIVERED, LedgerStatus.UNDELIVERED}


@contextlib.contextmanager
def prefect_backend() -> Iterator[None]:
    """The configured Prefect server if there is one (runs show in its UI), else a temporary
    one for the length of the demo."""
    quiet = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    if PREFECT_API_URL.value():
        with temporary_settings(quiet):
            yield
        return
    from prefect.testing.utilities import prefect_test_harness

    # The temporary server's task-run recorder contends for its SQLite file and costs a 2 s
    # retry per flow run; the demo's audit trail is our ledger.
    quiet[PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED] = False
    quiet[PREFECT_SERVER_ANALYTICS_ENABLED] = False
    with temporary_settings(quiet), prefect_test_harness():
        yield


def run_demo(
    leads: int = 500,
    days: int = 14,
    seed: int = 7,
    db_path: Path | None = None,
    on_run: Callable[[str, dict], None] | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    db_path = db_path or Path(tempfile.mkdtemp(prefix="uysp-demo-")) / "demo.db"
    if db_path.exists():
        raise FileExistsError(f"{db_path} exists: the demo starts from a fresh file")
    db = SqliteDatabase(db_path)
    clock = SimulatedClock(datetime.combine(FIRST_DAY, datetime.min.time(), EASTERN))
    shortener = LocalShortener(db, clock, "http://127.0.0.1:8787/l")
    svc = Services(
        store=SqliteStore(db),
        gateway=SandboxGateway(db, clock, seed=seed),
        shortener=shortener,
        notifier=ConsoleNotifier(quiet=True),
        clock=clock,
        lock=SqliteRunLock(db),
    )
    seed_campaign(svc.store)
    svc.store.add_leads(synthetic_leads(leads, seed=seed))
    world = World(random.Random(seed))
    held: Counter[str] = Counter()
    with prefect_backend(), using(svc):
        for day in range(days):
            today = FIRST_DAY + timedelta(days=day)
            phase = phase_for(day)
            hours = phase.run_hours if today.weekday() < 5 else ()
            for hour in hours:
                clock.set(datetime(today.year, today.month, today.day, hour, tzinfo=EASTERN))
                summary = sms_scheduler(batch_size=phase.batch_size, daily_cap=phase.daily_cap)
                held.update(summary["held"])
                if on_run:
                    on_run(f"{today:%a %d %b} {hour:02d}:00 {phase.name}", summary)
                clock.advance(timedelta(minutes=30))
                answer(svc, shortener, world)
    result = report(svc, world, held, time.monotonic() - started)
    alerts = [n for channel, n in svc.notifier.sent if channel == "alerts"]
    result |= {"database": str(db_path), "alerts": len(alerts)}
    return result
