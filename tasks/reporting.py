"""The daily report, built with pandas from the ledger and the leads; the notebooks use the same
frames.

Messages (sent, delivered, undelivered, failed, credits) are counted per campaign, variant and
step from the ledger. People's outcomes (clicked, booked, opted out, replied) are counted once
per person, at the step that last reached them before the outcome: before Booked At or Last
Reply At, and for a click, which has no time, the last step they were sent. Opted out is a STOP;
replied is any other reply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.runtime import services
from uysp.models import Lead, LedgerEntry, LedgerStatus, StopReason
from uysp.stats import probability_best, two_proportion_test, wilson_interval

KEYS = ["campaign", "variant", "step"]
WENT_OUT = {LedgerStatus.SENT, LedgerStatus.DELIVERED, LedgerStatus.UNDELIVERED}
OUTCOMES = ["clicked", "booked", "opted_out", "replied"]
COUNTS = ["sent", "delivered", "undelivered", "failed", *OUTCOMES]
RATES = {
    "delivery_rate": "delivered",
    "click_rate": "clicked",
    "booking_rate": "booked",
    "opt_out_rate": "opted_out",
    "reply_rate": "replied",
}
SEND_COLUMNS = [*KEYS, "lead_id", "status", "credits", "sent_at", "delivery_at"]
PEOPLE_COLUMNS = [
    "lead_id",
    "clicked",
    "booked",
    "booked_at",
    "opted_out",
    "replied",
    "reply_at",
]


def sends_frame(rows: Iterable[LedgerEntry]) -> pd.DataFrame:
    """One row per send in the ledger (reply and other events left out)."""
    records = [
        {
            "campaign": r.campaign_id,
            "variant": r.variant or "?",
            "step": r.step,
            "lead_id": r.lead_id,
            "status": LedgerStatus(r.status).value,
            "credits": r.credits or 0.0,
            "sent_at": r.sent_at,
            "delivery_at": r.delivery_at,
        }
        for r in rows
        if r.event == "send"
    ]
    frame = pd.DataFrame.from_records(records, columns=SEND_COLUMNS)
    for column in ("sent_at", "delivery_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def people_frame(leads: Iterable[Lead]) -> pd.DataFrame:
    records = [
        {
            "lead_id": lead.id,
            "clicked": lead.clicked_link or lead.click_count > 0,
            "booked": lead.booked,
            "booked_at": lead.booked_at,
            "opted_out": lead.stop_reason == StopReason.STOP,
            "replied": lead.last_reply_at is not None and lead.stop_reason != StopReason.STOP,
            "reply_at": lead.last_reply_at,
        }
        for lead in leads
    ]
    frame = pd.DataFrame.from_records(records, columns=PEOPLE_COLUMNS)
    for column in ("booked_at", "reply_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def went_out(sends: pd.DataFrame) -> pd.DataFrame:
    return sends[sends["status"].isin({s.value for s in WENT_OUT})]


def _attributed(sends: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """Each person's outcomes placed at the step that last reached them before the outcome."""
    out = went_out(sends).sort_values("sent_at")
    by_lead = {lead_id: group for lead_id, group in out.groupby("lead_id")}
    records = []
    for person in people.itertuples(index=False):
        texts = by_lead.get(person.lead_id)
        if texts is None:
            continue
        timed = {
            "clicked": (person.clicked, None),
            "booked": (person.booked, person.booked_at),
            "opted_out": (person.opted_out, person.reply_at),
            "replied": (person.replied, person.reply_at),
        }
        for outcome, (happened, at) in timed.items():
            if not happened:
                continue
            before = texts if pd.isna(at) else texts[texts["sent_at"] <= at]
            text = (before if len(before) else texts).iloc[-1]
            records.append({**{k: text[k] for k in KEYS}, "outcome": outcome})
    if not records:
        return pd.DataFrame(columns=OUTCOMES, index=pd.MultiIndex.from_tuples([], names=KEYS))
    frame = pd.DataFrame.from_records(records)
    return pd.crosstab([frame[k] for k in KEYS], frame["outcome"])


def with_rates(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for rate, count in RATES.items():
        frame[rate] = (frame[count] / frame["sent"]).where(frame["sent"] > 0, 0.0).round(4)
    return frame


def funnel(sends: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """Per campaign, variant and step: messages, people's outcomes, credits and rates."""
    if sends.empty:
        return pd.DataFrame(columns=[*KEYS, *COUNTS, "credits", *RATES])
    status = sends["status"]
    messages = sends.assign(
        sent=status.isin({s.value for s in WENT_OUT}),
        delivered=status == LedgerStatus.DELIVERED.value,
        undelivered=status == LedgerStatus.UNDELIVERED.value,
        failed=status == LedgerStatus.FAILED.value,
    )
    messages["credits"] = messages["credits"].where(messages["sent"], 0.0)
    table = messages.groupby(KEYS)[["sent", "delivered", "undelivered", "failed", "credits"]].sum()
    outcomes = _attributed(sends, people).reindex(columns=OUTCOMES, fill_value=0)
    table = table.join(outcomes, how="left").fillna(0)
    table[COUNTS] = table[COUNTS].astype(int)
    return with_rates(table.reset_index()[[*KEYS, *COUNTS, "credits"]])


def variant_totals(steps: pd.DataFrame) -> pd.DataFrame:
    """The funnel summed over steps; people are counted once, so the sums are people too."""
    if steps.empty:
        return steps.drop(columns="step")
    summed = steps.groupby(["campaign", "variant"])[[*COUNTS, "credits"]].sum().reset_index()
    return with_rates(summed)


def ab_comparison(sends: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """Per campaign and variant, over the people each variant reached: click and booking rates
    with 95% Wilson intervals, the two-proportion test against the campaign's first variant,
    and the Bayesian probability that the variant is best."""
    reached = went_out(sends)[["campaign", "variant", "lead_id"]].drop_duplicates()
    merged = reached.merge(people, on="lead_id", how="left").fillna(
        {"clicked": False, "booked": False}
    )
    rows = []
    for campaign, group in merged.groupby("campaign"):
        tallies = group.groupby("variant").agg(
            people=("lead_id", "nunique"), clicked=("clicked", "sum"), booked=("booked", "sum")
        )
        control = tallies.index[0]
        best = {
            metric: probability_best(
                {v: (int(t[metric]), int(t["people"])) for v, t in tallies.iterrows()}
            )
            for metric in ("clicked", "booked")
        }
        for variant, t in tallies.iterrows():
            row = {"campaign": campaign, "variant": variant, "people": int(t["people"])}
            for metric, name in (("clicked", "click"), ("booked", "booking")):
                x, n = int(t[metric]), int(t["people"])
                low, high = wilson_interval(x, n)
                test = two_proportion_test(
                    int(tallies.loc[control, metric]), int(tallies.loc[control, "people"]), x, n
                )
                row |= {
                    metric: x,
                    f"{name}_rate": round(x / n, 4) if n else 0.0,
                    f"{name}_low": round(low, 4),
                    f"{name}_high": round(high, 4),
                    f"{name}_p_value": None if variant == control else round(test.p_value, 4),
                    f"{name}_p_best": round(best[metric][variant], 4),
                }
            rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class Report:
    as_of: datetime
    steps: pd.DataFrame
    variants: pd.DataFrame
    ab: pd.DataFrame
    sent_last_24h: int


def build(rows: Iterable[LedgerEntry], leads: Iterable[Lead], now: datetime) -> Report:
    sends, people = sends_frame(rows), people_frame(leads)
    steps = funnel(sends, people)
    recent = went_out(sends)
    recent = recent[recent["sent_at"] >= now - timedelta(days=1)]
    return Report(now, steps, variant_totals(steps), ab_comparison(sends, people), len(recent))


@task(name="build-report", cache_policy=NO_CACHE)
def build_report() -> Report:
    """Campaign to date, from the whole ledger and every lead."""
    svc = services()
    return build(svc.store.ledger_rows(), svc.store.all_leads(), svc.clock.now())
