"""The promises, checked from evidence the product does not keep: the SimpleTexting fake's message
log, the Airtable fake's records and its journal of changes, the Slack fake's posts, and the
world's own record of what people did and when the receiver accepted it. Nothing here reads the
scheduler's summaries or calls the product's rules: the send window is worked out again from
phonenumbers' time zones and the rules written out below.

Each check returns the violations it found, one line each, so a failure says what went wrong.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_zones

from tests.soak.world import CAMPAIGN_HOURS, Event, Person, step_patterns

WENT_OUT = {"Sent", "Delivered", "Undelivered"}
FEDERAL = (8, 21)  # TCPA, local time
# Stricter state rules by area code, for the area codes the synthetic leads use:
# (start, end, {weekday: (start, end) or None for no texting that day}); 6 is Sunday.
STATE_RULES: dict[str, tuple[int, int, dict[int, tuple[int, int] | None]]] = {
    "305": (8, 20, {}),  # Florida
    "904": (8, 20, {}),  # Florida
    "405": (8, 20, {}),  # Oklahoma
    "206": (8, 20, {}),  # Washington
    "214": (9, 21, {6: (12, 21)}),  # Texas
    "713": (9, 21, {6: (12, 21)}),  # Texas
}
KNOWN_AREA_CODES = {
    *STATE_RULES,
    *("212", "617", "404", "312", "303", "602", "208", "415", "213", "503", "907", "808"),
    *("416", "514", "604", "403", "902", "709", "306"),
}
NANP_ZONES = (
    "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles", "America/Denver",
    "America/Phoenix", "America/Chicago", "America/New_York", "America/Halifax",
    "America/St_Johns",
)  # fmt: skip
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Text:
    """A text in the provider's log, with whom and which step the invariants take it to be."""

    message_id: str
    phone: str  # E.164
    text: str
    at: datetime
    lead_id: str | None
    step: int | None  # None: not a campaign text (a HELP answer, or something unknown)


def texts_from_log(messages: Iterable[dict], people: Mapping[str, Person]) -> list[Text]:
    patterns = step_patterns()
    texts = []
    for message in messages:
        phone = "+1" + message["contactPhone"]
        step = next(
            (s for (_, s), pattern in patterns.items() if pattern.fullmatch(message["text"])),
            None,
        )
        person = people.get(phone)
        texts.append(
            Text(
                message["id"],
                phone,
                message["text"],
                datetime.fromisoformat(message["timestamp"]),
                person.lead_id if person else None,
                step,
            )
        )
    return texts


# 1. Nobody texted twice for one step
def duplicate_steps(texts: list[Text]) -> list[str]:
    seen = Counter((t.phone, t.step) for t in texts if t.step is not None)
    return [f"{phone} got step {step} {n} times" for (phone, step), n in seen.items() if n > 1]


# 2. Nothing after a STOP or a booking
def after_stop(
    texts: list[Text],
    stops: Mapping[str, Event],
    landed: Mapping[str, list[datetime]],
    in_flight_seconds: float,
) -> tuple[list[str], list[str]]:
    """(violations, texts in flight). A text counts as in flight at the stop when it is the
    first after it and reached the provider within `in_flight_seconds` of the receiver
    accepting the stop; any other text after the stop is a violation."""
    by_lead: dict[str, list[Text]] = defaultdict(list)
    for text in texts:
        if text.lead_id is not None and text.step is not None:
            by_lead[text.lead_id].append(text)
    violations, in_flight = [], []
    for lead_id, event in stops.items():
        stopped_at = event.accepted_at
        assert stopped_at is not None
        later = sorted((t for t in by_lead.get(lead_id, []) if t.at > stopped_at), key=_at)
        landing = _landing(landed, lead_id, stopped_at)
        for index, text in enumerate(later):
            seconds = (text.at - stopped_at).total_seconds()
            line = (
                f"{lead_id} step {text.step} {seconds:.1f} s after its {event.kind} ({event.key},"
                f" mid-run: {event.mid_run}) was accepted at {stopped_at:%a %H:%M:%S}Z; the stop"
                " landed in Airtable "
                + (f"{(landing - stopped_at).total_seconds():.1f} s after" if landing else "never")
            )
            (in_flight if index == 0 and seconds <= in_flight_seconds else violations).append(line)
    return violations, in_flight


def stop_latencies(stops: Mapping[str, Event], landed: Mapping[str, list[datetime]]) -> list[float]:
    """Seconds from each stop's acceptance to its lead being written stopped in Airtable."""
    latencies = []
    for lead_id, event in stops.items():
        assert event.accepted_at is not None
        landing = _landing(landed, lead_id, event.accepted_at)
        if landing is not None:
            latencies.append((landing - event.accepted_at).total_seconds())
    return latencies


def _landing(landed: Mapping[str, list[datetime]], lead_id: str, after: datetime):
    return next((at for at in sorted(landed.get(lead_id, [])) if at >= after), None)


def stop_landings(changes: Iterable[Any]) -> dict[str, list[datetime]]:
    """When each lead's record was written stopped or booked, from the Airtable journal."""
    landed: dict[str, list[datetime]] = defaultdict(list)
    for change in changes:
        if change.table == "Leads" and (change.cells.get("SMS Stop") or change.cells.get("Booked")):
            landed[change.record_id].append(change.at)
    return landed


# 3. Nothing outside the recipient's window
def outside_window(texts: list[Text]) -> list[str]:
    start, end = CAMPAIGN_HOURS["start"], CAMPAIGN_HOURS["end"]
    days = {WEEKDAYS.index(d.strip().lower()[:3]) for d in CAMPAIGN_HOURS["weekdays"].split(",")}
    violations = []
    for text in texts:
        area = text.phone[2:5]
        if area in STATE_RULES:
            rules = [STATE_RULES[area]]
        elif area in KNOWN_AREA_CODES:
            rules = []
        else:
            rules = list(STATE_RULES.values())
        for zone in recipient_zones(text.phone):
            local = text.at.astimezone(zone)
            windows = [FEDERAL, (start, end)]
            for rule_start, rule_end, overrides in rules:
                windows.append(overrides.get(local.weekday(), (rule_start, rule_end)))
            allowed = local.weekday() in days and all(
                window is not None and window[0] <= local.hour < window[1] for window in windows
            )
            if not allowed:
                violations.append(f"{text.phone} at {local:%a %H:%M} {zone.key} ({text.lead_id})")
                break
    return violations


def recipient_zones(phone: str) -> list[ZoneInfo]:
    """Every zone the number may be in; all of North America's when that is unknown."""
    names = [
        name
        for name in phone_zones.time_zones_for_number(phonenumbers.parse(phone))
        if name != "Etc/Unknown"
    ]
    return [ZoneInfo(name) for name in (names or NANP_ZONES)]


# 4. Every accepted webhook processed, once
@dataclass
class Evidence:
    leads: dict[str, dict[str, Any]]  # Airtable lead id -> fields
    ledger: list[dict[str, Any]]  # SMS_Audit fields
    texts: list[Text]
    posts: list[dict[str, Any]]  # Slack chat.postMessage bodies
    help_text: str


def webhooks_processed(accepted: list[Event], evidence: Evidence) -> tuple[list[str], list[str]]:
    """(not processed, processed twice) for the events the receiver accepted."""
    missing, twice = [], []
    by_message = {row.get("Provider Message ID"): row for row in evidence.ledger}
    under_review = {
        (row.get("Phone"), row.get("Text")) for row in evidence.ledger if row["Status"] == "Unknown"
    }
    texts = {t.message_id: (t.phone, t.text) for t in evidence.texts}
    post_texts = [str(post.get("text", "")) for post in evidence.posts]
    by_lead: dict[str, list[Event]] = defaultdict(list)
    for event in accepted:
        by_lead[event.lead_id].append(event)
    for event in accepted:
        lead = evidence.leads.get(event.lead_id, {})
        if event.kind == "receipt":
            row = by_message.get(event.message_id)
            wanted = "Delivered" if event.delivered else "Undelivered"
            if row is None and texts.get(event.message_id) in under_review:
                continue  # its text's row awaits a person, and the receipt with it
            if row is None or row.get("Status") != wanted:
                status = row.get("Status") if row else "no ledger row has its message id"
                missing.append(f"{event.key}: {wanted} expected, ledger says {status}")
            elif not event.delivered:
                notices = _count(post_texts, f"{row['Send Key']}: not delivered")
                if notices != 1:
                    (missing if notices == 0 else twice).append(
                        f"{event.key}: {notices} non-delivery alerts"
                    )
        elif event.kind in ("stop", "unsubscribe", "reply", "booking", "cancel"):
            if not lead.get("SMS Stop"):
                missing.append(f"{event.key}: lead {event.lead_id} not stopped")
            if event.kind == "reply":
                notices = _count(post_texts, event.text or "")
                if notices != 1:
                    (missing if notices == 0 else twice).append(
                        f"{event.key}: {notices} reply notices"
                    )
    for phone, asked in Counter(e.phone for e in accepted if e.kind == "help").items():
        answered = sum(t.phone == phone and t.text == evidence.help_text for t in evidence.texts)
        if answered > asked:
            twice.append(f"{phone}: {answered} HELP answers to {asked} HELP texts")
    for lead_id, events in by_lead.items():
        missing += _lead_state(lead_id, events, evidence.leads.get(lead_id, {}), post_texts)
    return missing, twice


def help_unanswered(accepted: list[Event], texts: list[Text], help_text: str) -> list[str]:
    lines = []
    for phone, asked in Counter(e.phone for e in accepted if e.kind == "help").items():
        answered = sum(t.phone == phone and t.text == help_text for t in texts)
        if answered < asked:
            lines.append(f"{phone}: {answered} HELP answers to {asked} HELP texts")
    return lines


_WEIGHT = {"stop": 3, "unsubscribe": 3, "booking": 2, "cancel": 2, "reply": 1}
_REASON = {3: "STOP", 2: "BOOKED", 1: "REPLY"}


def _lead_state(
    lead_id: str, events: list[Event], fields: dict[str, Any], posts: list[str]
) -> list[str]:
    """What a lead's record must show once all of its accepted events are processed."""
    problems = []
    weights = [_WEIGHT[e.kind] for e in events if e.kind in _WEIGHT]
    if weights:
        reason = _REASON[max(weights)]
        if fields.get("SMS Stop Reason") != reason:
            problems.append(
                f"lead {lead_id}: SMS Stop Reason {fields.get('SMS Stop Reason')!r},"
                f" expected {reason} after {sorted(e.key for e in events if e.kind in _WEIGHT)}"
            )
    calendly = [e for e in events if e.source == "calendly"]
    canceled = {e.invitee for e in calendly if e.kind in ("cancel", "reschedule")}
    live = [e for e in calendly if e.kind == "booking" and e.invitee not in canceled]
    plain_cancels = [e for e in calendly if e.kind == "cancel"]
    if live and not any(e.kind == "reschedule" for e in calendly) and not fields.get("Booked"):
        problems.append(f"lead {lead_id}: not Booked after {live[0].key}")
    if plain_cancels and not live and fields.get("Booked"):
        problems.append(f"lead {lead_id}: still Booked after {plain_cancels[0].key}")
    if plain_cancels:
        notices = sum("Booking canceled" in p and lead_id in p for p in posts)
        if notices != len(plain_cancels):
            problems.append(
                f"lead {lead_id}: {notices} cancellation alerts for {len(plain_cancels)} cancels"
            )
    return problems


def _count(posts: list[str], needle: str) -> int:
    return sum(needle in post for post in posts)


# 5. Airtable agrees with the ledger, and the ledger with the provider
def ledger_vs_provider(ledger: list[dict[str, Any]], texts: list[Text]) -> list[str]:
    """Every text the provider took has exactly one ledger row that says it went out (or is
    Unknown, awaiting a person), and every row that says a text went out names a text the
    provider took, to that number, with that wording."""
    problems = []
    by_id = {t.message_id: t for t in texts}
    claims: Counter[str] = Counter()
    for row in ledger:
        status, message_id = row.get("Status"), row.get("Provider Message ID")
        if status == "Reserved":
            problems.append(f"{row['Send Key']}: still Reserved at the end")
        if status not in WENT_OUT:
            continue
        claims[message_id] += 1
        text = by_id.get(message_id)
        if text is None:
            problems.append(f"{row['Send Key']}: {status}, but the provider has no {message_id}")
        elif (text.phone, text.text) != (row.get("Phone"), row.get("Text")):
            problems.append(f"{row['Send Key']}: {status}, but {message_id} is another text")
    unknown = {(row.get("Phone"), row.get("Text")) for row in ledger if row["Status"] == "Unknown"}
    for text in texts:
        if claims[text.message_id] == 1 or (text.phone, text.text) in unknown:
            continue
        failed = [
            row["Send Key"]
            for row in ledger
            if (row.get("Phone"), row.get("Text")) == (text.phone, text.text)
        ]
        problems.append(
            f"{text.message_id} to {text.phone} (step {text.step}) is claimed by"
            f" {claims[text.message_id]} ledger rows; rows with its text: {failed}"
        )
    return problems


def leads_vs_ledger(leads: dict[str, dict[str, Any]], ledger: list[dict[str, Any]]) -> list[str]:
    """Each lead's position, sent count and last-sent time are what its ledger rows say went
    out. Leads with a row awaiting a person (Unknown, or Reserved) are left to that person."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in ledger:
        if row.get("Event", "send") == "send":
            rows[row["Lead Record ID"]].append(row)
    problems = []
    for lead_id, fields in leads.items():
        mine = rows.get(lead_id, [])
        if any(r["Status"] in ("Unknown", "Reserved") for r in mine):
            continue
        went = sorted((r for r in mine if r["Status"] in WENT_OUT), key=lambda r: r["Step"])
        position = went[-1]["Step"] if went else 0
        shown = (
            fields.get("SMS Sequence Position") or 0,
            fields.get("SMS Sent Count") or 0,
            _time(fields.get("SMS Last Sent At")),
        )
        wanted = (position, len(went), _time(went[-1].get("Sent At")) if went else None)
        if shown != wanted:
            problems.append(
                f"lead {lead_id}: position, sent count, last sent {shown}; the ledger says {wanted}"
            )
    return problems


# 6. Unknown rows reported
def unreported_unknown(ledger: list[dict[str, Any]], reports: Iterable[str]) -> list[str]:
    reports = list(reports)
    return [
        f"{row['Send Key']}: Unknown, named in no alert or report"
        for row in ledger
        if row.get("Status") == "Unknown" and not any(row["Send Key"] in r for r in reports)
    ]


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _at(text: Text) -> datetime:
    return text.at
