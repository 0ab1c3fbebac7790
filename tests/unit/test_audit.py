"""The audit's rules, table-driven: one lead texted step 1 of campaign c1, then each way its
ledger rows, its fields and the provider's log can disagree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from uysp.audit import RECOVERED, CatchUp, Kind, Recover, audit, leads_in_scope
from uysp.models import (
    ErrorClass,
    Lead,
    LedgerEntry,
    LedgerStatus,
    ProcessingStatus,
    StopReason,
    Template,
    send_key,
)
from uysp.ports import ProviderMessage

T0 = datetime(2026, 11, 17, 16, 0, tzinfo=UTC)
SINCE = T0 - timedelta(days=30)
PHONE = "+12125550101"
LINK = "https://l.example/abc"
KEY1, KEY2 = send_key("rec1", "c1", 1), send_key("rec1", "c1", 2)
TEMPLATES = [
    Template(campaign="c1", variant="A", step=1, body="Hi {Name}: {Link}"),
    Template(campaign="c1", variant="A", step=2, body="{Name}, following up: {Link}"),
    Template(campaign="c1", variant="B", step=2, body="{Name}, one more: {Link}"),
]
STEP_2_TEXT = f"Ann, following up: {LINK}"


def lead(**fields) -> Lead:
    defaults = {
        "id": "rec1",
        "phone": PHONE,
        "first_name": "Ann",
        "campaign_id": "c1",
        "variant": "A",
        "sequence_position": 1,
        "sent_count": 1,
        "last_sent_at": T0,
        "processing_status": ProcessingStatus.IN_SEQUENCE,
        "short_link_url": LINK,
    }
    return Lead(**(defaults | fields))


def row(step: int = 1, status: LedgerStatus = LedgerStatus.SENT, **fields) -> LedgerEntry:
    sent = status in (LedgerStatus.SENT, LedgerStatus.DELIVERED)
    at = fields.pop("at", T0 + timedelta(days=2 * (step - 1)))
    defaults = {
        "send_key": send_key("rec1", "c1", step),
        "status": status,
        "lead_id": "rec1",
        "phone": PHONE,
        "campaign_id": "c1",
        "step": step,
        "variant": "A",
        "text": f"text {step}",
        "provider_message_id": f"m{step}" if sent else None,
        "reserved_at": at - timedelta(seconds=1),
        "sent_at": at if sent else None,
    }
    return LedgerEntry(**(defaults | fields))


def message(message_id: str = "m1", text: str = "text 1", at: datetime = T0, phone: str = PHONE):
    return ProviderMessage(message_id, phone, text, at)


DAY = timedelta(days=1)
LATER = T0 + 2 * DAY
CLEAN = {"rows": [row()], "leads": [lead()], "messages": [message()]}

CASES = [
    pytest.param({}, [], id="clean"),
    pytest.param(
        {"rows": [row(), row(3, event="help", send_key="help:e1", provider_message_id="m9")]}
        | {"messages": [message(), message("m9", "text 3", LATER)]},
        [],
        id="a HELP answer is in the log and moves no lead",
    ),
    pytest.param(
        {"rows": [row(at=SINCE - timedelta(days=1))], "messages": []}
        | {"leads": [lead(last_sent_at=SINCE - timedelta(days=1))]},
        [],
        id="a Sent row from before the window is not looked for in the log",
    ),
    pytest.param(
        {"rows": [row(), row(2, LedgerStatus.RESERVED)]}
        | {"messages": [message(), message("m2", "text 2", LATER)]},
        [(Kind.RESERVED, KEY2, "m2", "Settle")],
        id="reserved, its text in the log",
    ),
    pytest.param(
        {"rows": [row(), row(2, LedgerStatus.RESERVED)]},
        [(Kind.RESERVED, KEY2, None, "Settle")],
        id="reserved, its text not in the log",
    ),
    pytest.param(
        {"rows": [row(), row(2, LedgerStatus.UNKNOWN, error="provider log has other texts")]},
        [(Kind.UNKNOWN, KEY2, None, None)],
        id="unknown is only reported",
    ),
    pytest.param(
        {"messages": []},
        [(Kind.SENT_NOT_IN_PROVIDER_LOG, KEY1, "m1", None)],
        id="sent, not in the provider log",
    ),
    pytest.param(
        {"messages": [message(), message("m7", STEP_2_TEXT, LATER)]},
        [(Kind.PROVIDER_MESSAGE_WITHOUT_LEDGER_ROW, KEY2, "m7", "Recover")],
        id="provider message matched by the lead's template",
    ),
    pytest.param(
        {"rows": [row(), row(2, LedgerStatus.FAILED, error_class=ErrorClass.TRANSIENT)]}
        | {"messages": [message(), message("m7", "text 2", LATER)]},
        [(Kind.PROVIDER_MESSAGE_WITHOUT_LEDGER_ROW, KEY2, "m7", "Recover")],
        id="provider message of a row that failed retryably",
    ),
    pytest.param(
        {"rows": [row(), row(2, LedgerStatus.FAILED, error_class=ErrorClass.PERMANENT)]}
        | {"messages": [message(), message("m7", "text 2", LATER)]},
        [(Kind.PROVIDER_MESSAGE_WITHOUT_LEDGER_ROW, KEY2, "m7", None)],
        id="provider message of a row that failed for good is only reported",
    ),
    pytest.param(
        {"messages": [message(), message("m7", "text 1", T0 + timedelta(hours=1))]},
        [(Kind.PROVIDER_MESSAGE_WITHOUT_LEDGER_ROW, KEY1, "m7", None)],
        id="a second copy of a step already Sent is only reported",
    ),
    pytest.param(
        {"messages": [message(), message("m7", STEP_2_TEXT, LATER)]}
        | {"rows": [row(), row(2, LedgerStatus.RESERVED, text="another text")]},
        [
            (Kind.RESERVED, KEY2, None, "Settle"),
            (Kind.PROVIDER_MESSAGE_WITHOUT_LEDGER_ROW, KEY2, "m7", None),
        ],
        id="a provider message whose step is still Reserved under another text",
    ),
    pytest.param(
        {"messages": [message(), message("m7", "hello?", LATER)]},
        [(Kind.PROVIDER_MESSAGE_WITHOUT_LEDGER_ROW, None, "m7", None)],
        id="provider message matching no step",
    ),
    pytest.param(
        {"messages": [message(), message("m7", STEP_2_TEXT, LATER, "+12125550199")]},
        [(Kind.PROVIDER_MESSAGE_WITHOUT_LEDGER_ROW, None, "m7", None)],
        id="provider message to a number no lead has",
    ),
    pytest.param(
        {"rows": [row(), row(2)], "messages": [message(), message("m2", "text 2", LATER)]},
        [(Kind.LEAD_BEHIND_LEDGER, KEY2, "m2", "CatchUp")],
        id="lead behind its ledger",
    ),
    pytest.param(
        {"leads": [lead(last_sent_at=T0 - timedelta(milliseconds=900))]},
        [],
        id="a last-sent time a store rounded is not behind",
    ),
    pytest.param(
        {"leads": [lead(sequence_position=0, last_sent_at=T0 + timedelta(days=1))]},
        [(Kind.LEAD_BEHIND_LEDGER, KEY1, "m1", "CatchUp")],
        id="lead whose position was lost is behind",
    ),
    pytest.param(
        {"leads": [lead(sequence_position=2)]},
        [(Kind.LEAD_AHEAD_OF_LEDGER, None, None, None)],
        id="lead ahead of its ledger",
    ),
    pytest.param(
        {"leads": [lead(booked=True, booked_at=T0 - timedelta(hours=1), sms_stop=True)]},
        [(Kind.SENT_AFTER_STOP, KEY1, "m1", None)],
        id="sent after the booked meeting",
    ),
    pytest.param(
        {
            "leads": [
                lead(
                    sms_stop=True,
                    stop_reason=StopReason.STOP,
                    last_reply_at=T0 - timedelta(hours=1),
                    last_reply_text="Stop texting me",
                )
            ]
        },
        [(Kind.SENT_AFTER_STOP, KEY1, "m1", None)],
        id="sent after a STOP reply",
    ),
    pytest.param(
        {
            "leads": [
                lead(sms_stop=True, last_reply_at=T0 - timedelta(hours=1), last_reply_text="HELP")
            ]
        },
        [],
        id="a HELP reply is no stop",
    ),
    pytest.param(
        {"rows": [row(), row(provider_message_id="m1b", at=T0 + timedelta(hours=1))]}
        | {"messages": [message(), message("m1b", at=T0 + timedelta(hours=1))]}
        | {"leads": [lead(last_sent_at=T0 + timedelta(hours=1), sent_count=2)]},
        [(Kind.DUPLICATE_STEP, KEY1, "m1b", None)],
        id="one step sent twice",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), CASES)
def test_each_disagreement_is_found_with_its_repair(changes, expected):
    records = CLEAN | changes

    found = audit(**records, since=SINCE, templates=TEMPLATES)

    assert [
        (d.kind, d.send_key, d.message_id, type(d.repair).__name__ if d.repair else None)
        for d in found
    ] == expected
    assert all(d.detail for d in found)
    assert all(d.lead_id in (None, "rec1") for d in found)


def test_a_recovered_row_is_the_provider_message_marked_as_recovered():
    (found,) = audit(
        [row()],
        [lead()],
        [message(), message("m7", STEP_2_TEXT, LATER)],
        since=SINCE,
        templates=TEMPLATES,
    )

    assert isinstance(found.repair, Recover)
    recovered = found.repair.row
    assert (recovered.status, recovered.provider_message_id) == (LedgerStatus.SENT, "m7")
    assert (recovered.step, recovered.variant, recovered.text) == (2, "A", STEP_2_TEXT)
    assert recovered.sent_at == LATER
    assert recovered.error == RECOVERED


def test_two_texts_of_one_step_recover_one_row():
    found = audit(
        [row()],
        [lead()],
        [message(), message("m7", STEP_2_TEXT, LATER), message("m8", STEP_2_TEXT, LATER)],
        since=SINCE,
        templates=TEMPLATES,
    )

    assert [(d.message_id, type(d.repair).__name__) for d in found] == [
        ("m7", "Recover"),
        ("m8", "NoneType"),
    ]


def test_a_lead_behind_carries_every_row_it_missed():
    rows = [row(), row(2), row(3)]
    lead_at_0 = lead(sequence_position=0, last_sent_at=None, processing_status="Ready for SMS")
    messages = [message(), message("m2", "text 2", LATER), message("m3", "text 3", T0 + 4 * DAY)]

    (found,) = audit(rows, [lead_at_0], messages, since=SINCE)

    assert isinstance(found.repair, CatchUp)
    assert [r.step for r in found.repair.rows] == [1, 2, 3]


def test_the_leads_in_scope_are_those_texted_in_the_window_by_any_record():
    quiet = lead(id="quiet", phone="+12125550102", last_sent_at=SINCE - timedelta(days=9))
    by_field = lead(id="by_field", phone="+12125550103")
    by_log = lead(id="by_log", phone="+12125550104", last_sent_at=None)
    by_row = lead(id="by_row", phone="+12125550105", last_sent_at=None)
    waiting = lead(id="waiting", phone="+12125550106", last_sent_at=None)
    rows = [
        row(lead_id="by_row"),
        row(lead_id="waiting", status=LedgerStatus.UNKNOWN, at=SINCE - timedelta(days=9)),
        row(lead_id="quiet", at=SINCE - timedelta(days=9)),
    ]
    messages = [message(phone="+12125550104")]

    scope = leads_in_scope([quiet, by_field, by_log, by_row, waiting], rows, messages, SINCE)

    assert [x.id for x in scope] == ["by_field", "by_log", "by_row", "waiting"]
