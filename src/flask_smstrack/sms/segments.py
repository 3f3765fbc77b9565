"""What a text message costs to send: its encoding and number of segments.

A message that fits the GSM 03.38 alphabet is sent in 7-bit units
(septets): 160 in a single message, 153 per segment once it is split, the
rest of each segment carrying the header that joins them. Characters of the
extension table (``^ { } \\ [ ~ ] | €`` and form feed) take two septets, and
an escape pair is never split between segments. One character outside the
alphabet, such as an emoji or a curly quote, switches the whole message to
UCS-2: 70 UTF-16 units in a single message, 67 per segment, with a
surrogate pair (most emoji) never split.
"""
from __future__ import annotations

from dataclasses import dataclass

#: The GSM 03.38 default alphabet (one septet each).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The extension table, reached through an escape (two septets each).
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
PER_SEGMENT = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str
    #: Characters as people count them (Unicode code points).
    characters: int
    #: Septets (GSM-7) or UTF-16 code units (UCS-2).
    units: int
    segments: int

    @property
    def per_segment(self) -> int:
        return SINGLE[self.encoding] if self.segments <= 1 else PER_SEGMENT[self.encoding]

    @property
    def remaining(self) -> int:
        """Units left in the last segment before another one is needed."""
        return self.segments * self.per_segment - self.units if self.segments else SINGLE[self.encoding]


_GSM = GSM_BASIC | GSM_EXTENSION


def encoding_of(text: str) -> str:
    return "GSM-7" if _GSM.issuperset(text) else "UCS-2"


def _units(text: str, encoding: str) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) of ``text``."""
    if encoding == "GSM-7":
        return len(text) + sum(text.count(c) for c in GSM_EXTENSION)
    return len(text.encode("utf-16-le")) // 2


def _unit_sizes(text: str, encoding: str) -> list[int]:
    """How many units each character takes; a character is never split."""
    if encoding == "GSM-7":
        return [2 if c in GSM_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def segment_info(text: str) -> SegmentInfo:
    """The encoding and segment count of ``text``."""
    encoding = encoding_of(text)
    units = _units(text, encoding)
    if units == 0:
        return SegmentInfo(encoding, 0, 0, 0)
    if units <= SINGLE[encoding]:
        return SegmentInfo(encoding, len(text), units, 1)
    limit, segments, used = PER_SEGMENT[encoding], 1, 0
    for size in _unit_sizes(text, encoding):
        if used + size > limit:  # an escape pair or surrogate pair stays whole
            segments += 1
            used = 0
        used += size
    return SegmentInfo(encoding, len(text), units, segments)
