"""The simulated world of the soak: the leads, the campaign, and the people who answer.

Every text the SimpleTexting fake takes is seen here the moment it is taken (`saw_text`). The
person behind the number then does what people do, each choice drawn from the seed and the text
itself, so the same seed gives the same people whatever order the texts came in: the provider
reports delivery, and some people click, book (and cancel or move the meeting), reply, ask for
HELP or say STOP, some within seconds, while the run that texted them is still sending.
`strike_mid_run` has people who were texted earlier answer while a run is under way.

The providers' webhooks go to the receiver from one sender thread, as the providers send them:
retried while the receiver is down, some twice, some overtaking others. The world keeps its
own record of each event (when the receiver first accepted it, in simulated time), which the
invariants read; it never reads what the product wrote.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from integrations import calendly
from tests.soak.clock import SharedClock
from tests.webhooks import payloads
from uysp.models import Template
from uysp.phones import InvalidPhone, to_e164
from uysp.synthetic import synthetic_leads

CAMPAIGN = "soak-audit"
BOOKING_URL = "https://calendly.com/uysp/pipeline-audit"
STEP_BODIES = {
    1: "Hi {Name}, Ana from UYSP here. Free 15-min pipeline audit this week? {Link}"
    " Reply STOP to opt out",
    2: "{Name}, following up on the pipeline audit offer, a few slots left: {Link}",
    3: "Last note, {Name}: if sales coaching is on your list this quarter, grab a time {Link}",
}
VARIANT_B_OPENER = "Hey {Name}! "
# The campaign allows what the law allows, so the federal and state rules are what binds.
CAMPAIGN_HOURS = {"start": 8, "end": 21, "weekdays": "Mon,Tue,Wed,Thu,Fri,Sat,Sun"}

STOPPING = frozenset({"stop", "unsubscribe", "reply", "booking", "cancel"})
"""Event kinds after which the person must get no more texts (a rescheduling's cancel part is
not one: the new booking that comes with it is)."""
STOP_WORDS = ("STOP", "Stop", "stop texting me", "UNSUBSCRIBE", "Please remove me")
# What people texted earlier do while a run is under way, in turn, so a short soak sees each.
STRIKES = ("stop", "booking", "reply", "cancel", "unsubscribe", "reschedule", "help")
ANSWERS = ("Sounds good, what times work?", "Who is this exactly?", "Maybe next month, thanks")


@dataclass(frozen=True)
class Rates:
    """What people do with a delivered text, and how the providers deliver webhooks."""

    delivered: float = 0.96
    stop: float = 0.025
    unsubscribe: float = 0.005
    reply: float = 0.02
    help: float = 0.007
    click: float = 0.12
    book_after_click: float = 0.35
    cancel: float = 0.15
    reschedule: float = 0.15
    answers_at_once: float = 0.3  # of reactions: within seconds, while the run still sends
    duplicate: float = 0.05  # of accepted webhooks: delivered a second time
    overtake: float = 0.2  # of neighbouring webhooks due together: the later one goes first
    cancel_first: float = 0.3  # of cancellations and reschedulings: arriving before the booking


@dataclass(frozen=True)
class Person:
    lead_id: str
    phone: str  # E.164, as the provider's log will show it
    email: str
    first_name: str | None


@dataclass(frozen=True)
class SeenText:
    """One message in the provider's log, as it was taken."""

    message_id: str
    phone: str
    text: str
    at: datetime


@dataclass
class Event:
    """One webhook the world owes the receiver (or, for a click, an action at Switchy)."""

    key: str
    kind: str  # receipt, stop, unsubscribe, reply, help, booking, cancel, reschedule, click
    lead_id: str
    phone: str
    due: datetime
    source: str = "simpletexting"  # or calendly; "switchy" for a click
    body: bytes = b""
    mid_run: bool = False
    message_id: str | None = None  # receipts: the provider's message id
    delivered: bool | None = None  # receipts
    text: str | None = None  # texts from the person
    invitee: str | None = None  # bookings: Calendly's invitee uri
    start: datetime | None = None  # bookings: the meeting
    rescheduled: bool = False
    accepted_at: datetime | None = None  # when the receiver first answered 200, simulated time
    deliveries: int = 0  # posts answered 200
    duplicates_sent: int = 0


@dataclass(order=True)
class _Delivery:
    due: float  # simulated epoch seconds
    seq: int
    event: Event = field(compare=False)
    duplicate: bool = field(default=False, compare=False)
    attempts: int = field(default=0, compare=False)


def step_patterns() -> dict[tuple[str, int], re.Pattern[str]]:
    """Every text the campaign can send, as a pattern: (variant, step) -> regex."""
    patterns = {}
    for variant in "AB":
        for step, body in STEP_BODIES.items():
            whole = (VARIANT_B_OPENER if variant == "B" and step == 1 else "") + body
            parts = re.split(r"\{(?:Name|Link)\}", whole)
            patterns[(variant, step)] = re.compile(".+?".join(map(re.escape, parts)), re.S)
    return patterns


def templates() -> list[Template]:
    return [
        Template(
            campaign=CAMPAIGN,
            variant=variant,
            step=step,
            body=(VARIANT_B_OPENER if variant == "B" and step == 1 else "") + body,
            delay_days=0 if step == 1 else 1,
            fast_delay_minutes=0 if step == 1 else 30,
        )
        for variant in "AB"
        for step, body in STEP_BODIES.items()
    ]


def settings_row() -> dict[str, Any]:
    return {
        "Active Campaign": CAMPAIGN,
        "SMS Sending": "On",
        "ab_ratio_a": 50,
        "Calendly URL": BOOKING_URL,
        "Send Start Hour": CAMPAIGN_HOURS["start"],
        "Send End Hour": CAMPAIGN_HOURS["end"],
        "Send Weekdays": CAMPAIGN_HOURS["weekdays"],
        "Credits Remaining": 1_000_000,
    }


def lead_rows(count: int, seed: int, imported_at: datetime) -> list[dict[str, Any]]:
    """Synthetic leads (every time zone, about 8% bad rows) as Airtable records."""
    rows = []
    for lead in synthetic_leads(count, seed=seed):
        rows.append(lead.airtable_fields() | {"Imported At": imported_at.isoformat()})
    return rows


def person_of(lead_id: str, row: dict[str, Any]) -> Person | None:
    try:
        phone = to_e164(row.get("Phone"))
    except InvalidPhone:
        return None
    return Person(lead_id, phone, row.get("Email") or "", row.get("First Name"))


def _rng(*parts: object) -> random.Random:
    """A generator for one decision, from the seed and what it is about: the same whatever
    order the world meets things in."""
    return random.Random(":".join(map(str, parts)))


class World:
    def __init__(
        self,
        seed: int,
        clock: SharedClock,
        people: Iterable[Person],
        *,
        link_domain: str,
        clicks: Any,  # the Switchy fake
        signing_key: str,
        texting_token: str,
        rates: Rates = Rates(),
    ) -> None:
        self.seed = seed
        self.clock = clock
        self.people = {p.lead_id: p for p in people}
        self.by_phone = {p.phone: p for p in self.people.values()}
        self.rates = rates
        self.signing_key = signing_key
        self.texting_token = texting_token
        self.clicks = clicks
        self.link_domain = link_domain
        self._link = re.compile(rf"https://{re.escape(link_domain)}/([a-z0-9]+)")
        self.rng = random.Random(f"{seed}:world")
        self.texts: list[SeenText] = []
        self.events: list[Event] = []
        self.tally: Counter[str] = Counter()  # webhooks by what happened to them
        self.rejected: list[str] = []  # webhooks the receiver refused: the world's own bug
        self.receiver_url: str | None = None
        self._decided: set[str] = set()  # people who will not be answering any more texts
        self._queue: list[_Delivery] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._posting = 0
        self._strikes = 0
        self._seen: Counter[tuple[str, str]] = Counter()

    # What the world saw
    def saw_text(self, message: dict) -> None:
        """The provider took a text (called by the fake, before the sender has its answer)."""
        phone = "+1" + message["contactPhone"]
        at = datetime.fromisoformat(message["timestamp"])
        text = SeenText(message["id"], phone, message["text"], at)
        person = self.by_phone.get(phone)
        with self._lock:
            again = self._seen[(phone, text.text)]
            self._seen[(phone, text.text)] += 1
            self.texts.append(text)
            if person is None:
                return
            self._react(person, text, again)

    def stops(self) -> dict[str, Event]:
        """Per lead, the first accepted event after which it must not be texted."""
        first: dict[str, Event] = {}
        for event in self.events:
            if event.kind in STOPPING and event.accepted_at is not None:
                known = first.get(event.lead_id)
                if known is None or event.accepted_at < known.accepted_at:  # type: ignore[operator]
                    first[event.lead_id] = event
        return first

    def accepted(self, kind: str | None = None) -> list[Event]:
        return [
            e
            for e in self.events
            if e.accepted_at is not None and e.source != "switchy" and kind in (None, e.kind)
        ]

    # People answering
    def _react(self, person: Person, text: SeenText, again: int) -> None:
        """Schedule the receipt for a text and what its recipient does about it; `again` counts
        the same words to the same number before (HELP answers are all alike). Holds the lock."""
        rng, rates = _rng(self.seed, text.phone, text.text, again), self.rates
        delivered = rng.random() < rates.delivered
        self._add(
            Event(
                f"receipt:{text.message_id}",
                "receipt",
                person.lead_id,
                person.phone,
                text.at + timedelta(seconds=rng.uniform(1, 20)),
                body=_json(
                    payloads.receipt(text.message_id, delivered=delivered, contact=text.phone[2:])
                ),
                message_id=text.message_id,
                delivered=delivered,
            )
        )
        if not delivered or person.lead_id in self._decided:
            return
        at = text.at + (
            timedelta(seconds=rng.uniform(5, 90))
            if rng.random() < rates.answers_at_once
            else timedelta(minutes=rng.uniform(10, 18 * 60))
        )
        roll = rng.random()
        for kind, share in (
            ("stop", rates.stop),
            ("unsubscribe", rates.unsubscribe),
            ("reply", rates.reply),
            ("help", rates.help),
        ):
            if roll < share:
                self._answer(person, kind, at, rng)
                return
            roll -= share
        if roll < rates.click and (alias := self._link.search(text.text)):
            self._add(
                Event(f"click:{text.message_id}", "click", person.lead_id, person.phone, at,
                      source="switchy", text=alias[1])
            )  # fmt: skip
            if rng.random() < rates.book_after_click:
                self._book(person, at + timedelta(minutes=rng.uniform(2, 120)), rng)

    def strike_mid_run(self, count: int, within: float) -> int:
        """`count` people texted a day or more ago answer in the next `within` seconds, while
        a run may be about to text them again. Returns how many were found."""
        now = self.clock.now()
        with self._lock:
            last: dict[str, datetime] = {}
            sent = Counter()
            for text in self.texts:
                sent[text.phone] += 1
                last[text.phone] = max(last.get(text.phone, text.at), text.at)
            due = sorted(
                self.by_phone[phone].lead_id
                for phone, at in last.items()
                if phone in self.by_phone
                and now - at > timedelta(hours=20)
                and sent[phone] < 3
                and self.by_phone[phone].lead_id not in self._decided
            )
            chosen = self.rng.sample(due, min(count, len(due)))
            for lead_id in chosen:
                at = now + timedelta(seconds=self.rng.uniform(0.2, within))
                kind = STRIKES[self._strikes % len(STRIKES)]
                self._strikes += 1
                person = self.people[lead_id]
                if kind in ("booking", "cancel", "reschedule"):
                    self._book(person, at, self.rng, mid_run=True, then=kind, within=within)
                else:
                    self._answer(person, kind, at, self.rng, mid_run=True)
        return len(chosen)

    def _answer(
        self, person: Person, kind: str, at: datetime, rng: random.Random, mid_run: bool = False
    ) -> None:
        message_id = f"{rng.getrandbits(96):024x}"
        if kind == "unsubscribe":
            body = payloads.unsubscribe(person.phone[2:], report_id=message_id)
            text = None
        else:
            text = {
                "stop": rng.choice(STOP_WORDS),
                "reply": f"{rng.choice(ANSWERS)} (ref {message_id[:8]})",
                "help": "HELP",
            }[kind]
            body = payloads.incoming(
                text, contact=person.phone[2:], message_id=message_id, timestamp=_iso(at)
            )
        if kind != "help":
            self._decided.add(person.lead_id)
        self._add(
            Event(
                f"{kind}:{message_id}",
                kind,
                person.lead_id,
                person.phone,
                at,
                body=_json(body),
                mid_run=mid_run,
                text=text,
            )
        )

    def _book(
        self,
        person: Person,
        at: datetime,
        rng: random.Random,
        *,
        mid_run: bool = False,
        then: str | None = None,
        within: float = 0,
    ) -> None:
        """A booking, and maybe its cancellation or its move to another time (`then`: booking
        alone, cancel or reschedule; None draws it). Mid-run, all of it comes within seconds."""
        self._decided.add(person.lead_id)
        invitee = f"{rng.getrandbits(64):016X}"
        start = (at + timedelta(days=rng.uniform(1, 6))).replace(second=0, microsecond=0)
        self._booking("booking", person, invitee, at, start, mid_run=mid_run)
        if then is None:
            roll = rng.random()
            then = (
                "cancel"
                if roll < self.rates.cancel
                else "reschedule"
                if roll < self.rates.cancel + self.rates.reschedule
                else "booking"
            )
        if then == "booking":
            return
        later = at + (
            timedelta(seconds=rng.uniform(0.2, within))
            if mid_run
            else timedelta(minutes=rng.uniform(30, 36 * 60))
        )
        if rng.random() < self.rates.cancel_first:
            later = at - timedelta(seconds=rng.uniform(0.1, 2))  # it overtakes the booking
        if then == "cancel":
            self._booking("cancel", person, invitee, later, start, mid_run=mid_run)
            return
        self._booking("reschedule", person, invitee, later, start, mid_run=mid_run)
        new = f"NEW{invitee}"  # the id Calendly's canceled event names as the new invitee
        moved = start + timedelta(days=1)
        self._booking("booking", person, new, later + timedelta(seconds=1), moved, mid_run=mid_run)

    def _booking(
        self,
        kind: str,
        person: Person,
        invitee: str,
        at: datetime,
        start: datetime | None,
        mid_run: bool = False,
    ) -> Event:
        event_name = "invitee.created" if kind == "booking" else "invitee.canceled"
        body = payloads.invitee(
            event_name,
            invitee_id=invitee,
            email=person.email,
            lead_id=person.lead_id,
            start=_iso(start) if start else _iso(at),
            rescheduled=kind == "reschedule",
        )
        event = Event(
            f"{kind}:{invitee}",
            kind,
            person.lead_id,
            person.phone,
            at,
            source="calendly",
            body=_json(body),
            mid_run=mid_run,
            invitee=body["payload"]["uri"],
            start=start,
            rescheduled=kind == "reschedule",
        )
        self._add(event)
        return event

    def _add(self, event: Event) -> None:
        """Queue an event; the caller holds the lock."""
        self.events.append(event)
        self.tally[f"scheduled_{event.kind}"] += 1
        heapq.heappush(self._queue, _Delivery(event.due.timestamp(), next(self._seq), event))

    # The providers' webhook sender
    def start(self, receiver_url: str) -> None:
        self.receiver_url = receiver_url
        self._thread = threading.Thread(target=self._send_loop, name="world", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(30)

    def due_now(self) -> int:
        """Webhooks and clicks due by now and not yet delivered (or being delivered)."""
        now = self.clock.now().timestamp()
        with self._lock:
            return self._posting + sum(1 for d in self._queue if d.due <= now)

    def drop_future(self) -> int:
        """Forget what is not due yet: the soak is over before those people would answer."""
        now = self.clock.now().timestamp()
        with self._lock:
            later = [d for d in self._queue if d.due > now]
            self._queue = [d for d in self._queue if d.due <= now]
            heapq.heapify(self._queue)
            for delivery in later:
                if not delivery.duplicate and delivery.attempts == 0:
                    self.events.remove(delivery.event)
            return len(later)

    def _take_due(self) -> list[_Delivery]:
        now = self.clock.now().timestamp()
        with self._lock:
            due = []
            while self._queue and self._queue[0].due <= now and len(due) < 50:
                due.append(heapq.heappop(self._queue))
            self._posting = len(due)
        for index in range(len(due) - 1):
            if self.rng.random() < self.rates.overtake:
                due[index], due[index + 1] = due[index + 1], due[index]
                self.tally["out_of_order"] += 1
        return due

    def _send_loop(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stopping.is_set():
                due = self._take_due()
                if not due:
                    time.sleep(0.05)
                    continue
                for delivery in due:
                    self._deliver(http, delivery)
                    with self._lock:
                        self._posting -= 1

    def _deliver(self, http: httpx.Client, delivery: _Delivery) -> None:
        event = delivery.event
        if event.source == "switchy":
            self.clicks.click(self.link_domain, event.text)
            event.accepted_at = self.clock.now()
            return
        delivery.attempts += 1
        outcome = self._post(http, event)
        now = self.clock.now()
        if outcome == "retry":
            self.tally["retried_receiver_down"] += 1
            delivery.due = (now + timedelta(seconds=min(2**delivery.attempts, 60))).timestamp()
            with self._lock:
                heapq.heappush(self._queue, delivery)
            return
        if outcome == "rejected":
            return
        event.deliveries += 1
        if delivery.duplicate:
            self.tally["duplicate"] += 1
        if event.accepted_at is None:
            event.accepted_at = now
            self.tally[f"accepted_{event.kind}"] += 1
            if event.mid_run:
                self.tally[f"mid_run_{event.kind}"] += 1
            if self.rng.random() < self.rates.duplicate:
                event.duplicates_sent += 1
                again = now + timedelta(seconds=self.rng.uniform(0.5, 60))
                with self._lock:
                    heapq.heappush(
                        self._queue,
                        _Delivery(again.timestamp(), next(self._seq), event, duplicate=True),
                    )

    def _post(self, http: httpx.Client, event: Event) -> str:
        """accepted, duplicate, retry (the receiver is down or failed) or rejected."""
        if event.source == "calendly":
            url = f"{self.receiver_url}/webhooks/calendly"
            signature = calendly.sign(event.body, self.signing_key, self.clock.now())
            headers, params = {calendly.SIGNATURE_HEADER: signature}, {}
        else:
            url = f"{self.receiver_url}/webhooks/simpletexting"
            headers, params = {}, {"token": self.texting_token}
        try:
            response = http.post(url, content=event.body, headers=headers, params=params)
        except httpx.TransportError:
            return "retry"
        if response.status_code >= 500:
            return "retry"
        if response.status_code != 200:
            self.rejected.append(f"{event.key}: {response.status_code} {response.text[:200]}")
            return "rejected"
        return str(response.json().get("status"))


def _json(body: dict) -> bytes:
    return json.dumps(body).encode()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
