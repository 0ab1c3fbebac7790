"""The legal send window, evaluated in the recipient's local time.

The time zone comes from the number. When a number has several candidate zones, or none is
known, sending is allowed only when every candidate zone is inside every window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import geocoder, timezone

if TYPE_CHECKING:
    from uysp.models import CampaignSettings

Window = tuple[time, time]  # local [start, end)

FEDERAL: Window = (time(8), time(21))  # TCPA


@dataclass(frozen=True)
class StateWindow:
    """A stricter regional window: a default, with per-weekday overrides (None: no texting)."""

    start: time
    end: time
    overrides: Mapping[int, Window | None] = field(default_factory=lambda: MappingProxyType({}))

    def for_weekday(self, weekday: int) -> Window | None:
        return self.overrides.get(weekday, (self.start, self.end))


_SUNDAY = 6

# Keyed by region name exactly as phonenumbers' geocoder spells it.
STATE_WINDOWS: dict[str, StateWindow] = {
    "Florida": StateWindow(time(8), time(20)),
    "Oklahoma": StateWindow(time(8), time(20)),
    "Maryland": StateWindow(time(8), time(20)),
    "Washington State": StateWindow(time(8), time(20)),
    "Texas": StateWindow(time(9), time(21), MappingProxyType({_SUNDAY: (time(12), time(21))})),
    "Louisiana": StateWindow(time(8), time(20), MappingProxyType({_SUNDAY: None})),
}

# The geocoder describes some prefixes as "City, XX"; XX names the state or province.
# fmt: off
_REGION_CODES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "Washington D.C.",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington State", "WV": "West Virginia", "WI": "Wisconsin",
    "WY": "Wyoming", "AB": "Alberta", "BC": "British Columbia", "MB": "Manitoba",
    "NB": "New Brunswick", "NL": "Newfoundland and Labrador", "ON": "Ontario", "QC": "Quebec",
    "SK": "Saskatchewan", "NS": "Nova Scotia/Prince Edward Island",
    "PE": "Nova Scotia/Prince Edward Island", "NT": "Northwest Territories/Nunavut/Yukon",
    "NU": "Northwest Territories/Nunavut/Yukon", "YT": "Northwest Territories/Nunavut/Yukon",
}
# fmt: on

# Every zone phonenumbers assigns to a geographic US or Canadian prefix, Pacific/Honolulu
# through America/St_Johns (tests check this against phonenumbers' data).
US_CA_ZONE_NAMES = (
    "Pacific/Honolulu", "America/Adak", "America/Anchorage", "America/Juneau",
    "America/Los_Angeles", "America/Vancouver", "America/Fort_Nelson", "America/Boise",
    "America/Phoenix", "America/Denver", "America/Edmonton", "America/Chicago",
    "America/North_Dakota/Center", "America/Winnipeg", "America/Regina", "America/New_York",
    "America/Toronto", "America/Puerto_Rico", "America/Halifax", "America/St_Johns",
)  # fmt: skip
_US_CA_ZONES = tuple(ZoneInfo(name) for name in US_CA_ZONE_NAMES)

_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class CampaignHours:
    """The campaign's own sending hours, in the recipient's local time."""

    start: time  # inclusive
    end: time  # exclusive
    weekdays: frozenset[int]  # 0=Monday .. 6=Sunday

    @classmethod
    def from_settings(cls, settings: CampaignSettings) -> CampaignHours:
        start, end = settings.send_start_hour, settings.send_end_hour
        if not 0 <= start <= 23:
            raise ValueError(f"Send Start Hour must be 0-23, got {start!r}")
        if not start < end <= 24:
            raise ValueError(f"Send End Hour must be after Send Start Hour and <= 24, got {end!r}")
        return cls(
            start=time(start),
            end=time.max if end == 24 else time(end),
            weekdays=_parse_weekdays(settings.send_weekdays),
        )


def _parse_weekdays(text: str) -> frozenset[int]:
    """Weekday numbers (0=Monday) from "Mon,Tue,...": any case, full names or 3+ letters."""
    days = set()
    for token in filter(None, (t.strip().lower() for t in text.split(","))):
        day = next((i for i, d in enumerate(_DAY_NAMES) if d.startswith(token)), None)
        if day is None or len(token) < 3:
            raise ValueError(f"Send Weekdays: unknown day {token!r} in {text!r}")
        days.add(day)
    if not days:
        raise ValueError(f"Send Weekdays names no day: {text!r}")
    return frozenset(days)


def _parse(phone_e164: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(phone_e164, None)
    except phonenumbers.NumberParseException:
        return None


def _resolve(phone_e164: str) -> tuple[tuple[ZoneInfo, ...], tuple[StateWindow, ...]]:
    """The number's candidate zones and the regional rules that apply to it.

    Unknown means anywhere in the US or Canada: all zones and all regional rules.
    """
    number = _parse(phone_e164)
    if number is None:
        return _US_CA_ZONES, tuple(STATE_WINDOWS.values())
    # Etc/Unknown, non-NANP numbers, and NANP-wide non-geographic numbers (toll-free, 5XX,
    # which phonenumbers maps to every NANP zone, Guam included) all narrow to US/CA.
    names = [n for n in timezone.time_zones_for_number(number) if n in US_CA_ZONE_NAMES]
    region = geocoder.description_for_number(number, "en")
    if ", " in region:  # "Miami, FL"
        region = _REGION_CODES.get(region.rsplit(", ", 1)[1], region)
    if not names or not region:
        rules = tuple(STATE_WINDOWS.values())
    else:
        rules = (STATE_WINDOWS[region],) if region in STATE_WINDOWS else ()
    return (tuple(ZoneInfo(n) for n in names) or _US_CA_ZONES), rules


def candidate_zones(phone_e164: str) -> tuple[ZoneInfo, ...]:
    """The zones the number can be in; all US/Canadian zones when that is unknown."""
    return _resolve(phone_e164)[0]


def _inside(local: datetime, window: Window | None) -> bool:
    return window is not None and window[0] <= local.time() < window[1]


def _reason(
    zones: tuple[ZoneInfo, ...], rules: tuple[StateWindow, ...], now: datetime, hours: CampaignHours
) -> str | None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    locals_ = [now.astimezone(zone) for zone in zones]
    if not all(_inside(t, FEDERAL) for t in locals_):
        return "outside_federal_hours"
    if not all(_inside(t, rule.for_weekday(t.weekday())) for t in locals_ for rule in rules):
        return "outside_state_hours"
    if not all(t.weekday() in hours.weekdays for t in locals_):
        return "outside_campaign_days"
    if not all(_inside(t, (hours.start, hours.end)) for t in locals_):
        return "outside_campaign_hours"
    return None


def window_reason(phone_e164: str, now: datetime, hours: CampaignHours) -> str | None:
    """None if the number may be texted at `now`, else why not."""
    return _reason(*_resolve(phone_e164), now, hours)


def next_allowed_at(
    phone_e164: str, now: datetime, hours: CampaignHours, *, horizon_days: int = 8
) -> datetime | None:
    """The earliest instant >= now when the number may be texted, within the horizon."""
    zones, rules = _resolve(phone_e164)
    if _reason(zones, rules, now, hours) is None:
        return now
    # Every window edge is a whole local hour and every US/CA UTC offset is a multiple of
    # 30 minutes, so the answer always falls on a quarter hour of UTC.
    step = timedelta(minutes=15)
    now = now.astimezone(UTC)
    candidate = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0)
    if candidate < now:
        candidate += step
    end = now + timedelta(days=horizon_days)
    while candidate <= end:
        if _reason(zones, rules, candidate, hours) is None:
            return candidate
        candidate += step
    return None
