"""How many SMS segments a text costs (3GPP TS 23.038 / 23.040)."""

from __future__ import annotations

from typing import Literal

# The GSM 7-bit default alphabet, in code order (0x1B, the escape to the extension table, left out).
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs an escape septet plus its own.
GSM7_EXTENDED: frozenset[str] = frozenset("\f^{}\\[~]|€")

_GSM7_SINGLE, _GSM7_MULTI = 160, 153  # septets: one segment, or each of a concatenated message
_UCS2_SINGLE, _UCS2_MULTI = 70, 67  # UTF-16 code units


def encoding(text: str) -> Literal["GSM-7", "UCS-2"]:
    return "GSM-7" if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text) else "UCS-2"


def _pack(sizes: list[int], single: int, multi: int) -> int:
    """Segments for characters of the given sizes; a character is never split across two."""
    if not sizes:
        return 0
    if sum(sizes) <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > multi:
            segments, used = segments + 1, 0
        used += size
    return segments


def segment_count(text: str) -> int:
    """Segments the text is sent as; 0 for the empty text."""
    if encoding(text) == "GSM-7":
        return _pack([2 if c in GSM7_EXTENDED else 1 for c in text], _GSM7_SINGLE, _GSM7_MULTI)
    return _pack([2 if ord(c) > 0xFFFF else 1 for c in text], _UCS2_SINGLE, _UCS2_MULTI)
