"""Deterministic reflection: clusters of related episodic memories, summarised extractively.

No model call. Clustering is greedy over cosine similarity (a memory joins the first
cluster whose seed it is close enough to); a summary keeps the best-ranked sentences of
the cluster, ranked by content the way OpenMemory's extract_essence does: dates,
quantities, named entities, actions, questions, the first person, brevity.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_MONTH_DATE = re.compile(
    r"\b(january|february|march|april|may|june|july|august|september|october|november|"
    r"december)\s+\d{1,2}\b|\b\d{1,2}\s+(january|february|march|april|may|june|july|"
    r"august|september|october|november|december)\b|\b\d{4}-\d{2}-\d{2}\b",
    re.IGNORECASE,
)
_QUANTITY = re.compile(r"\$\d+|\b\d+\s*(miles|dollars|years|months|weeks|days|km|hours)\b")
_NAMED_ENTITY = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")
_ACTION = re.compile(
    r"\b(bought|purchased|visited|went|got|received|paid|earned|learned|discovered|found|saw|"
    r"met|completed|finished|started|adopted|moved|joined|painted|won|lost|made)\b",
    re.IGNORECASE,
)
_QUESTION = re.compile(r"\b(who|what|when|where|why|how)\b", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"\b(I|my|me|we|our)\b")
_SPEAKER = re.compile(r"^[^:\n]{1,40}:\s+")


def sentences(text: str) -> list[str]:
    """The text's sentences (a leading "Name: " speaker label is dropped), 3+ words each."""
    found = []
    for part in _SENTENCE_END.split(_SPEAKER.sub("", text.strip())):
        sentence = part.strip()
        if len(sentence.split()) >= 3:
            found.append(sentence)
    return found


def sentence_score(sentence: str) -> float:
    score = 0.0
    if _MONTH_DATE.search(sentence):
        score += 5
    if _QUANTITY.search(sentence):
        score += 4
    if _ACTION.search(sentence):
        score += 4
    if _NAMED_ENTITY.search(sentence):
        score += 3
    if _QUESTION.search(sentence):
        score += 2
    if len(sentence) < 80:
        score += 2
    if _FIRST_PERSON.search(sentence):
        score += 1
    return score


def summarise(texts: Sequence[str], max_chars: int = 400) -> str:
    """The best sentences of `texts`, in their original order, within `max_chars`.

    Ties keep the earlier sentence; repeated sentences count once.
    """
    candidates: list[tuple[float, int, str]] = []
    seen: set[str] = set()
    for sentence in (s for text in texts for s in sentences(text)):
        key = sentence.lower()
        if key in seen:
            continue
        seen.add(key)
        candidates.append((sentence_score(sentence), len(candidates), sentence))
    chosen: list[tuple[int, str]] = []
    used = 0
    for _score, order, sentence in sorted(candidates, key=lambda c: (-c[0], c[1])):
        cost = len(sentence) + (1 if chosen else 0)
        if used + cost > max_chars:
            continue
        chosen.append((order, sentence))
        used += cost
    return " ".join(sentence for _order, sentence in sorted(chosen))


def clusters(vectors: npt.NDArray[np.float32], threshold: float, min_size: int) -> list[list[int]]:
    """Greedy clusters of row indices: each row joins the first seed it is ≥ threshold to.

    Rows are unit vectors (cosine = dot product). Only clusters of `min_size`+ are returned.
    """
    if len(vectors) == 0:
        return []
    similarity = vectors @ vectors.T
    assigned = np.zeros(len(vectors), dtype=bool)
    found: list[list[int]] = []
    for seed in range(len(vectors)):
        if assigned[seed]:
            continue
        members = [int(i) for i in np.flatnonzero((similarity[seed] >= threshold) & ~assigned)]
        if seed not in members:
            members.insert(0, seed)
        if len(members) >= min_size:
            assigned[members] = True
            found.append(sorted(members))
    return found
