"""Test data: leads and campaigns as an operator's base would hold them."""

from __future__ import annotations

from uysp.models import Lead, ProcessingStatus, Template
from uysp.ports import LeadStore

BODIES = {
    1: "Hi {Name}, it's Ana from UYSP. Want a free 15-min sales audit? {Link} Reply STOP to end",
    2: "{Name}, just following up on the audit: {Link}",
    3: "Last note from me, {Name}. The calendar is here if useful: {Link}",
}


def make_lead(n: int, area: str = "212", **fields) -> Lead:
    """A lead that every eligibility gate passes, numbered so phones are distinct."""
    defaults = {
        "phone": f"+1{area}555{n:04d}",
        "first_name": f"Lead{n}",
        "last_name": "Test",
        "email": f"lead{n}@example.com",
        "phone_valid": True,
        "location_country": "US",
        "processing_status": ProcessingStatus.READY,
    }
    return Lead(id="", **(defaults | fields))


def seed_campaign(
    store: LeadStore,
    campaign: str = "c1",
    *,
    variants: str = "AB",
    steps: tuple[int, ...] = (1, 2, 3),
    delay_days: float = 2,
    skip: set[tuple[str, int]] = frozenset(),
) -> None:
    store.update_settings(
        active_campaign=campaign,
        sms_sending="On",
        ab_ratio_a=50,
        calendly_url="https://calendly.com/uysp/audit",
        send_start_hour=8,
        send_end_hour=21,
        send_weekdays="Mon,Tue,Wed,Thu,Fri,Sat,Sun",
    )
    store.save_templates(
        Template(
            campaign=campaign,
            variant=variant,
            step=step,
            body=f"[{variant}] {BODIES[step]}",
            delay_days=0 if step == 1 else delay_days,
            fast_delay_minutes=0 if step == 1 else 30,
        )
        for variant in variants
        for step in steps
        if (variant, step) not in skip
    )
