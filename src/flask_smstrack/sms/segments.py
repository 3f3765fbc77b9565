"""What a text message costs to send: its encoding and number of segments.

A message that fits the GSM 03.38 alphabet is sent in 7-bit units
(septets): 160 in a single message, 153 per segment once it is split, the
rest of each segment carrying the header that joins them. Characters of the
extension table (``^ { } \\ [ ~ ] | €`` and form feed) take two septets, and
an escape pair is never split between segments. One character outside the
alphabet, such as an emoji or a curly quote, switches the whole message to
UCS-2: 70 UTF-16 units in a single message, 67 per segment, with a
grapheme cluster never split: an emoji (a surrogate pair, or a ZWJ sequence,
a flag, a skin tone, a keycap) or a letter with its combining accents moves
whole to the next segment, as Twilio's segment calculator counts it.
"""
from __future__ import annotations

from dataclasses import dataclass

import regex

#: One extended grapheme cluster (Unicode's "user-perceived character").
_CLUSTER = regex.compile(r"\X")
#: Code points that can share a grapheme cluster with a neighbour (UAX #29:
#: CR before LF, Hangul jamo, combining marks and other extenders, ZWJ,
#: spacing marks, prepended marks, regional indicators). In a text without
#: any, every code point is a cluster of its own.
_JOINING = regex.compile(
    r"[\r\p{GCB=Extend}\p{GCB=ZWJ}\p{GCB=SpacingMark}\p{GCB=Prepend}\p{GCB=Regional_Indicator}"
    r"\p{GCB=L}\p{GCB=V}\p{GCB=T}]"
)

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
    """The units of each piece that must stay in one segment: a character
    with its escape (GSM-7), a grapheme cluster (UCS-2). A cluster longer
    than a segment is split between its code points, as it has to be."""
    if encoding == "GSM-7":
        return [2 if c in GSM_EXTENSION else 1 for c in text]
    if _JOINING.search(text) is None:
        return [2 if c > "\uffff" else 1 for c in text]
    sizes: list[int] = []
    for cluster in _CLUSTER.findall(text):
        if len(cluster) == 1:
            sizes.append(2 if cluster > "\uffff" else 1)
            continue
        size = _units(cluster, encoding)
        if size > PER_SEGMENT[encoding]:
            sizes.extend(2 if c > "\uffff" else 1 for c in cluster)
        else:
            sizes.append(size)
    return sizes


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
        if used + size > limit:  # an escape pair or grapheme cluster stays whole
            segments += 1
            used = 0
        used += size
    return SegmentInfo(encoding, len(text), units, segments)
