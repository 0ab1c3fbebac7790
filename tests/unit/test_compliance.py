"""The send window in the recipient's local time. Expected instants are worked out by hand:
July 2026 is EDT -4, CDT -5, MDT -6, PDT -7, NDT -2:30, HST -10 (no DST); 2026-07-15 is a
Wednesday; US/Canada DST starts 2026-03-08 07:00 UTC (2:00 EST) and ends 2026-11-01 06:00 UTC
(2:00 EDT)."""

from datetime import UTC, datetime, time, timedelta

import phonenumbers
import pytest
from phonenumbers.tzdata import TIMEZONE_DATA

from uysp.compliance import (
    US_CA_ZONE_NAMES,
    CampaignHours,
    candidate_zones,
    next_allowed_at,
    window_reason,
)
from uysp.models import CampaignSettings

NY = "+12125551234"  # "New York, NY": no state rule
FLORIDA = "+13055551234"  # "Florida"
MIAMI = "+13052345678"  # "Miami, FL"
OKLAHOMA = "+14055551234"
MARYLAND = "+14105551234"
WASHINGTON = "+12065551234"  # "Washington State"
TEXAS = "+12145551234"
LOUISIANA = "+15045551234"
TORONTO = "+14165551234"
VANCOUVER = "+16045551234"
IDAHO = "+12085551234"  # America/Boise and America/Los_Angeles
UNKNOWN = "+15555551234"  # Etc/Unknown
TOLL_FREE = "+18005551234"  # every NANP zone, Guam included, and no region
LONDON = "+442071234567"
GARBAGE = "not a phone"

FEDERAL = "outside_federal_hours"
STATE = "outside_state_hours"
DAYS = "outside_campaign_days"
HOURS = "outside_campaign_hours"

OPEN = CampaignHours(time(8), time(21), frozenset(range(7)))
WEEKDAYS_9_20 = CampaignHours(time(9), time(20), frozenset({0, 1, 2, 3, 4}))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("phone", "now", "hours", "expected"),
    [
        # Federal 8:00-21:00, New York Wednesday 2026-07-15, EDT.
        (NY, utc(2026, 7, 15, 11, 59), OPEN, FEDERAL),  # 07:59
        (NY, utc(2026, 7, 15, 12, 0), OPEN, None),  # 08:00
        (NY, utc(2026, 7, 15, 12, 59), OPEN, None),  # 08:59
        (NY, utc(2026, 7, 16, 0, 30), OPEN, None),  # 20:30
        (NY, utc(2026, 7, 16, 0, 59), OPEN, None),  # 20:59
        (NY, utc(2026, 7, 16, 1, 0), OPEN, FEDERAL),  # 21:00
        # State rules.
        (FLORIDA, utc(2026, 7, 15, 23, 59), OPEN, None),  # 19:59 EDT
        (FLORIDA, utc(2026, 7, 16, 0, 0), OPEN, STATE),  # 20:00 EDT
        (FLORIDA, utc(2026, 7, 16, 0, 30), OPEN, STATE),  # 20:30 EDT
        (MIAMI, utc(2026, 7, 16, 0, 30), OPEN, STATE),  # "Miami, FL" maps to Florida
        (MIAMI, utc(2026, 7, 15, 12, 0), OPEN, None),  # 08:00 EDT
        (OKLAHOMA, utc(2026, 7, 16, 0, 59), OPEN, None),  # 19:59 CDT
        (OKLAHOMA, utc(2026, 7, 16, 1, 0), OPEN, STATE),  # 20:00 CDT
        (OKLAHOMA, utc(2026, 7, 15, 12, 59), OPEN, FEDERAL),  # 07:59 CDT
        (MARYLAND, utc(2026, 7, 16, 0, 0), OPEN, STATE),  # 20:00 EDT
        (WASHINGTON, utc(2026, 7, 16, 2, 45), OPEN, None),  # 19:45 PDT
        (WASHINGTON, utc(2026, 7, 16, 3, 0), OPEN, STATE),  # 20:00 PDT
        # Texas 9:00-21:00 Mon-Sat, 12:00-21:00 Sunday; Sat 2026-07-18, Sun 2026-07-19, CDT.
        (TEXAS, utc(2026, 7, 18, 13, 30), OPEN, STATE),  # Sat 08:30
        (TEXAS, utc(2026, 7, 18, 15, 0), OPEN, None),  # Sat 10:00
        (TEXAS, utc(2026, 7, 19, 1, 59), OPEN, None),  # Sat 20:59
        (TEXAS, utc(2026, 7, 19, 15, 0), OPEN, STATE),  # Sun 10:00
        (TEXAS, utc(2026, 7, 19, 16, 59), OPEN, STATE),  # Sun 11:59
        (TEXAS, utc(2026, 7, 19, 17, 0), OPEN, None),  # Sun 12:00
        # Louisiana 8:00-20:00, never on Sunday.
        (LOUISIANA, utc(2026, 7, 18, 17, 0), OPEN, None),  # Sat 12:00
        (LOUISIANA, utc(2026, 7, 19, 1, 0), OPEN, STATE),  # Sat 20:00
        (LOUISIANA, utc(2026, 7, 19, 17, 0), OPEN, STATE),  # Sun 12:00
        # Canada: federal hours in the province's own zone, no provincial rule.
        (TORONTO, utc(2026, 7, 15, 11, 59), OPEN, FEDERAL),  # 07:59 EDT
        (TORONTO, utc(2026, 7, 15, 12, 0), OPEN, None),  # 08:00 EDT
        (TORONTO, utc(2026, 7, 16, 0, 30), OPEN, None),  # 20:30 EDT
        (VANCOUVER, utc(2026, 7, 15, 14, 59), OPEN, FEDERAL),  # 07:59 PDT
        (VANCOUVER, utc(2026, 7, 15, 15, 0), OPEN, None),  # 08:00 PDT
        (VANCOUVER, utc(2026, 7, 16, 3, 59), OPEN, None),  # 20:59 PDT
        (VANCOUVER, utc(2026, 7, 16, 4, 0), OPEN, FEDERAL),  # 21:00 PDT
        # Daylight saving: the same UTC clock time on either side of the change.
        (NY, utc(2026, 3, 7, 12, 30), OPEN, FEDERAL),  # Sat 07:30 EST
        (NY, utc(2026, 3, 8, 12, 30), OPEN, None),  # Sun 08:30 EDT, the day DST starts
        (NY, utc(2026, 3, 8, 1, 30), OPEN, None),  # Sat 7th 20:30 EST
        (NY, utc(2026, 3, 9, 1, 30), OPEN, FEDERAL),  # Sun 8th 21:30 EDT
        (NY, utc(2026, 10, 31, 12, 30), OPEN, None),  # Sat 08:30 EDT
        (NY, utc(2026, 11, 1, 12, 30), OPEN, FEDERAL),  # Sun 07:30 EST, the day DST ends
        (VANCOUVER, utc(2026, 10, 31, 15, 30), OPEN, None),  # 08:30 PDT
        (VANCOUVER, utc(2026, 11, 1, 15, 30), OPEN, FEDERAL),  # 07:30 PST
        # Idaho: Boise (MDT) and Los Angeles (PDT), both must be inside.
        (IDAHO, utc(2026, 7, 15, 14, 30), OPEN, FEDERAL),  # 08:30 Boise, 07:30 LA
        (IDAHO, utc(2026, 7, 15, 15, 0), OPEN, None),  # 09:00 Boise, 08:00 LA
        (IDAHO, utc(2026, 7, 16, 2, 30), OPEN, None),  # 20:30 Boise, 19:30 LA
        (IDAHO, utc(2026, 7, 16, 3, 0), OPEN, FEDERAL),  # 21:00 Boise
        # Unknown: every US/CA zone (Honolulu HST -10 .. St Johns NDT -2:30) and every
        # state rule (Texas starts 9:00, Florida ends 20:00, Louisiana not on Sunday).
        (UNKNOWN, utc(2026, 7, 15, 17, 30), OPEN, FEDERAL),  # Honolulu 07:30
        (UNKNOWN, utc(2026, 7, 15, 18, 30), OPEN, STATE),  # Honolulu 08:30
        (UNKNOWN, utc(2026, 7, 15, 19, 0), OPEN, None),  # Honolulu 09:00, St Johns 16:30
        (UNKNOWN, utc(2026, 7, 15, 22, 29), OPEN, None),  # St Johns 19:59
        (UNKNOWN, utc(2026, 7, 15, 22, 30), OPEN, STATE),  # St Johns 20:00
        (UNKNOWN, utc(2026, 7, 15, 23, 30), OPEN, FEDERAL),  # St Johns 21:00
        (UNKNOWN, utc(2026, 7, 19, 19, 0), OPEN, STATE),  # Sunday everywhere
        (TOLL_FREE, utc(2026, 7, 15, 19, 0), OPEN, None),  # Guam (03:00) is not considered
        (TOLL_FREE, utc(2026, 7, 15, 18, 30), OPEN, STATE),
        (LONDON, utc(2026, 7, 15, 12, 0), OPEN, FEDERAL),  # 13:00 London, 02:00 Honolulu
        (LONDON, utc(2026, 7, 15, 19, 0), OPEN, None),
        (GARBAGE, utc(2026, 7, 15, 17, 30), OPEN, FEDERAL),
        (GARBAGE, utc(2026, 7, 15, 19, 0), OPEN, None),
        # Campaign days and hours (Mon-Fri 9:00-20:00), in the recipient's local time.
        (NY, utc(2026, 7, 15, 12, 30), WEEKDAYS_9_20, HOURS),  # Wed 08:30
        (NY, utc(2026, 7, 15, 13, 0), WEEKDAYS_9_20, None),  # Wed 09:00
        (NY, utc(2026, 7, 15, 23, 59), WEEKDAYS_9_20, None),  # Wed 19:59
        (NY, utc(2026, 7, 16, 0, 0), WEEKDAYS_9_20, HOURS),  # Wed 20:00
        (NY, utc(2026, 7, 18, 16, 0), WEEKDAYS_9_20, DAYS),  # Sat 12:00
        (NY, utc(2026, 7, 18, 11, 0), WEEKDAYS_9_20, FEDERAL),  # Sat 07:00: federal first
        (FLORIDA, utc(2026, 7, 19, 0, 30), WEEKDAYS_9_20, STATE),  # Sat 20:30: state before days
        (VANCOUVER, utc(2026, 7, 18, 2, 0), WEEKDAYS_9_20, None),  # Fri 19:00 PDT, Sat in UTC
        (VANCOUVER, utc(2026, 7, 20, 2, 0), WEEKDAYS_9_20, DAYS),  # Sun 19:00 PDT, Mon in UTC
        (IDAHO, utc(2026, 7, 15, 15, 30), WEEKDAYS_9_20, HOURS),  # 09:30 Boise, 08:30 LA
        (IDAHO, utc(2026, 7, 15, 16, 0), WEEKDAYS_9_20, None),  # 10:00 Boise, 09:00 LA
    ],
)
def test_window_reason(phone, now, hours, expected):
    assert window_reason(phone, now, hours) == expected


def test_window_reason_accepts_any_aware_instant():
    from zoneinfo import ZoneInfo

    now = datetime(2026, 7, 15, 8, 30, tzinfo=ZoneInfo("America/New_York"))
    assert window_reason(NY, now, WEEKDAYS_9_20) == HOURS
    with pytest.raises(ValueError, match="timezone-aware"):
        window_reason(NY, now.replace(tzinfo=None), WEEKDAYS_9_20)


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        (NY, {"America/New_York"}),
        (TORONTO, {"America/Toronto"}),
        (IDAHO, {"America/Boise", "America/Los_Angeles"}),
        (UNKNOWN, set(US_CA_ZONE_NAMES)),
        (TOLL_FREE, set(US_CA_ZONE_NAMES)),
        (LONDON, set(US_CA_ZONE_NAMES)),
        (GARBAGE, set(US_CA_ZONE_NAMES)),
    ],
)
def test_candidate_zones(phone, expected):
    assert {z.key for z in candidate_zones(phone)} == expected


def test_us_ca_zones_span_honolulu_to_st_johns():
    assert len(US_CA_ZONE_NAMES) == 20
    assert {"Pacific/Honolulu", "America/St_Johns"} <= set(US_CA_ZONE_NAMES)
    assert not {"Pacific/Guam", "Pacific/Pago_Pago", "Etc/Unknown"} & set(US_CA_ZONE_NAMES)


def test_us_ca_zones_cover_phonenumbers_data():
    """Every zone phonenumbers gives a geographic US or Canadian prefix is in the fixed list."""
    missing = set()
    for prefix, zones in TIMEZONE_DATA.items():
        if not prefix.startswith("1") or len(prefix) < 4:
            continue
        probe = phonenumbers.parse(f"+1{prefix[1:4]}2345678")
        if phonenumbers.region_code_for_number(probe) not in ("US", "CA"):
            continue
        if phonenumbers.is_number_geographical(probe):
            missing |= set(zones) - set(US_CA_ZONE_NAMES)
    assert not missing


@pytest.mark.parametrize(
    ("phone", "now", "hours", "horizon", "expected"),
    [
        (NY, utc(2026, 7, 15, 13, 7, 31), WEEKDAYS_9_20, 8, utc(2026, 7, 15, 13, 7, 31)),
        (NY, utc(2026, 7, 15, 10, 0), WEEKDAYS_9_20, 8, utc(2026, 7, 15, 13, 0)),  # 06:00
        (NY, utc(2026, 7, 15, 10, 7, 23), WEEKDAYS_9_20, 8, utc(2026, 7, 15, 13, 0)),
        (NY, utc(2026, 7, 18, 16, 0), WEEKDAYS_9_20, 8, utc(2026, 7, 20, 13, 0)),  # Sat -> Mon
        (NY, utc(2026, 7, 18, 16, 0), WEEKDAYS_9_20, 1, None),
        (FLORIDA, utc(2026, 7, 16, 0, 30), OPEN, 8, utc(2026, 7, 16, 12, 0)),  # 20:30 -> 08:00
        (TEXAS, utc(2026, 7, 19, 15, 0), OPEN, 8, utc(2026, 7, 19, 17, 0)),  # Sun 10 -> 12
        (LOUISIANA, utc(2026, 7, 19, 17, 0), OPEN, 8, utc(2026, 7, 20, 13, 0)),  # Sun -> Mon 8
        (IDAHO, utc(2026, 7, 15, 14, 10), WEEKDAYS_9_20, 8, utc(2026, 7, 15, 16, 0)),  # LA 9:00
        (UNKNOWN, utc(2026, 7, 15, 17, 0), OPEN, 8, utc(2026, 7, 15, 19, 0)),  # Honolulu 9:00
        (NY, utc(2026, 3, 7, 12, 0), OPEN, 8, utc(2026, 3, 7, 13, 0)),  # 08:00 EST
        (NY, utc(2026, 3, 8, 11, 30), OPEN, 8, utc(2026, 3, 8, 12, 0)),  # 08:00 EDT
        (NY, utc(2026, 11, 1, 11, 30), OPEN, 8, utc(2026, 11, 1, 13, 0)),  # 08:00 EST
    ],
)
def test_next_allowed_at(phone, now, hours, horizon, expected):
    found = next_allowed_at(phone, now, hours, horizon_days=horizon)
    assert found == expected
    if found is not None:
        assert window_reason(phone, found, hours) is None
    if found is not None and found > now:
        assert window_reason(phone, found - timedelta(minutes=1), hours) is not None


def _settings(start=9, end=20, weekdays="Mon,Tue,Wed,Thu,Fri") -> CampaignSettings:
    return CampaignSettings(send_start_hour=start, send_end_hour=end, send_weekdays=weekdays)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (CampaignSettings(), CampaignHours(time(9), time(20), frozenset({0, 1, 2, 3, 4}))),
        (_settings(8, 21, "Sat,Sun"), CampaignHours(time(8), time(21), frozenset({5, 6}))),
        (
            _settings(weekdays="mon, WED ,friday"),
            CampaignHours(time(9), time(20), frozenset({0, 2, 4})),
        ),
        (_settings(weekdays="Tues,Thurs,"), CampaignHours(time(9), time(20), frozenset({1, 3}))),
        (_settings(0, 24, "SUNDAY"), CampaignHours(time(0), time.max, frozenset({6}))),
    ],
)
def test_campaign_hours_from_settings(settings, expected):
    assert CampaignHours.from_settings(settings) == expected


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (_settings(weekdays="Mon,Funday"), "Send Weekdays"),
        (_settings(weekdays="M,T"), "Send Weekdays"),
        (_settings(weekdays="Mon-Fri"), "Send Weekdays"),
        (_settings(weekdays=""), "Send Weekdays"),
        (_settings(weekdays=" , "), "Send Weekdays"),
        (_settings(start=20, end=9), "Send End Hour"),
        (_settings(start=9, end=9), "Send End Hour"),
        (_settings(start=9, end=25), "Send End Hour"),
        (_settings(start=-1), "Send Start Hour"),
    ],
)
def test_campaign_hours_from_settings_rejects_junk(settings, field):
    with pytest.raises(ValueError, match=field):
        CampaignHours.from_settings(settings)
