"""A campaign under faults: the orchestration of the soak.

The real adapters run against the loopback fakes (Airtable, SimpleTexting, Switchy, Slack), in
the processes an operator runs: the scheduler and the webhook receiver as their own processes,
a Prefect server, and the periodic flows (click tracker, staging, health, daily report) here.
Simulated time moves from slot to slot of the schedule; at each, the world catches up (the
webhooks due by then are delivered and worked), the periodic flows due run, and the scheduler
runs while faults are injected and people answer. At the end the faults stop, a last run
settles interrupted sends, the backlog drains, `uysp reconcile` runs when it exists, and the
invariants are computed from the fakes and the world.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_LOGGING_LEVEL,
    temporary_settings,
)

from integrations.airtable_setup import ensure_airtable_rate_limit, wanted_schema
from integrations.prefect_setup import airtable_tuning, ensure_prefect_limits, provider_rates
from tests.fakes.airtable import FakeAirtable
from tests.fakes.simpletexting import SimpleTextingFake
from tests.fakes.slack import SlackFake
from tests.fakes.switchy import SwitchyFake
from tests.scaleout.cluster import Cluster
from tests.soak import invariants
from tests.soak.clock import SharedClock
from tests.soak.faults import PER_REQUEST, PER_RUN, FaultPlan, FaultRates, RunFaults
from tests.soak.processes import ROOT, ReceiverProcess, SchedulerProcess, free_port
from tests.soak.world import World, lead_rows, person_of, settings_row, templates
from uysp.replies import help_text
from uysp.settings import get_settings

NEW_YORK = ZoneInfo("America/New_York")
FIRST_DAY = date(2026, 11, 2)  # a Monday, after the clocks went back
LINK_DOMAIN = "go.uysp.example"
SIGNING_KEY = "soak-calendly-signing-key"
WEBHOOK_TOKEN = "soak-webhook-token"
STOP_CHECK_SECONDS = 5.0  # the Airtable store's staleness bound for stop flags (its default)
# A text that reached the provider later than this after the receiver accepted a STOP or a
# booking was not in flight at that instant: the stop check may use flags 5 s old, a send's
# path from its check to the provider (pacing, a 429 cool-down) takes a few seconds more, and
# the receiver has what is left to write the stop to Airtable.
IN_FLIGHT_SECONDS = 15.0
AIRTABLE_LATENCY = 0.05
# Kinds `uysp reconcile` may leave that the soak judges itself: Unknown rows wait for a person
# by design (they must be reported, which is checked); its sent_after_stop takes the person's
# own reply time and allows no text in flight, where the promise is about the stop as the
# receiver accepted it (checked as texted_after_stop_or_booking, with the in-flight text).
JUDGED_HERE = frozenset({"unknown", "sent_after_stop"})
RUN_TIMEOUT = float(os.environ.get("SOAK_RUN_TIMEOUT", 900))
# Airtable allows 5 requests/s per base. The soak's fake allows 15 (and the Prefect limit the
# processes share is set to match, each process still pacing itself at 5): at 5, a week of
# runs would take hours, and two processes on one base meet 429 storms (see the README).
AIRTABLE_RATE = float(os.environ.get("SOAK_AIRTABLE_RATE", 15))


@dataclass(frozen=True)
class Form:
    """How big and how long a soak is, and its schedule (hours in New York)."""

    name: str
    leads: int
    days: int
    run_hours: tuple[int, ...]  # the scheduler's runs, Monday to Friday
    weekend_hours: tuple[int, ...]
    batch_size: int
    daily_cap: int
    flows: tuple[tuple[int, str], ...]  # (hour, periodic flow), every day
    first_day_flows: tuple[tuple[int, str], ...] = ()  # (hour, periodic flow), the first day
    strikes: int = 3  # people texted earlier who answer while a run is under way
    settle_seconds: float = 60  # the most the world waits for the receiver to catch up
    faults: FaultRates = field(default_factory=FaultRates)

    def slots(self) -> Iterator[tuple[datetime, bool, list[str]]]:
        """(moment, whether the scheduler runs, the periodic flows due) for every slot."""
        for day in range(self.days):
            today = FIRST_DAY + timedelta(days=day)
            runs = self.run_hours if today.weekday() < 5 else self.weekend_hours
            flows = self.flows + (self.first_day_flows if day == 0 else ())
            for hour in sorted({*runs, *(h for h, _ in flows)}):
                moment = datetime(today.year, today.month, today.day, hour, tzinfo=NEW_YORK)
                yield moment, hour in runs, [name for h, name in flows if h == hour]

    @property
    def runs(self) -> int:
        return sum(run for _, run, _ in self.slots())


SHORT = Form(
    "short",
    leads=80,
    days=3,
    run_hours=(10, 21),
    weekend_hours=(),
    batch_size=30,
    daily_cap=300,
    flows=((15, "click-tracker"),),
    first_day_flows=((9, "health"), (13, "staging"), (21, "daily-report")),
    strikes=3,
    settle_seconds=30,
    # Fewer random process kills than the week: each kind is still forced at least once.
    faults=FaultRates(scheduler_kill=0.1, receiver_kill=0.1),
)
WEEK = Form(
    "week",
    leads=2000,
    days=7,
    run_hours=(7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 19, 21),
    weekend_hours=(11, 15),
    batch_size=100,
    daily_cap=1000,
    flows=((9, "health"), (12, "click-tracker"), (13, "staging"), (18, "click-tracker"),
           (21, "daily-report")),
)  # fmt: skip


@dataclass
class Runs:
    """What the soak did to the scheduler, from the outside."""

    statuses: Counter[str] = field(default_factory=Counter)
    texts_accepted: int = 0
    kill_at_text: int | None = None
    in_run: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class Soak:
    def __init__(self, form: Form, seed: int, workdir: Path, log: Callable[[str], None]) -> None:
        self.form, self.seed, self.workdir, self.log = form, seed, workdir, log
        self.clock = SharedClock(workdir / "clock")
        self.clock.set(datetime.combine(FIRST_DAY, datetime.min.time(), NEW_YORK))
        self.faults = FaultPlan(seed, form.runs, form.faults)
        self.runs = Runs()
        self.tally: Counter[str] = Counter()  # what the soak itself had to do
        self.help_text = help_text()

    # Setting up
    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            self._start_fakes(stack)
            self._seed_base()
            (self.workdir / "prefect").mkdir()
            self.cluster = Cluster(self.workdir / "prefect", {})
            stack.callback(self.cluster.stop)
            env = self._environment()
            # The three start together: the product's processes import while the server starts.
            self.receiver = ReceiverProcess(env, self.workdir, port=self.receiver_port)
            self.env = env
            self.scheduler = self._new_scheduler()
            self.standby = self._new_scheduler()
            stack.callback(lambda: (self.scheduler.stop(), self.standby.stop()))
            stack.callback(self.receiver.stop)
            self.receiver.spawn()
            self.cluster.start_server()
            stack.enter_context(_process_environment(env))
            stack.enter_context(
                temporary_settings(
                    {
                        PREFECT_API_URL: self.cluster.url,
                        PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
                        PREFECT_LOGGING_LEVEL: "WARNING",
                    }
                )
            )
            stack.enter_context(_quiet_prefect_logs())
            stack.callback(_drain_prefect_workers)
            settings = get_settings()
            ensure_prefect_limits(rates=provider_rates(settings))
            shared = replace(airtable_tuning(settings), requests_per_second=AIRTABLE_RATE)
            ensure_airtable_rate_limit(tuning=shared)
            self.receiver.ready()
            self.scheduler.ready()
            from integrations.factory import build_services
            from tasks.runtime import using

            stack.enter_context(using(build_services(settings, self.clock)))
            self.world.start(self.receiver.url)
            stack.callback(self.world.stop)
            self._campaign()
            self._settle_everything()
            reconciled = self._reconcile()
            self.world.stop()
            result = self._evaluate(reconciled)
            self._keep_evidence(result)
        result["wall_seconds"] = round(time.monotonic() - started, 1)
        return result

    def _start_fakes(self, stack: contextlib.ExitStack) -> None:
        self.airtable = stack.enter_context(
            FakeAirtable(
                latency=AIRTABLE_LATENCY,
                requests_per_second=AIRTABLE_RATE,
                rate_limit_penalty=5,
                clock=self.clock.now,
                journal=True,
            )
        )
        self.texting = stack.enter_context(
            SimpleTextingFake(rate_limit=10, stall_seconds=11, clock=self.clock.now)
        )
        self.texting.chaos = self.faults.simpletexting
        self.texting.on_message = self._text_taken
        self.links = stack.enter_context(SwitchyFake())
        self.links.chaos = self.faults.switchy
        self.slack = stack.enter_context(SlackFake())

    def _seed_base(self) -> None:
        fake = self.airtable
        self.base = fake.add_base(wanted_schema())
        fake.insert(self.base, "Settings", [settings_row()])
        fake.insert(self.base, "SMS_Templates", [t.airtable_fields() for t in templates()])
        imported = self.clock.now() - timedelta(days=3)
        rows = lead_rows(self.form.leads, self.seed, imported)
        ids = fake.insert(self.base, "Leads", rows)
        people = [p for i, row in zip(ids, rows, strict=True) if (p := person_of(i, row))]
        self.receiver_port = free_port()
        self.world = World(
            self.seed,
            self.clock,
            people,
            link_domain=LINK_DOMAIN,
            clicks=self.links,
            signing_key=SIGNING_KEY,
            texting_token=WEBHOOK_TOKEN,
        )

    def _environment(self) -> dict[str, str]:
        receiver = f"http://127.0.0.1:{self.receiver_port}"
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("UYSP_", "PREFECT_"))}
        return keep | {
            "PYTHONPATH": str(ROOT),
            "SOAK_CLOCK": str(self.clock.path),
            "PREFECT_API_URL": self.cluster.url,
            "PREFECT_HOME": str(self.workdir / "prefect" / "client"),
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "UYSP_SQLITE_PATH": str(self.workdir / "uysp.db"),
            "UYSP_RUN_LOCK": "sqlite",  # one machine: a killed holder's lease is taken over
            "UYSP_STORE": "airtable",
            "UYSP_AIRTABLE_TOKEN": self.airtable.token,
            "UYSP_AIRTABLE_BASE_ID": self.base,
            "UYSP_AIRTABLE_API_URL": self.airtable.url,
            "UYSP_AIRTABLE_RATE_LIMIT_WAIT_SECONDS": "5",
            "UYSP_AIRTABLE_STOP_CHECK_SECONDS": str(STOP_CHECK_SECONDS),
            "UYSP_SMS": "simpletexting",
            "UYSP_SIMPLETEXTING_TOKEN": self.texting.token,
            "UYSP_SIMPLETEXTING_API_URL": self.texting.api_url,
            "UYSP_SIMPLETEXTING_ACCOUNT_PHONE": next(iter(self.texting.account_phones)),
            "UYSP_SIMPLETEXTING_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "UYSP_SIMPLETEXTING_RATE_PER_SECOND": "8",
            "UYSP_LINKS": "switchy",
            "UYSP_SWITCHY_TOKEN": self.links.token,
            "UYSP_SWITCHY_API_URL": self.links.api_url,
            "UYSP_SWITCHY_GRAPHQL_URL": self.links.graphql_url,
            "UYSP_SWITCHY_DOMAIN": LINK_DOMAIN,
            "UYSP_SWITCHY_LINKS_PER_HOUR": "36000",
            "UYSP_NOTIFY": "slack",
            "UYSP_SLACK_TOKEN": self.slack.token,
            "UYSP_SLACK_API_URL": self.slack.api_url,
            "UYSP_CALENDLY_SIGNING_KEY": SIGNING_KEY,
            "UYSP_WEBHOOK_URL": receiver,
            "UYSP_LINK_BASE_URL": f"{receiver}/l",
        }

    # The campaign
    def _campaign(self) -> None:
        from flows.click_tracker import click_tracker
        from flows.daily_report import daily_report
        from flows.health import health
        from flows.staging import staging

        periodic = {
            "health": health,
            "staging": staging,
            "click-tracker": click_tracker,
            "daily-report": daily_report,
        }
        index = 0
        for moment, runs, flows in self.form.slots():
            if moment > self.clock.now():
                self.clock.set(moment)
            started = time.monotonic()
            self._settle()
            self.log(f"{moment:%a %H:%M}: settled in {time.monotonic() - started:.1f} s")
            for name in flows:
                if name != "daily-report":
                    self._periodic(name, periodic[name])
            if runs:
                self._scheduler_run(index)
                index += 1
            if "daily-report" in flows:
                self._periodic("daily-report", daily_report)
            self._operator()
            self._settle()  # before the clock moves on: the receiver has had those minutes
        self.log(f"campaign done: {index} runs, {len(self.texting.messages)} texts")

    def _periodic(self, name: str, flow: Callable[[], Any]) -> None:
        started = time.monotonic()
        try:
            flow()
            self.tally[f"flow_{name}"] += 1
            self.log(f"{name} in {time.monotonic() - started:.1f} s")
        except Exception as exc:  # a periodic flow's failure is an observation, not the soak's end
            self.tally[f"flow_{name}_failed"] += 1
            self.log(f"{name} failed: {type(exc).__name__}: {exc}")

    def _scheduler_run(self, index: int) -> None:
        plan = self.faults.plan_run(index)
        self.world.strike_mid_run(self.form.strikes, within=10)
        summary = self._one_run(plan)
        if summary is None:
            # The process that takes over was started ahead, as a worker would be standing by.
            self.scheduler, self.standby = self.standby, self._new_scheduler()
            if plan.rerun_at_once:
                self._one_run(RunFaults())

    def _new_scheduler(self) -> SchedulerProcess:
        self.tally["scheduler_processes"] += 1
        process = SchedulerProcess(
            self.env, self.workdir, f"scheduler-{self.tally['scheduler_processes']}"
        )
        process.spawn()
        return process

    def _one_run(self, plan: RunFaults) -> dict[str, Any] | None:
        """One scheduler run with its faults; its summary, or None when it was killed."""
        with self.runs.lock:
            self.runs.texts_accepted, self.runs.kill_at_text = 0, plan.kill_after_text
            self.runs.in_run = True
        threads = self._arm(plan)
        self.scheduler.run(batch_size=self.form.batch_size, daily_cap=self.form.daily_cap)
        summary = self.scheduler.result(timeout=RUN_TIMEOUT)
        with self.runs.lock:
            self.runs.in_run, self.runs.kill_at_text = False, None
        for timer in threads:
            timer.cancel()
            timer.join()
        status = "killed" if summary is None else str(summary.get("status"))
        self.runs.statuses[status] += 1
        if summary is not None:
            self.log(
                f"{self.clock.now().astimezone(NEW_YORK):%a %H:%M} run: {status}"
                f" in {summary.get('wall_seconds')} s,"
                f" sent {summary.get('sent')}, failed {summary.get('failed')},"
                f" reconciled {summary.get('reconciled')} {summary.get('halt_reason') or ''}"
            )
        return summary

    def _arm(self, plan: RunFaults) -> list[threading.Timer]:
        timers = []
        if plan.kill_after_seconds is not None:
            timers.append(threading.Timer(plan.kill_after_seconds, self._kill_scheduler))
        if plan.receiver_kill_after is not None:
            timers.append(threading.Timer(plan.receiver_kill_after, self._bounce_receiver))
        if plan.spike is not None:
            after, seconds, latency = plan.spike
            timers.append(threading.Timer(after, self._latency_spike, (seconds, latency)))
        for timer in timers:
            timer.start()
        return timers

    def _text_taken(self, message: dict) -> None:
        """The SimpleTexting fake took a text: the world sees it, and a run planned to die after
        its Nth text dies now, before the answer reaches it."""
        self.world.saw_text(message)
        if message["text"] == self.help_text:
            return
        with self.runs.lock:
            self.runs.texts_accepted += 1
            due = self.runs.kill_at_text is not None and (
                self.runs.texts_accepted >= self.runs.kill_at_text
            )
            if due:
                self.runs.kill_at_text = None
        if due and self.scheduler.kill():
            self.faults.record("scheduler_killed_after_accept")

    def _kill_scheduler(self) -> None:
        with self.runs.lock:
            running = self.runs.in_run
        if running and self.scheduler.kill():
            self.faults.record("scheduler_killed_at_random")

    def _bounce_receiver(self) -> None:
        if self.receiver.kill():
            self.faults.record("receiver_killed")
        time.sleep(random.Random(f"{self.seed}:{time.monotonic()}").uniform(0.5, 3))
        self.receiver.start()

    def _latency_spike(self, seconds: float, latency: float) -> None:
        self.faults.record("airtable_latency_spike")
        self.airtable.latency = latency
        time.sleep(seconds)
        self.airtable.latency = AIRTABLE_LATENCY

    def _operator(self) -> None:
        """Sending auto-paused (too many errors in a run) is resumed before the next run, as the
        alert asks an operator to do once the provider is healthy again."""
        (row,) = self.airtable.records(self.base, "Settings")
        if row["fields"].get("SMS Sending") != "On":
            self.airtable.update(self.base, "Settings", row["id"], {"SMS Sending": "On"})
            self.tally["operator_resumed_sending"] += 1

    def _settle(self, timeout: float | None = None) -> bool:
        """Wait until the webhooks due by now are delivered and worked: the simulated minutes
        since the last slot would have given the receiver that time."""
        deadline = time.monotonic() + (timeout or self.form.settle_seconds)
        while time.monotonic() < deadline:
            if self.receiver.alive() and not self.world.due_now() and not self._inbox_due():
                return True
            time.sleep(0.1)
        self.tally["settle_timed_out"] += 1
        return False

    def _inbox_due(self) -> int:
        """Events the receiver has kept and not worked yet, whose time has come (for pacing the
        simulation only; the invariants never read the inbox)."""
        try:
            with contextlib.closing(sqlite3.connect(self.workdir / "uysp.db", timeout=5)) as db:
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM inbox WHERE status = 'pending' AND due <= ?",
                    (self.clock.now().timestamp(),),
                ).fetchone()
        except sqlite3.OperationalError:  # no inbox yet, or busy
            return 1
        return count

    # The end
    def _settle_everything(self) -> None:
        """Faults off; a last run after the grace period settles interrupted sends (at 03:00
        in New York nobody may be texted, so it sends nothing); then the backlog drains."""
        self.faults.stop()
        self.airtable.latency = AIRTABLE_LATENCY
        if not self.receiver.alive():
            self.receiver.start()
        if not self.scheduler.alive():
            self.scheduler, self.standby = self.standby, self._new_scheduler()
        last = FIRST_DAY + timedelta(days=self.form.days)
        self.clock.set(max(datetime.combine(last, datetime.min.time(), NEW_YORK)
                           + timedelta(hours=3), self.clock.now()))  # fmt: skip
        self._settle()
        self._one_run(RunFaults())
        self.world.drop_future()
        for _ in range(8):  # inbox retries wait up to 10 minutes between attempts
            self.clock.advance(timedelta(minutes=15))
            self._settle()
            if not self._inbox_pending():
                break
        self.log(f"settled at {self.clock.now().astimezone(NEW_YORK):%a %H:%M}")

    def _inbox_pending(self) -> int:
        with contextlib.closing(sqlite3.connect(self.workdir / "uysp.db", timeout=5)) as db:
            (count,) = db.execute("SELECT COUNT(*) FROM inbox WHERE status = 'pending'").fetchone()
        return count

    def _reconcile(self) -> dict[str, Any]:
        """`uysp reconcile --fix`, then `uysp reconcile`, which must find nothing left (the
        command's own function, on this process's adapters and the simulated clock)."""
        if importlib.util.find_spec("tasks.audit") is None:
            return {"available": False, "note": "uysp reconcile has not landed (tasks/audit.py)"}
        from tasks.audit import reconcile_all
        from tasks.runtime import services

        since = datetime.combine(FIRST_DAY, datetime.min.time(), NEW_YORK) - timedelta(days=1)
        reports = {}
        for name, fix in (("fix", True), ("check", False)):
            started = time.monotonic()
            reports[name] = reconcile_all(services(), since=since, fix=fix).to_json()
            self.log(f"reconcile {name}: {time.monotonic() - started:.1f} s")
        return {"available": True, **reports}

    def _keep_evidence(self, result: dict[str, Any]) -> None:
        """What the invariants read, as files beside the processes' logs, for a post-mortem."""
        folder = self.workdir / "evidence"
        folder.mkdir(exist_ok=True)
        evidence = {
            "result": result,
            "messages": list(self.texting.messages),
            "leads": self.airtable.records(self.base, "Leads"),
            "ledger": self.airtable.records(self.base, "SMS_Audit"),
            "airtable_changes": [vars(c) for c in list(self.airtable.changes)],
            "slack_posts": list(self.slack.posts),
            "world_events": [_event_record(e) for e in self.world.events],
        }
        for name, data in evidence.items():
            (folder / f"{name}.json").write_text(json.dumps(data, default=str, indent=1))
        self.log(f"evidence kept in {folder}")

    def _evaluate(self, reconciled: dict[str, Any]) -> dict[str, Any]:
        people = self.world.by_phone
        texts = invariants.texts_from_log(list(self.texting.messages), people)
        campaign_texts = [t for t in texts if t.step is not None]
        leads = {r["id"]: r["fields"] for r in self.airtable.records(self.base, "Leads")}
        ledger = [r["fields"] for r in self.airtable.records(self.base, "SMS_Audit")]
        posts = list(self.slack.posts)
        accepted = self.world.accepted()
        after, in_flight = invariants.after_stop(
            texts,
            self.world.stops(),
            invariants.stop_landings(list(self.airtable.changes)),
            IN_FLIGHT_SECONDS,
        )
        evidence = invariants.Evidence(leads, ledger, texts, posts, self.help_text)
        not_processed, twice = invariants.webhooks_processed(accepted, evidence)
        reports = [str(p.get("text", "")) for p in posts]
        if reconciled.get("available"):
            reports.append(json.dumps(reconciled["fix"]["items"]))
        latencies = sorted(
            invariants.stop_latencies(
                self.world.stops(), invariants.stop_landings(list(self.airtable.changes))
            )
        )
        violations = {
            "texted_twice_for_a_step": invariants.duplicate_steps(texts),
            "texted_after_stop_or_booking": after,
            "texted_outside_window": invariants.outside_window(campaign_texts),
            "webhooks_not_processed": not_processed,
            "webhooks_processed_twice": twice,
            "webhooks_refused": list(self.world.rejected),
            "leads_disagree_with_ledger": invariants.leads_vs_ledger(leads, ledger),
            "ledger_disagrees_with_provider": invariants.ledger_vs_provider(ledger, texts),
            "unknown_rows_unreported": invariants.unreported_unknown(ledger, reports),
            "texts_not_recognised": [
                f"{t.message_id}: {t.text!r}"
                for t in texts
                if t.step is None and t.text != self.help_text
            ],
        }
        if reconciled.get("available"):
            violations["reconcile_remaining"] = [
                f"{item['kind']}: {item['lead_id']} {item['send_key']} {item['detail']}"
                for item in reconciled["check"]["items"]
                if item["kind"] not in JUDGED_HERE
            ]
        faults = {k: self.faults.counts[k] for k in PER_REQUEST + PER_RUN}
        faults["webhook_duplicate"] = self.world.tally["duplicate"]
        faults["webhook_out_of_order"] = self.world.tally["out_of_order"]
        for kind in ("stop", "reply", "booking", "cancel", "reschedule"):
            faults[f"mid_run_{kind}"] = self.world.tally[f"mid_run_{kind}"]
        world = {k: v for k, v in sorted(self.world.tally.items()) if not k.startswith("sched")}
        return {
            "seed": self.seed,
            "form": self.form.name,
            "leads": self.form.leads,
            "days": self.form.days,
            "texts": len(campaign_texts),
            "texts_by_step": dict(sorted(Counter(str(t.step) for t in campaign_texts).items())),
            "help_answers": sum(t.text == self.help_text for t in texts),
            "runs": dict(self.runs.statuses),
            "faults": faults,
            "world": world,
            "soak": dict(self.tally),
            "requests": {
                "airtable": self.airtable.total_requests,
                "airtable_429": self.airtable.counts["rate_limited"],
                "simpletexting": len(self.texting.requests),
                "simpletexting_429": self.texting.count_status(429),
                "switchy": len(self.links.requests),
                "slack": len(self.slack.requests),
            },
            "invariants": {name: len(found) for name, found in violations.items()},
            "reported": {
                "texts_in_flight_at_stop": len(in_flight),
                "help_unanswered": len(invariants.help_unanswered(accepted, texts, self.help_text)),
                "unknown_rows": sum(r.get("Status") == "Unknown" for r in ledger),
                "slack_posts": len(posts),
                "stop_to_airtable_seconds": {
                    "median": latencies[len(latencies) // 2] if latencies else None,
                    "max": latencies[-1] if latencies else None,
                },
            },
            "reconcile": _reconcile_counts(reconciled),
            "details": {name: found[:8] for name, found in violations.items() if found}
            | {"texts_in_flight_at_stop": in_flight[:8]},
        }


def _event_record(event: Any) -> dict[str, Any]:
    fields = ("key", "kind", "lead_id", "phone", "due", "mid_run", "message_id", "delivered")
    record = {name: getattr(event, name) for name in fields}
    return record | {"accepted_at": event.accepted_at, "deliveries": event.deliveries}


def _reconcile_counts(reconciled: dict[str, Any]) -> dict[str, Any]:
    if not reconciled.get("available"):
        return reconciled
    keys = ("checked", "disagreements", "fixed", "remaining")
    return {name: {key: reconciled[name][key] for key in keys} for name in ("fix", "check")}


def _drain_prefect_workers() -> None:
    """Send the events and logs still queued for the soak's server while it is up. Left queued,
    another test harness's teardown drains them later against a dead server, seven seconds each."""
    with contextlib.suppress(RuntimeError):  # no log worker was started
        APILogWorker.instance().drain()
    EventsWorker.drain_all()


@contextlib.contextmanager
def _quiet_prefect_logs() -> Iterator[None]:
    """The in-process flows' run logs would bury the soak's own lines."""
    loggers = [logging.getLogger(n) for n in ("prefect", "prefect.flow_runs", "prefect.task_runs")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def _process_environment(values: dict[str, str]) -> Iterator[None]:
    """This process's UYSP_* settings for the in-process flows, restored afterwards."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in values.items() if k.startswith("UYSP_")})
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


def run_soak(form: Form, seed: int, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    return Soak(form, seed, workdir, log).run()
