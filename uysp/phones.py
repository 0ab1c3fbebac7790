"""Phone numbers: E.164 normalisation and the last-4 mask used in every log line."""

from __future__ import annotations

import phonenumbers

NANP_REGIONS = frozenset({"US", "CA"})


class InvalidPhone(ValueError):
    pass


def to_e164(raw: str | None, default_region: str = "US") -> str:
    """'(555) 123-4567', '+1 555 123 4567' and '5551234567' all become '+15551234567'."""
    if raw is None or not str(raw).strip():
        raise InvalidPhone("blank")
    try:
        number = phonenumbers.parse(str(raw), default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{raw!r} is not a phone number ({exc})") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"{raw!r} is not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def region_of(e164: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return None


def mask(phone: str | None) -> str:
    """Only the last four digits ever reach a log or a Slack message."""
    digits = "".join(c for c in str(phone or "") if c.isdigit())
    return f"***{digits[-4:]}" if digits else "***"
