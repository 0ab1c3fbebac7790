"""The rollout plan's quality gates, pure: what the ledger must show before the scheduler moves
to the next phase, and the error rate that sends it back one.

Phase 1 -> 2: execution success above 98%. Phase 2 -> 3: success above 95%, no rate-limit hits,
opt-outs under 2%, delivery above 95%. In any phase an error rate above 5% rolls back one phase;
phase 1 has nothing below it, so it holds and says so. A phase only ever moves by one.

A send counts once it has a verdict: it went out (Sent, Delivered, Undelivered), failed, or its
outcome is Unknown. Rows still Reserved are in flight, and rows released unsent (`not_sent`)
never reached the provider; neither counts. Delivery is measured against every text that went
out, so texts still waiting for a receipt count against it: a promotion needs receipts.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from uysp.models import ErrorClass, Lead, LedgerEntry, LedgerStatus, StopReason
from uysp.rollout import PHASES, Phase, phase_step

WENT_OUT = frozenset({LedgerStatus.SENT, LedgerStatus.DELIVERED, LedgerStatus.UNDELIVERED})
OPT_OUTS = frozenset({StopReason.STOP, StopReason.UNSUBSCRIBED})
MIN_SENDS_TO_ADVANCE = 50
MIN_SENDS_TO_ROLL_BACK = 20  # as the scheduler's own error-rate brake


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def is_rate_limited(row: LedgerEntry) -> bool:
    error = (row.error or "").lower()
    return "429" in error or "rate limit" in error or "too many requests" in error


@dataclass(frozen=True)
class RolloutMetrics:
    attempted: int = 0
    went_out: int = 0
    delivered: int = 0
    rate_limited: int = 0
    texted_leads: int = 0
    opted_out: int = 0

    @property
    def success_rate(self) -> float | None:
        return _rate(self.went_out, self.attempted)

    @property
    def error_rate(self) -> float | None:
        return _rate(self.attempted - self.went_out, self.attempted)

    @property
    def delivery_rate(self) -> float | None:
        return _rate(self.delivered, self.went_out)

    @property
    def opt_out_rate(self) -> float | None:
        return _rate(self.opted_out, self.texted_leads)


def measure(rows: Iterable[LedgerEntry], leads: Iterable[Lead]) -> RolloutMetrics:
    """The window's numbers from its ledger rows and the leads those rows texted."""
    attempted = [
        row
        for row in rows
        if row.status != LedgerStatus.RESERVED
        and not (row.status == LedgerStatus.FAILED and row.error_class == ErrorClass.NOT_SENT)
    ]
    went_out = [row for row in attempted if row.status in WENT_OUT]
    texted = {row.lead_id for row in went_out}
    return RolloutMetrics(
        attempted=len(attempted),
        went_out=len(went_out),
        delivered=sum(row.status == LedgerStatus.DELIVERED for row in went_out),
        rate_limited=sum(is_rate_limited(row) for row in attempted),
        texted_leads=len(texted),
        opted_out=sum(lead.id in texted and lead.stop_reason in OPT_OUTS for lead in leads),
    )


_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class Gate:
    label: str
    metric: str  # a RolloutMetrics attribute
    op: Literal[">", "<", "<="]
    threshold: float
    percent: bool = True

    def check(self, metrics: RolloutMetrics) -> GateResult:
        value = getattr(metrics, self.metric)
        passed = value is not None and _OPERATORS[self.op](value, self.threshold)
        return GateResult(self, value, passed)

    def show(self, value: float | None) -> str:
        if value is None:
            return "no data"
        return f"{value:.1%}" if self.percent else f"{value:g}"


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    value: float | None
    passed: bool

    def describe(self) -> str:
        gate = self.gate
        return f"{gate.label} {gate.show(self.value)} (needs {gate.op} {gate.show(gate.threshold)})"


GATES: dict[str, tuple[Gate, ...]] = {
    "phase-1-validation": (Gate("execution success", "success_rate", ">", 0.98),),
    "phase-2-scale-up": (
        Gate("execution success", "success_rate", ">", 0.95),
        Gate("rate-limit hits", "rate_limited", "<=", 0, percent=False),
        Gate("opt-outs", "opt_out_rate", "<", 0.02),
        Gate("delivery", "delivery_rate", ">", 0.95),
    ),
}
"""The gates to leave each phase for the next one; the last phase has none."""
SAFE_ERROR_RATE = Gate("error rate", "error_rate", "<=", 0.05)
"""Every phase's floor: above it, roll back one phase."""


@dataclass(frozen=True)
class Recommendation:
    action: Literal["advance", "hold", "roll_back"]
    current: Phase
    target: Phase | None  # the phase to switch to; None when holding
    gates: tuple[GateResult, ...]
    error_gate: GateResult
    reason: str


def evaluate(
    current: Phase, metrics: RolloutMetrics, *, min_sends: int = MIN_SENDS_TO_ADVANCE
) -> Recommendation:
    gates = tuple(gate.check(metrics) for gate in GATES.get(current.name, ()))
    error_gate = SAFE_ERROR_RATE.check(metrics)

    def decide(action, target, reason) -> Recommendation:
        return Recommendation(action, current, target, gates, error_gate, reason)

    if metrics.attempted >= MIN_SENDS_TO_ROLL_BACK and not error_gate.passed:
        previous = phase_step(current, -1)
        if previous is None:
            return decide("hold", None, f"{error_gate.describe()}: no earlier phase to go back to")
        return decide("roll_back", previous, error_gate.describe())
    if current is PHASES[-1]:
        return decide("hold", None, "the last phase: nothing to advance to")
    if metrics.attempted < min_sends:
        return decide(
            "hold", None, f"{metrics.attempted} sends in the window; the gates need {min_sends}"
        )
    failed = [result.describe() for result in gates if not result.passed]
    if failed:
        return decide("hold", None, "; ".join(failed))
    return decide("advance", phase_step(current, 1), "every gate passed")


def report_markdown(
    recommendation: Recommendation,
    metrics: RolloutMetrics,
    since: datetime,
    until: datetime,
    applied: bool,
) -> str:
    """The advisor's artifact: the numbers against each gate, and what it recommends."""
    rec = recommendation
    verdict = {
        "advance": f"advance to **{rec.target.name if rec.target else ''}**",
        "roll_back": f"roll back to **{rec.target.name if rec.target else ''}**",
        "hold": f"hold in **{rec.current.name}**",
    }[rec.action]
    rows = [
        f"| {r.gate.label} | {r.gate.op} {r.gate.show(r.gate.threshold)} "
        f"| {r.gate.show(r.value)} | {'pass' if r.passed else 'FAIL'} |"
        for r in (*rec.gates, rec.error_gate)
    ]
    if rec.target is None:
        outcome = "Nothing to switch."
    elif applied:
        outcome = f"Applied: {rec.target.name}'s schedule is now the active one."
    else:
        outcome = "Not applied: run the advisor with `apply=True` to switch."
    return "\n".join(
        [
            f"# Rollout: {rec.current.name}",
            "",
            f"Window {since.astimezone(UTC):%Y-%m-%d %H:%M} to"
            f" {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC:"
            f" {metrics.attempted} sends, {metrics.went_out} went out,"
            f" {metrics.delivered} delivered, {metrics.opted_out} of"
            f" {metrics.texted_leads} leads opted out, {metrics.rate_limited} rate-limit hits.",
            "",
            "| gate | needs | actual | result |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
            f"**Recommendation: {verdict}** ({rec.reason}).",
            "",
            outcome,
        ]
    )
