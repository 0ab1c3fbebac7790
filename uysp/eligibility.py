"""The original filter, as a gate that names why a lead is held back."""

from __future__ import annotations

from uysp.models import Lead, ProcessingStatus
from uysp.phones import NANP_REGIONS, InvalidPhone, region_of, to_e164

SENDABLE_STATUSES = frozenset({ProcessingStatus.READY, ProcessingStatus.IN_SEQUENCE})
_COUNTRY_NAMES = {
    "us": "US",
    "usa": "US",
    "united states": "US",
    "united states of america": "US",
    "ca": "CA",
    "can": "CA",
    "canada": "CA",
}


def country_code(location_country: str | None) -> str | None:
    """'United States', 'USA', 'Canada'... as ISO codes; None for blank or other countries."""
    if not location_country or not location_country.strip():
        return None
    return _COUNTRY_NAMES.get(location_country.strip().lower(), location_country.strip().upper())


def ineligibility(lead: Lead) -> tuple[str, str] | None:
    """(gate reason, message naming the lead and field), or None when the lead may be texted.

    A blank `Location Country` is read from the number itself: a valid +1 number in the US or
    Canada numbering plan counts as US/Canada (operators leave the column empty for most leads).
    """
    if not lead.phone_valid:
        return "phone_invalid", f"lead {lead.id}: Phone Valid is not checked"
    try:
        phone = to_e164(lead.phone)
    except InvalidPhone as exc:
        return "phone_invalid", f"lead {lead.id}: Phone {exc}"
    country = country_code(lead.location_country) or region_of(phone)
    if country not in NANP_REGIONS or region_of(phone) not in NANP_REGIONS:
        return "not_us_canada", f"lead {lead.id}: Location Country {lead.location_country!r}"
    if lead.sms_stop:
        return "stopped", f"lead {lead.id}: SMS Stop ({lead.stop_reason or 'no reason'})"
    if lead.booked:
        return "booked", f"lead {lead.id}: Booked"
    if lead.current_client:
        return "current_client", f"lead {lead.id}: Current Coaching Client"
    if (lead.hrq_status or "").strip().lower() == "archive":
        return "archived", f"lead {lead.id}: HRQ Status Archive"
    if lead.processing_status not in SENDABLE_STATUSES:
        return "status_not_ready", f"lead {lead.id}: Processing Status {lead.processing_status}"
    return None
