"""How long a text takes to speak, estimated before it is sent: a speech longer than a voice
message can be is refused before the provider bills it, not after.

The estimate reads the text as a speaker would: ElevenLabs' own rule of thumb is about a
thousand characters a minute of audio (its help centre: "10,000 characters (~10 minutes of
audio)"), which is prose in an alphabetic script, spaces and punctuation included. A script
whose characters are syllables is slower per character: a Chinese character (Han) is one
spoken syllable, about four or five a second; a Hangul block one syllable too; a kana one mora,
of which Japanese speaks seven or eight a second. Those characters weigh what they take to say,
measured in alphabetic characters. The voice's speed divides it (0.7 lasts 1/0.7 as long).

The text is read in its composed form (NFC) first: Korean typed or pasted decomposed (NFD)
spells each syllable as two or three jamo, which would otherwise weigh three times a syllable.
A digit weighs what it takes to say: numbers are read as words ("1,234,567" is "one million two
hundred thirty-four thousand…"), about four letters a digit.

It is an estimate: voices differ, and symbols may be spoken longer than they are written. So
only a speech estimated clearly over the cap (`CLEARLY_OVER`) is refused; one near it is made,
and the check of the audio itself (voice.py) stays the backstop.

When it can fire: a voice message lasts at most 40 minutes, about 40,000 alphabetic characters
at speed 1, so with gateway's default `voice_max_characters` (2,000 characters spoken at most)
even 2,000 Han characters or digits (7,000 or 8,000 weighted) stay under the refusal at the
slowest speed a provider takes (OpenAI's 0.25: ~32 minutes). The check can refuse something
only with an operator's cap raised towards MAX_SPEECH_CHARS (10,000) and a slow voice, mostly
for text in a syllabic script or numbers.
"""

from __future__ import annotations

import re
import unicodedata

CHARACTERS_PER_SECOND = 1000 / 60
"""Alphabetic characters (spaces and punctuation included) spoken a second at speed 1."""
CLEARLY_OVER = 1.15
"""A speech is refused before it is made only when estimated this many times the cap."""
_WEIGHTS = (
    (re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"), 3.5),  # Han
    (re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]"), 3.0),  # Hangul
    (re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9d]"), 2.0),  # Hiragana, Katakana
    (re.compile(r"\d"), 4.0),  # a digit of any script: read as a number word
)
_SPACES = re.compile(r"\s+")


def spoken_characters(text: str) -> float:
    """The text's length as alphabetic characters spoken (a run of white space is one), in
    its composed form (NFC)."""
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", text).strip())
    weighted = float(len(text))
    for script, weight in _WEIGHTS:
        weighted += (weight - 1.0) * len(script.findall(text))
    return weighted


def estimated_seconds(text: str, speed: float | None) -> float:
    """About how long `text` lasts spoken at `speed` (None: the provider's default, 1)."""
    factor = speed if speed is not None and speed > 0 else 1.0
    return spoken_characters(text) / CHARACTERS_PER_SECOND / factor


def clearly_longer_than(text: str, speed: float | None, max_seconds: float) -> float | None:
    """The estimated seconds when they are clearly over `max_seconds`; None otherwise."""
    seconds = estimated_seconds(text, speed)
    return seconds if seconds > max_seconds * CLEARLY_OVER else None
