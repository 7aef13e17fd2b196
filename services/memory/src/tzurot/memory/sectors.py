"""The five OpenMemory sectors, their daily decay rates, and a deterministic classifier.

Classification is keyword rules only (no model call): each sector has weighted patterns,
the highest total wins, and text no rule matches is semantic (a plain fact).
"""

from __future__ import annotations

import re
from enum import StrEnum


class Sector(StrEnum):
    EPISODIC = "episodic"
    SEMANTIC = "semantic"
    PROCEDURAL = "procedural"
    EMOTIONAL = "emotional"
    REFLECTIVE = "reflective"


DECAY_PER_DAY: dict[Sector, float] = {
    Sector.EPISODIC: 0.015,
    Sector.SEMANTIC: 0.005,
    Sector.PROCEDURAL: 0.008,
    Sector.EMOTIONAL: 0.020,
    Sector.REFLECTIVE: 0.001,
}
"""Salience falls by e^(-rate * days) since the memory was last accessed."""


def _patterns(*sources: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(source, re.IGNORECASE) for source in sources)


# (sector weight, patterns): from OpenMemory's hsg.ts sector_configs, extended a little.
_RULES: dict[Sector, tuple[float, tuple[re.Pattern[str], ...]]] = {
    Sector.EPISODIC: (
        1.2,
        _patterns(
            r"\b(today|yesterday|tonight|last\s+(week|month|year|night)|remember\s+when|that\s+time)\b",
            r"\bI\s+(did|went|saw|met|felt|visited|bought|got|had|made|started|finished)\b",
            r"\b(at\s+\d{1,2}:\d{2}|on\s+\w+day|in\s+\d{4}|ago)\b",
            r"\b(happened|occurred|experience|event|moment|trip|party|weekend)\b",
        ),
    ),
    Sector.SEMANTIC: (
        1.0,
        _patterns(
            r"\b(define|definition|meaning|concept|theory)\b",
            r"\b(what\s+is|how\s+does|why\s+do|facts?\s+about)\b",
            r"\b(principle|rule|law|algorithm|method)\b",
            r"\b(knowledge|information|data|research|study)\b",
        ),
    ),
    Sector.PROCEDURAL: (
        1.1,
        _patterns(
            r"\b(how\s+to|step\s+by\s+step|procedure|process)\b",
            r"\b(first|then|next|finally|afterwards)\b",
            r"\b(install|configure|setup|set\s+up|run|execute)\b",
            r"\b(tutorial|guide|instructions|manual|recipe)\b",
            r"\b(click|press|type|enter|select)\b",
        ),
    ),
    Sector.EMOTIONAL: (
        1.3,
        _patterns(
            r"\b(feel|feeling|felt|emotion|mood)\b",
            r"\b(happy|sad|angry|excited|worried|anxious|calm|lonely|scared|proud)\b",
            r"\b(love|hate|enjoy|dislike|fear)\b",
            r"\b(amazing|terrible|wonderful|awful|fantastic|horrible)\b",
            r"[!?]{2,}",
        ),
    ),
    Sector.REFLECTIVE: (
        0.8,
        _patterns(
            r"\b(think|thinking|thought|reflect|reflection)\b",
            r"\b(realize|realise|understand|insight|conclusion|lesson)\b",
            r"\b(purpose|significance|impact)\b",
            r"\b(philosophy|wisdom|belief|value)\b",
            r"\b(should\s+have|could\s+have|if\s+only|what\s+if)\b",
        ),
    ),
}


def sector_scores(text: str) -> dict[Sector, float]:
    """Each sector's rule score: matches * the sector's weight."""
    return {
        sector: weight * sum(len(pattern.findall(text)) for pattern in patterns)
        for sector, (weight, patterns) in _RULES.items()
    }


def classify(text: str) -> Sector:
    """The sector whose rules score highest; ties go to the earlier sector, none to semantic."""
    scores = sector_scores(text)
    best = max(scores, key=lambda sector: scores[sector])
    return best if scores[best] > 0 else Sector.SEMANTIC
