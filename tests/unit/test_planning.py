"""The scheduler's gates as one pure plan: gate_leads, then apply_ledger, then apply_caps.

NOW is Tuesday 2026-11-17 16:00 UTC: 11:00 in New York, 08:00 in Los Angeles (both inside the
federal 8:00-21:00 window) and 06:00 in Honolulu (outside it). Steps 2 and 3 wait 2 days, or
30 minutes in fast mode.
"""

from collections import Counter
from datetime import UTC, datetime, time, timedelta

import pytest

from uysp.compliance import CampaignHours
from uysp.models import Lead, LedgerEntry, LedgerStatus, ProcessingStatus, Template
from uysp.planning import (
    MESSAGES_KEPT_PER_REASON,
    Plan,
    PlannedSend,
    RunParams,
    apply_caps,
    apply_ledger,
    gate_leads,
)

NOW = datetime(2026, 11, 17, 16, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)
OPEN = CampaignHours(time(8), time(21), frozenset(range(7)))
LINK = "https://u.sp/XXXXXXXX"  # the placeholder link: 21 characters
NEW_YORK, LOS_ANGELES, HONOLULU = "212", "310", "808"


def template(variant: str, step: int, body: str | None = None, campaign: str = "c1") -> Template:
    return Template(
        campaign=campaign,
        variant=variant,
        step=step,
        body=body or f"[{variant}{step}] Hi {{Name}}, {{Link}}",
        delay_days=0 if step == 1 else 2,
        fast_delay_minutes=0 if step == 1 else 30,
    )


def table(spec: str = "A1 A2 A3 B1 B2 B3") -> dict[str, dict[int, Template]]:
    """{variant: {step: template}} from "A1 A2 ..."."""
    result: dict[str, dict[int, Template]] = {}
    for item in spec.split():
        result.setdefault(item[0], {})[int(item[1])] = template(item[0], int(item[1]))
    return result


def make_lead(
    lead_id: str,
    position: int = 0,
    ago: timedelta | None = None,
    *,
    area: str = NEW_YORK,
    **fields,
) -> Lead:
    """An eligible lead in variant A at `position`, last texted `ago` before NOW."""
    defaults = {
        "phone": f"+1{area}555{int(lead_id[1:]):04d}",
        "first_name": "Ana",
        "phone_valid": True,
        "location_country": "US",
        "processing_status": ProcessingStatus.IN_SEQUENCE if position else ProcessingStatus.READY,
        "variant": "A",
        "sequence_position": position,
        "last_sent_at": None if ago is None else NOW - ago,
    }
    return Lead(id=lead_id, **(defaults | fields))


def params(**overrides) -> RunParams:
    return RunParams(**({"campaign": "c1", "batch_size": 100, "daily_cap": 1000} | overrides))


def gate(leads, templates=None, *, ratio_a=0.5, **overrides) -> Plan:
    return gate_leads(
        leads,
        table() if templates is None else templates,
        params=params(**overrides),
        ratio_a=ratio_a,
        hours=OPEN,
        now=NOW,
        link_placeholder=LINK,
    )


def sent(plan: Plan) -> list[tuple[str, int]]:
    return [(s.lead.id, s.step) for s in plan.sends]


# gate_leads: one lead, one gate


@pytest.mark.parametrize(
    ("lead", "reason", "message"),
    [
        (make_lead("L1", phone_valid=False), "phone_invalid", None),
        (make_lead("L1", phone="12"), "phone_invalid", None),
        (make_lead("L1", location_country="Mexico"), "not_us_canada", None),
        (make_lead("L1", sms_stop=True), "stopped", None),
        (make_lead("L1", booked=True), "booked", None),
        (make_lead("L1", current_client=True), "current_client", None),
        (make_lead("L1", hrq_status="ARCHIVE"), "archived", None),
        (make_lead("L1", processing_status="Completed"), "status_not_ready", None),
        (make_lead("L1", processing_status=None), "status_not_ready", None),
        (
            make_lead("L1", 1, None),
            "repaired_missing_last_sent",
            "lead L1: SMS Sequence Position 1 with no SMS Last Sent At",
        ),
        (make_lead("L1", 3, 10 * D), "sequence_complete", "lead L1: all 3 steps sent"),
        (make_lead("L1", 1, 2 * H), "within_24h", None),
        (make_lead("L1", 0, 23 * H), "within_24h", None),  # a step-1 lead with a last-sent
        (make_lead("L1", 1, 30 * H), "not_due", "lead L1: step 2 due 2026-11-18T10:00:00+00:00"),
        (make_lead("L1", area=HONOLULU), "outside_federal_hours", "lead L1: outside federal hours"),
        (make_lead("L1", 1, 3 * D, area=HONOLULU), "outside_federal_hours", None),
        (
            make_lead("L1", first_name=None),
            "missing_name",
            "lead L1: First Name is blank and step 1 uses it",
        ),
        (make_lead("L1", 1, 3 * D, first_name=" "), "missing_name", None),
        (make_lead("L1", variant="C"), "missing_template", "lead L1: no template for c1 C step 1"),
    ],
)
def test_gate_leads_holds_one_lead(lead, reason, message):
    plan = gate([lead])
    assert plan.sends == []
    assert plan.held == Counter({reason: 1})
    assert len(plan.messages[reason]) == 1
    assert plan.messages[reason][0].startswith("lead L1: ")
    if message is not None:
        assert plan.messages[reason] == [message]


@pytest.mark.parametrize(
    ("lead", "fast_mode", "step"),
    [
        (make_lead("L1"), False, 1),
        (make_lead("L1", area=LOS_ANGELES), False, 1),  # 08:00 local: the window has opened
        (make_lead("L1", processing_status="Ready for SMS"), False, 1),
        (make_lead("L1", 0, 24 * H), False, 1),
        (make_lead("L1", 1, 2 * D), False, 2),
        (make_lead("L1", 2, 5 * D), False, 3),
        (make_lead("L1", 1, 24 * H), True, 2),  # fast mode: 30 minutes, but 24 h first
        (make_lead("L1", 2, 24 * H), True, 3),
    ],
)
def test_gate_leads_sends_when_every_gate_passes(lead, fast_mode, step):
    plan = gate([lead], fast_mode=fast_mode)
    assert sent(plan) == [("L1", step)]
    assert plan.held == Counter()
    assert plan.repairs == {}
    assert plan.alerts == []


def test_gate_leads_counts_every_held_lead_by_reason():
    leads = [
        make_lead("L1"),
        make_lead("L2", phone_valid=False),
        make_lead("L3", sms_stop=True),
        make_lead("L4", booked=True),
        make_lead("L5", booked=True),
        make_lead("L6", 1, None),
        make_lead("L7", 3, 5 * D),
        make_lead("L8", 1, 2 * H),
        make_lead("L9", 1, 30 * H),
        make_lead("L10", area=HONOLULU),
        make_lead("L11", area=HONOLULU),
        make_lead("L12", first_name=None),
        make_lead("L13", 2, 3 * D),
        make_lead("L14", 1, 3 * D),
    ]
    plan = gate(leads, table("A1 A2 B1 B2 B3"))
    assert sent(plan) == [("L14", 2), ("L1", 1)]
    assert plan.held == Counter(
        {
            "phone_invalid": 1,
            "stopped": 1,
            "booked": 2,
            "repaired_missing_last_sent": 1,
            "sequence_complete": 1,
            "within_24h": 1,
            "not_due": 1,
            "outside_federal_hours": 2,
            "missing_name": 1,
            "missing_template": 1,
        }
    )
    named = {reason: [m.split(":")[0] for m in kept] for reason, kept in plan.messages.items()}
    assert named == {
        "phone_invalid": ["lead L2"],
        "stopped": ["lead L3"],
        "booked": ["lead L4", "lead L5"],
        "repaired_missing_last_sent": ["lead L6"],
        "sequence_complete": ["lead L7"],
        "within_24h": ["lead L8"],
        "not_due": ["lead L9"],
        "outside_federal_hours": ["lead L10", "lead L11"],
        "missing_name": ["lead L12"],
        "missing_template": ["lead L13"],
    }
    assert plan.repairs == {
        "L6": {"last_sent_at": NOW},
        "L7": {"processing_status": ProcessingStatus.COMPLETE},
    }


def test_gate_leads_keeps_a_bounded_number_of_messages_per_reason():
    plan = gate([make_lead(f"L{n}", booked=True) for n in range(MESSAGES_KEPT_PER_REASON + 5)])
    assert plan.held["booked"] == MESSAGES_KEPT_PER_REASON + 5
    assert len(plan.messages["booked"]) == MESSAGES_KEPT_PER_REASON
    assert plan.messages["booked"][0] == "lead L0: Booked"


# gate_leads: templates and alerts


def test_missing_templates_alert_per_variant_and_step():
    leads = [
        make_lead("L1", 1, 3 * D, variant="B"),  # B step 2 missing
        make_lead("L2", 2, 3 * D),  # A step 3 missing
        make_lead("L3", 2, 3 * D),  # A step 3 missing
        make_lead("L4", 1, 3 * D),  # A step 2 present
        make_lead("L5", variant="B"),  # B step 1 present
    ]
    plan = gate(leads, table("A1 A2 B1 B3"))
    assert sent(plan) == [("L4", 2), ("L5", 1)]
    assert plan.held == Counter({"missing_template": 3})
    assert plan.alerts == [
        "no active template for campaign 'c1' variant A step 3: 2 leads held",
        "no active template for campaign 'c1' variant B step 2: 1 leads held",
    ]


def test_no_alert_when_every_template_is_present():
    plan = gate([make_lead("L1"), make_lead("L2", 1, 3 * D), make_lead("L3", 2, 3 * D)])
    assert plan.alerts == []
    assert sent(plan) == [("L3", 3), ("L2", 2), ("L1", 1)]


def test_campaign_without_templates_alerts_and_holds_unknown_campaign():
    leads = [make_lead("L1"), make_lead("L2", booked=True), make_lead("L3", 1, 3 * D)]
    plan = gate(leads, {})
    assert plan.sends == []
    assert plan.alerts == ["campaign 'c1' has no active templates"]
    assert plan.held == Counter({"unknown_campaign": 2, "booked": 1})
    assert plan.messages["unknown_campaign"] == ["lead L1: campaign 'c1'", "lead L3: campaign 'c1'"]


def test_campaign_without_templates_alerts_even_with_no_leads():
    assert gate([], {}).alerts == ["campaign 'c1' has no active templates"]


@pytest.mark.parametrize(
    ("ratio_a", "variant", "expected"),
    [
        (1.0, None, "A"),
        (0.0, None, "B"),
        (1.0, "B", "B"),  # a drawn variant is kept
        (0.0, "A", "A"),
    ],
)
def test_gate_leads_draws_the_variant_with_the_ratio(ratio_a, variant, expected):
    plan = gate([make_lead("L1", variant=variant)], ratio_a=ratio_a)
    [send] = plan.sends
    assert send.variant == expected
    assert send.template == template(expected, 1)


# gate_leads: the planned send


def test_planned_send_carries_normalised_phone_template_and_key():
    lead = make_lead("L7", 1, 3 * D, phone="(212) 555-0007", variant="B")
    [send] = gate([lead]).sends
    assert send.lead is lead
    assert send.phone == "+12125550007"
    assert (send.step, send.variant) == (2, "B")
    assert send.template == template("B", 2)
    assert send.key == "L7:c1:2"
    assert send.estimated_segments == 1


@pytest.mark.parametrize(
    ("short_link_url", "segments"),
    [
        (None, 2),  # 141 + the 21-character placeholder = 162 characters: two segments
        ("https://u.sp/ab", 1),  # 141 + 15 = 156: one
    ],
)
def test_estimated_segments_use_the_rendered_text(short_link_url, segments):
    body = "x" * 140 + " {Link}"
    templates = {"A": {1: template("A", 1, body)}}
    [send] = gate([make_lead("L1", short_link_url=short_link_url)], templates).sends
    assert send.estimated_segments == segments


def test_follow_ups_go_before_step_1_then_oldest_import_then_id():
    leads = [
        make_lead("L1", imported_at=datetime(2026, 11, 1, tzinfo=UTC)),
        make_lead("L2", 1, 3 * D, imported_at=datetime(2026, 11, 5, tzinfo=UTC)),
        make_lead("L3", 2, 3 * D),
        make_lead("L4", imported_at=datetime(2026, 10, 1, tzinfo=UTC)),
        make_lead("L5"),
        make_lead("L6", 1, 3 * D, imported_at=datetime(2026, 11, 1, tzinfo=UTC)),
        make_lead("L0"),
    ]
    assert sent(gate(leads)) == [
        ("L3", 3),
        ("L6", 2),
        ("L2", 2),
        ("L4", 1),
        ("L1", 1),
        ("L0", 1),  # no Imported At: after those that have one, then by id
        ("L5", 1),
    ]


def test_date_only_imported_at_does_not_break_the_ordering():
    dated = Lead.model_validate(
        {**make_lead("L1").model_dump(by_alias=True), "Imported At": "2026-11-01"}
    )
    assert sent(gate([dated, make_lead("L2")])) == [("L1", 1), ("L2", 1)]


# apply_ledger


def planned(lead_id: str = "L1", step: int = 1, campaign: str = "c1", segments: int = 1):
    lead = make_lead(lead_id, step - 1, None if step == 1 else 3 * D)
    return PlannedSend(
        lead, lead.phone, step, "A", template("A", step, campaign=campaign), segments
    )


def row(
    step: int,
    status: LedgerStatus = LedgerStatus.SENT,
    ago: timedelta | None = None,
    *,
    reserved_ago: timedelta | None = None,
    lead_id: str = "L1",
    campaign: str = "c1",
) -> LedgerEntry:
    return LedgerEntry(
        send_key=f"{lead_id}:{campaign}:{step}",
        status=status,
        lead_id=lead_id,
        phone="+12125550001",
        campaign_id=campaign,
        step=step,
        sent_at=None if ago is None else NOW - ago,
        reserved_at=None if reserved_ago is None else NOW - reserved_ago,
    )


def repair(position: int, count: int, last_sent_at: datetime) -> dict:
    return {
        "sequence_position": position,
        "sent_count": count,
        "last_sent_at": last_sent_at,
        "processing_status": ProcessingStatus.IN_SEQUENCE,
    }


S = LedgerStatus
NO_REPAIR: dict = {}


@pytest.mark.parametrize(
    ("step", "rows", "reason", "expected_repair"),
    [
        # Nothing in the ledger, or nothing that blocks.
        (1, [], None, None),
        (1, [row(1, S.FAILED, 1 * H)], None, None),  # a Failed row does not block
        (2, [row(1, ago=3 * D), row(2, S.FAILED, 1 * H)], None, None),
        (2, [row(1, ago=3 * D)], None, None),  # the step before, long ago
        (2, [row(1, ago=24 * H)], None, None),  # exactly 24 hours ago
        (1, [row(1, ago=3 * D, campaign="c0")], None, None),  # another campaign's step 1
        (1, [row(1, ago=1 * D, lead_id="L2")], None, None),  # another lead's row
        # The step is in the ledger while the lead's fields are behind: already sent.
        (1, [row(1, ago=30 * H)], "already_sent", repair(1, 1, NOW - 30 * H)),
        (1, [row(1, S.DELIVERED, 3 * D)], "already_sent", repair(1, 1, NOW - 3 * D)),
        (1, [row(1, S.UNDELIVERED, 3 * D)], "already_sent", repair(1, 1, NOW - 3 * D)),
        # A Reserved row may yet prove never sent: it holds its step and moves the lead nowhere.
        (1, [row(1, S.RESERVED, reserved_ago=2 * H)], "already_sent", NO_REPAIR),
        (1, [row(1, S.RESERVED)], "already_sent", NO_REPAIR),  # no time at all
        (
            2,
            [row(1, ago=3 * D), row(2, S.RESERVED, reserved_ago=1 * H)],
            "already_sent",
            repair(1, 1, NOW - 3 * D),
        ),
        (
            2,
            [row(1, ago=3 * D), row(2, ago=26 * H)],
            "already_sent",
            repair(2, 2, NOW - 26 * H),
        ),
        (
            1,  # the lead lost two writes: the repair takes the highest step
            [row(1, ago=3 * D), row(2, S.DELIVERED, 30 * H, reserved_ago=31 * H)],
            "already_sent",
            repair(2, 2, NOW - 30 * H),
        ),
        # An Unknown row: a person must look first, whatever the step.
        (1, [row(1, S.UNKNOWN, reserved_ago=2 * H)], "unknown_outcome", None),
        (2, [row(1, S.UNKNOWN, reserved_ago=3 * D)], "unknown_outcome", None),
        (3, [row(1, ago=5 * D), row(2, S.UNKNOWN, reserved_ago=3 * D)], "unknown_outcome", None),
        # A text within 24 hours that the lead's fields do not show.
        (2, [row(1, ago=10 * H)], "within_24h", repair(1, 1, NOW - 10 * H)),
        (2, [row(1, ago=24 * H - timedelta(seconds=1))], "within_24h", None),
        (2, [row(1, S.RESERVED, reserved_ago=1 * H)], "within_24h", NO_REPAIR),
        (
            3,
            [
                row(1, ago=3 * D),
                row(2, ago=30 * H),
                row(2, S.RESERVED, reserved_ago=1 * H, campaign="c0"),
            ],
            "within_24h",
            repair(2, 2, NOW - 30 * H),
        ),
        (3, [row(1, ago=3 * D), row(2, ago=5 * H)], "within_24h", repair(2, 2, NOW - 5 * H)),
    ],
)
def test_apply_ledger(step, rows, reason, expected_repair):
    plan = Plan(sends=[planned("L1", step)])
    apply_ledger(plan, rows, NOW)
    if reason is None:
        assert sent(plan) == [("L1", step)]
        assert plan.held == Counter()
        assert plan.repairs == {}
    else:
        assert plan.sends == []
        assert plan.held == Counter({reason: 1})
        assert plan.messages[reason][0].startswith("lead L1: ")
        if expected_repair is not None:
            assert plan.repairs == ({"L1": expected_repair} if expected_repair else {})
        if reason == "unknown_outcome":
            assert plan.repairs == {}


def test_apply_ledger_messages():
    plan = Plan(sends=[planned("L1", 1), planned("L2", 2), planned("L3", 1)])
    rows = [
        row(1, ago=30 * H, lead_id="L1"),
        row(1, ago=10 * H, lead_id="L2"),
        row(1, S.UNKNOWN, lead_id="L3"),
    ]
    apply_ledger(plan, rows, NOW)
    assert plan.messages == {
        "already_sent": ["lead L1: step 1 is in the ledger"],
        "within_24h": ["lead L2: ledger has a text at 2026-11-17 06:00"],
        "unknown_outcome": ["lead L3: a send awaits review"],
    }


def test_apply_ledger_keeps_the_rest_in_order():
    plan = Plan(sends=[planned("L1", 2), planned("L2", 1), planned("L3", 1), planned("L4", 1)])
    apply_ledger(plan, [row(1, ago=2 * D, lead_id="L2")], NOW)
    assert sent(plan) == [("L1", 2), ("L3", 1), ("L4", 1)]
    assert plan.held == Counter({"already_sent": 1})


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], {"last_sent_at": NOW}),
        ([row(1, S.FAILED, 2 * D)], {"last_sent_at": NOW}),
        ([row(1, ago=2 * D)], repair(1, 1, NOW - 2 * D)),
        ([row(1, ago=4 * D), row(2, ago=2 * D)], repair(2, 2, NOW - 2 * D)),
    ],
)
def test_apply_ledger_repairs_a_missing_last_sent_from_the_ledger(rows, expected):
    """A position without a last-sent time waits a full delay from the ledger's time if it has
    one, from now otherwise."""
    plan = gate([make_lead("L1", 1, None)])
    assert plan.repairs == {"L1": {"last_sent_at": NOW}}
    apply_ledger(plan, rows, NOW)
    assert plan.repairs == {"L1": expected}
    assert plan.held == Counter({"repaired_missing_last_sent": 1})


def test_apply_ledger_leaves_sequence_complete_repairs_alone():
    plan = gate([make_lead("L1", 3, 5 * D)])
    apply_ledger(plan, [row(3, ago=5 * D)], NOW)
    assert plan.repairs == {"L1": {"processing_status": ProcessingStatus.COMPLETE}}


def test_apply_ledger_24h_counts_texts_from_any_campaign():
    plan = Plan(sends=[planned("L1", 1, campaign="c1")])
    apply_ledger(plan, [row(1, ago=1 * H, campaign="c0")], NOW)
    assert plan.sends == []
    assert plan.held == Counter({"within_24h": 1})


# apply_caps


def caps_plan(*segments: int) -> Plan:
    return Plan(sends=[planned(f"L{n}", 1, segments=s) for n, s in enumerate(segments)])


@pytest.mark.parametrize(
    ("segments", "run", "today", "kept", "held"),
    [
        # Batch cap.
        ((1, 1, 1, 1), {"batch_size": 2}, {}, [0, 1], {"batch_cap": 2}),
        ((1, 1), {"batch_size": 2}, {}, [0, 1], {}),
        ((1, 1), {"batch_size": 0}, {}, [], {"batch_cap": 2}),
        # Daily cap in messages, counting what was sent earlier today.
        ((1, 1, 1, 1), {"daily_cap": 10}, {"sent_today": 8}, [0, 1], {"daily_cap": 2}),
        ((1, 1), {"daily_cap": 10}, {"sent_today": 10}, [], {"daily_cap": 2}),
        ((1, 1), {"daily_cap": 10}, {"sent_today": 12}, [], {"daily_cap": 2}),
        # Both full: the batch is counted first.
        ((1, 1, 1), {"batch_size": 1, "daily_cap": 2}, {}, [0], {"batch_cap": 2}),
        ((1, 1, 1), {"batch_size": 2, "daily_cap": 1}, {}, [0], {"daily_cap": 2}),
        # Daily segment cap, counting segments sent earlier today; in send order, a smaller
        # text later in the batch may still fit.
        (
            (2, 2, 1),
            {"daily_segment_cap": 5},
            {"segments_today": 2},
            [0, 2],
            {"daily_segment_cap": 1},
        ),
        ((2, 2, 1), {"daily_segment_cap": 4}, {}, [0, 1], {"daily_segment_cap": 1}),
        ((3,), {"daily_segment_cap": 4}, {"segments_today": 2}, [], {"daily_segment_cap": 1}),
        ((3, 3), {"daily_segment_cap": None}, {"segments_today": 10**6}, [0, 1], {}),
        # Held by segments, a send does not use a daily message slot.
        ((2, 2, 1), {"daily_cap": 2, "daily_segment_cap": 3}, {}, [0, 2], {"daily_segment_cap": 1}),
        # Credit floor, with each send's estimated segments.
        ((2, 2, 2), {"credit_floor": 5}, {"credits_remaining": 10}, [0, 1], {"credit_floor": 1}),
        ((2, 2), {"credit_floor": 5}, {"credits_remaining": 9}, [0, 1], {}),  # 9-2-2 = 5
        ((3, 1), {"credit_floor": 5}, {"credits_remaining": 7}, [1], {"credit_floor": 1}),
        ((2, 2), {}, {"credits_remaining": 3}, [0], {"credit_floor": 1}),  # floor 0
        ((2, 2), {"credit_floor": 100}, {"credits_remaining": None}, [0, 1], {}),  # unknown
    ],
)
def test_apply_caps(segments, run, today, kept, held):
    plan = caps_plan(*segments)
    ids = [s.lead.id for s in plan.sends]
    facts = {"sent_today": 0, "segments_today": 0, "credits_remaining": None} | today
    apply_caps(plan, params(**run), **facts)
    assert [s.lead.id for s in plan.sends] == [ids[i] for i in kept]
    assert plan.held == Counter(held)


def test_apply_caps_mixed_caps_in_send_order():
    plan = caps_plan(1, 4, 2, 1, 1, 1)
    apply_caps(
        plan,
        params(batch_size=3, daily_segment_cap=6),
        sent_today=0,
        segments_today=0,
        credits_remaining=None,
    )
    # Segments 1, 1+4=5, 5+2=7 > 6 held, 5+1=6; then the batch of 3 is full.
    assert [s.lead.id for s in plan.sends] == ["L0", "L1", "L3"]
    assert plan.held == Counter({"daily_segment_cap": 1, "batch_cap": 2})
    assert plan.messages == {
        "daily_segment_cap": ["lead L2: segment cap reached"],
        "batch_cap": ["lead L4: batch of 3 is full", "lead L5: batch of 3 is full"],
    }


@pytest.mark.parametrize(
    ("run", "facts", "expected"),
    [
        ({"batch_size": 0}, {}, "lead L0: batch of 0 is full"),
        ({"daily_cap": 0}, {}, "lead L0: 0 texts today"),
        ({"daily_segment_cap": 0}, {}, "lead L0: segment cap reached"),
        ({"credit_floor": 1}, {"credits_remaining": 1}, "lead L0: credits at the floor"),
    ],
)
def test_apply_caps_message_for_each_cap(run, facts, expected):
    plan = caps_plan(1)
    apply_caps(
        plan,
        params(**run),
        **({"sent_today": 0, "segments_today": 0, "credits_remaining": None} | facts),
    )
    assert plan.sends == []
    assert [m for kept in plan.messages.values() for m in kept] == [expected]
