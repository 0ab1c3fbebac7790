"""SMS segment counts: GSM-7 160/153 septets, UCS-2 70/67 UTF-16 units."""

import pytest

from uysp.segments import GSM7_BASIC, GSM7_EXTENDED, encoding, segment_count

EMOJI = "😀"  # outside the BMP: a surrogate pair, 2 UTF-16 units


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("a" * 459, 3),
        ("a" * 460, 4),
        # Extension characters cost 2 septets.
        ("a" * 158 + "€", 1),
        ("a" * 159 + "€", 2),
        ("{}" * 40, 1),  # 160 septets
        ("{}" * 40 + "a", 2),
        # 152 + 2 would straddle the 153-septet boundary, so € starts segment 2 (2 + 151),
        # leaving one "a" for segment 3 although 306 septets would fit 2 segments.
        ("a" * 152 + "€" + "a" * 152, 3),
        ("a" * 151 + "€" + "a" * 153, 2),
        # UCS-2.
        ("ê" + "a" * 69, 1),
        ("ê" + "a" * 70, 2),
        (EMOJI * 35, 1),  # 70 units
        (EMOJI * 35 + "a", 2),  # 71 units
        ("a" * 69 + EMOJI, 2),  # 71 units, though 70 characters
        ("ê" * 134, 2),
        ("ê" * 135, 3),
        # 66 units, then the pair does not fit in 67 and opens segment 2 (2 + 65 = 67),
        # leaving one unit for segment 3 although 134 units would fit 2 segments.
        ("ê" + "a" * 65 + EMOJI + "a" * 66, 3),
        ("ê" + "a" * 64 + EMOJI + "a" * 67, 2),
    ],
)
def test_segment_count(text, expected):
    assert segment_count(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "GSM-7"),
        ("Hi Ana, book here: https://x.co/a?b=1&c=2 #1 @home $5 £3 ¥9 ¤", "GSM-7"),
        ("éèùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉÄÖÑÜ§¿äöñüà¡", "GSM-7"),
        ("^{}\\[~]|€\f", "GSM-7"),
        ("line\nbreak\r", "GSM-7"),
        ("ê", "UCS-2"),
        ("ç", "UCS-2"),  # only capital Ç is in the default alphabet
        ("it\u2019s", "UCS-2"),  # curly apostrophe
        ("\u201cquoted\u201d", "UCS-2"),
        ("Hi " + EMOJI, "UCS-2"),
        ("\x1b", "UCS-2"),  # the escape code itself is not a character
        ("`", "UCS-2"),
    ],
)
def test_encoding(text, expected):
    assert encoding(text) == expected


def test_alphabet_sizes():
    assert len(GSM7_BASIC) == 127  # 128 code points less the escape
    assert len(GSM7_EXTENDED) == 10
    assert not GSM7_BASIC & GSM7_EXTENDED
