"""E.164 normalisation, the region a number belongs to, and the last-4 mask for logs."""

import pytest

from uysp.phones import NANP_REGIONS, InvalidPhone, mask, region_of, to_e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+12125551234", "+12125551234"),
        ("(212) 555-1234", "+12125551234"),
        ("212.555.1234", "+12125551234"),
        ("212 555 1234", "+12125551234"),
        ("2125551234", "+12125551234"),  # national form, US by default
        ("12125551234", "+12125551234"),  # trunk prefix 1 without the plus
        ("+1 212 555 1234", "+12125551234"),
        ("  +1 (416) 555-1234  ", "+14165551234"),  # Toronto, surrounding blanks
        ("+44 20 7123 4567", "+442071234567"),  # London: valid, just not North American
    ],
)
def test_to_e164_normalises(raw, expected):
    assert to_e164(raw) == expected


@pytest.mark.parametrize(
    ("raw", "default_region", "expected"),
    [
        ("020 7123 4567", "GB", "+442071234567"),
        ("(416) 555-1234", "CA", "+14165551234"),
    ],
)
def test_to_e164_default_region_reads_national_numbers(raw, default_region, expected):
    assert to_e164(raw, default_region) == expected


@pytest.mark.parametrize(
    ("raw", "message_part"),
    [
        (None, "blank"),
        ("", "blank"),
        ("   ", "blank"),
        ("not a phone", "'not a phone' is not a phone number"),
        ("123", "'123' is not a valid number"),
        ("+1 212 555 123", "'+1 212 555 123' is not a valid number"),  # one digit short
        ("+15555551234", "'+15555551234' is not a valid number"),  # 555 is no area code
    ],
)
def test_to_e164_rejects(raw, message_part):
    with pytest.raises(InvalidPhone) as caught:
        to_e164(raw)
    assert message_part in str(caught.value)


def test_invalid_phone_is_a_value_error():
    assert issubclass(InvalidPhone, ValueError)


@pytest.mark.parametrize(
    ("e164", "expected"),
    [
        ("+12125551234", "US"),  # New York
        ("+13105551234", "US"),  # Los Angeles
        ("+18085551234", "US"),  # Honolulu
        ("+14165551234", "CA"),  # Toronto
        ("+16045551234", "CA"),  # Vancouver
        ("+18765551234", "JM"),  # Jamaica: +1, but not the US or Canada
        ("+442071234567", "GB"),
        ("not a phone", None),
        ("", None),
    ],
)
def test_region_of(e164, expected):
    assert region_of(e164) == expected


def test_nanp_regions_are_us_and_canada_only():
    assert frozenset({"US", "CA"}) == NANP_REGIONS


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+12125551234", "***1234"),
        ("(212) 555-9876", "***9876"),
        ("+442071234567", "***4567"),
        ("12", "***12"),  # fewer than four digits: all of them, still masked
        ("abc", "***"),
        ("", "***"),
        (None, "***"),
    ],
)
def test_mask_keeps_only_the_last_four_digits(phone, expected):
    assert mask(phone) == expected
