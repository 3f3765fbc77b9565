import pytest

from flask_smstrack.sms.segments import segment_info


@pytest.mark.parametrize(
    "text,encoding,units,segments",
    [
        ("", "GSM-7", 0, 0),
        ("Hello", "GSM-7", 5, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        # Extension characters take two septets.
        ("€" * 80, "GSM-7", 160, 1),
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 159 + "[", "GSM-7", 161, 2),
        # 152 septets, then an escape pair that would straddle: it moves whole.
        ("a" * 152 + "{" + "a" * 152, "GSM-7", 306, 3),
        ("Spring sale: 20% off, use code SPRING at https://go.example.com/s/AbC1234", "GSM-7", 73, 1),
        # One character outside GSM-7 makes the whole message UCS-2.
        ("a" * 70, "GSM-7", 70, 1),
        ("a" * 69 + "’", "UCS-2", 70, 1),
        ("a" * 70 + "’", "UCS-2", 71, 2),
        ("Ciao 👋", "UCS-2", 7, 1),
        ("😀" * 35, "UCS-2", 70, 1),
        ("😀" * 36, "UCS-2", 72, 2),
        # 66 units then an emoji (a surrogate pair) that would straddle.
        ("a" * 66 + "😀" + "a" * 66, "UCS-2", 134, 3),
        ("a" * 134, "GSM-7", 134, 1),
        ("ä" * 161, "GSM-7", 161, 2),
        ("ç", "UCS-2", 1, 1),  # only the capital Ç is in GSM-7
        # A grapheme cluster is never split either: one that would straddle
        # the 67th unit moves whole to the next segment.
        # A ZWJ sequence (family, 11 units): 60 + [11 + 56] + 4.
        ("a" * 60 + "👨‍👩‍👧‍👦" + "a" * 60, "UCS-2", 131, 3),
        # A flag (two regional indicators, 4 units): 65 + [4 + 63] + 2.
        ("a" * 65 + "🇫🇷" + "a" * 65, "UCS-2", 134, 3),
        # ... ending on the 67th unit, it stays: [63 + 4] + 67.
        ("a" * 63 + "🇫🇷" + "a" * 67, "UCS-2", 134, 2),
        # An emoji with a skin-tone modifier (4 units): 65 + [4 + 63] + 2.
        ("a" * 65 + "👍🏽" + "a" * 65, "UCS-2", 134, 3),
        # A keycap (1, U+FE0F, U+20E3: 3 units): 65 + [3 + 64] + 2.
        ("a" * 65 + "1️⃣" + "a" * 66, "UCS-2", 134, 3),
        # A letter with a combining accent (e, U+0301: 2 units): 66 + [2 + 65] + 1.
        ("a" * 66 + "e\u0301" + "a" * 66, "UCS-2", 134, 3),
        # ... with two accents (3 units): 65 + [3 + 64] + 2.
        ("a" * 65 + "e\u0301\u0308" + "a" * 66, "UCS-2", 134, 3),
        # Clusters in a single message: up to 70 units.
        ("👨‍👩‍👧‍👦" * 6 + "a" * 4, "UCS-2", 70, 1),
        # A cluster longer than a segment cannot stay whole: split between
        # its code points, 67 + 67 + 7.
        ("a" * 60 + "e" + "\u0301" * 80, "UCS-2", 141, 3),
    ],
)
def test_segments(text, encoding, units, segments):
    info = segment_info(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)


def test_preview_api(actions):
    key = actions.api_key()
    response = actions.api("POST", "/messages/preview", key, json={"text": "Hi {first_name} 👋 " + "x" * 60})
    assert response.status_code == 200
    assert response.json == {
        "encoding": "UCS-2", "characters": 78, "units": 79, "segments": 2, "per_segment": 67, "remaining": 55,
        "warnings": [
            "No opt-out instruction: add one such as “Reply STOP to opt out”, so recipients know how to stop your messages."
        ],
    }
    missing = actions.api("POST", "/messages/preview", key, json={})
    assert missing.status_code == 400 and "text" in missing.json["errors"]
    huge = actions.api("POST", "/messages/preview", key, json={"text": "x" * 1601})
    assert huge.status_code == 400 and "text" in huge.json["errors"]
