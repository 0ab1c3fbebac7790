"""The rollout's tasks: the ledger's numbers for a window, and switching the current phase."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.variables import Variable

from integrations.prefect_setup import activate_phase, read_phase
from tasks.runtime import services
from uysp.rollout import SENDING_VARIABLE, Phase
from uysp.rollout_gates import WENT_OUT, RolloutMetrics, measure


def current_phase() -> tuple[Phase, datetime | None]:
    """The phase the Prefect variable names, and when it was set."""
    return read_phase()


def sending_paused_in_prefect() -> bool:
    """The kill switch's second home, the Prefect variable: anything but On is Paused."""
    return str(Variable.get(SENDING_VARIABLE, default="On")).strip().lower() != "on"


@task
def rollout_metrics(since: datetime) -> RolloutMetrics:
    store = services().store
    rows = store.ledger_rows(since=since)
    texted = sorted({row.lead_id for row in rows if row.status in WENT_OUT})
    return measure(rows, store.get_leads(texted) if texted else [])


@task
def switch_phase(target: Phase) -> list[str]:
    return activate_phase(target)
