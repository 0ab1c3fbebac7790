"""The Airtable store's stop check keeps its staleness bound without making sends wait for it:
flags near the end of their life are renewed by a background poll while the sends go on."""

from __future__ import annotations

import threading
import time

from integrations.airtable import _StopCheck, _StopFlags
from tests.builders import make_lead

BOUND = 10.0


class Poll:
    """A stop-flag poll the test answers by hand."""

    def __init__(self) -> None:
        self.answer: dict[str, _StopFlags] = {}
        self.release = threading.Event()
        self.calls = 0
        self.finished = threading.Event()

    def __call__(self, lead_ids):
        self.calls += 1
        self.release.wait(5)
        self.finished.set()
        return dict(self.answer)


def check_with(poll: Poll, clock: list[float]) -> tuple[_StopCheck, str]:
    check = _StopCheck(BOUND, poll, monotonic=lambda: clock[0])
    lead = make_lead(1).model_copy(update={"id": "rec1"})
    check.read([lead], at=0.0)
    check.expect([lead.id])
    return check, lead.id


def wait_for_renewal(check: _StopCheck, poll: Poll) -> None:
    poll.finished.wait(5)
    while check._renewing:
        time.sleep(0.01)


def test_flags_near_the_end_of_their_life_answer_at_once_and_are_renewed_behind():
    poll, clock = Poll(), [0.0]
    check, lead_id = check_with(poll, clock)
    poll.answer = {lead_id: _StopFlags(sms_stop=True)}  # the lead said STOP at Airtable

    clock[0] = 8.5
    assert check.stopped_among([lead_id]) == set()  # answered while the poll is still out
    poll.release.set()
    wait_for_renewal(check, poll)

    clock[0] = 9.0
    assert check.stopped_among([lead_id]) == {lead_id}
    assert poll.calls == 1


def test_flags_past_their_life_wait_for_a_poll():
    poll, clock = Poll(), [0.0]
    check, lead_id = check_with(poll, clock)
    poll.answer = {lead_id: _StopFlags(booked=True)}
    poll.release.set()

    clock[0] = BOUND + 1
    assert check.stopped_among([lead_id]) == {lead_id}


def test_a_write_made_while_the_renewal_was_out_is_not_undone_by_it():
    poll, clock = Poll(), [0.0]
    check, lead_id = check_with(poll, clock)
    poll.answer = {lead_id: _StopFlags()}  # read before this process's own STOP landed

    clock[0] = 8.5
    check.stopped_among([lead_id])
    check.wrote({lead_id: {"sms_stop": True}})
    poll.release.set()
    wait_for_renewal(check, poll)

    assert check.stopped_among([lead_id]) == {lead_id}
