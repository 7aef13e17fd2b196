"""The hybrid relevance score and each of its components, all in [0, 1].

score = w_sim * similarity + w_kw * keyword overlap + w_wp * waypoint activation
        + w_rec * recency + w_bm25 * BM25, with weights summing to 1 (normalised if they
do not). Defaults 0.65 / 0.10 / 0 / 0.05 / 0.20, chosen on LoCoMo's dev conversations
(docs/MEMORY.md): waypoint activation (and the expansion it drives) lowered recall@10 by 7
points there; BM25 (term frequency and length-normalised, over the candidates) next to the
IDF-weighted overlap added 4. Words are stemmed with Snowball's English stemmer (the
algorithm of Postgres' `english` full-text configuration; PyStemmer, its C library).

Departures from OpenMemory's hsg.ts, measured in bench/memory_quality:
- the boosted similarity 1 - e^(-3s) is divided by its maximum 1 - e^(-3), so a perfect
  match scores 1 and the weighted sum stays in [0, 1];
- no final sigmoid: on inputs in [0, 1] it squeezes every score into [0.5, 0.73], which
  would make a 0.5 threshold keep everything.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import Stemmer
from numpy.typing import NDArray

SIMILARITY_TAU = 3.0
RECENCY_HALF_DAYS = 7.0
RECENCY_HORIZON_DAYS = 60.0

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOPWORDS_TEXT = """a about above after again against all am an and any are as at be
    because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    i'm i've i'd you're it's that's don't didn't"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


@dataclass(frozen=True)
class Weights:
    similarity: float = 0.60
    keywords: float = 0.10
    waypoints: float = 0.0
    recency: float = 0.05
    bm25: float = 0.25
    speaker: float = 0.15
    time: float = 0.05

    def values(self) -> tuple[float, ...]:
        # Spelled out in field order (`hybrid` calls this once per candidate; walking
        # dataclasses.fields cost ~2 us each, a third of a search's scoring).
        return (
            self.similarity,
            self.keywords,
            self.waypoints,
            self.recency,
            self.bm25,
            self.speaker,
            self.time,
        )

    def normalised(self) -> Weights:
        values = self.values()
        total = sum(values)
        if total <= 0:
            raise ValueError("at least one weight must be positive")
        return Weights(*(value / total for value in values))


@dataclass(frozen=True)
class Components:
    """The normalised signals of one candidate."""

    similarity: float
    keywords: float
    waypoints: float
    recency: float
    bm25: float = 0.0
    speaker: float = 0.0
    """1 if the query names the memory's speaker ("Caroline: ..." for "What did Caroline
    paint?"), else 0."""
    time: float = 0.0
    """1 if the query asks when and the memory says when (see `asks_when`, `says_when`)."""


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def tokens(text: str) -> set[str]:
    """Lower-case content words (stopwords dropped), stemmed."""
    return set(token_list(text))


def token_list(text: str) -> list[str]:
    """The content words of `text` in order, repeats kept (BM25's term frequencies)."""
    return [
        stem(word)
        for word in _WORD.findall(text.lower())
        if word not in STOPWORDS and len(word) >= 2
    ]


_STEMMER = Stemmer.Stemmer("english")  # libstemmer in C: Snowball's own algorithm


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """Snowball's English stem: 'lives' meets 'live', 'painting' meets 'paint'."""
    return str(_STEMMER.stemWord(word))


BM25_K1 = 1.2
BM25_B = 0.75


CONTEXT_WEIGHT = 0.5
"""A word of a memory's context (its neighbouring turns) counts half a word of its own
text in BM25's term frequency: the turn's own words say more about it."""


@dataclass(frozen=True, slots=True)
class Document:
    """A memory's content words counted (BM25's term frequencies: its context's at
    CONTEXT_WEIGHT), its length in words, its speaker's words, and whether it says when."""

    counts: Mapping[str, float]
    length: int
    speaker: frozenset[str] = frozenset()
    dated: bool = False


_SPEAKER = re.compile(r"([^:\n]{1,40}): ")


@lru_cache(maxsize=32_768)
def document(text: str, context: str = "") -> Document:
    """A memory's text and context tokenised and counted, cached: a memory's words are
    read on every search that finds it, and a memory's text does not change.

    Its speaker is the name before "Name: " (how formation writes a turn's memory)."""
    own = token_list(text)
    around = token_list(context)
    counts: Counter[str] = Counter(own)
    for word in around:
        counts[word] += CONTEXT_WEIGHT  # type: ignore[assignment]
    named = _SPEAKER.match(text)
    return Document(
        counts,
        len(own) + len(around),
        frozenset(tokens(named.group(1))) if named else frozenset(),
        says_when(text),
    )


_WHEN = re.compile(r"\s*(when|how long)\b", re.IGNORECASE)
_TIME_WORDS = re.compile(
    r"\b(yesterday|today|tomorrow|tonight|ago|recently|just"
    r"|last (week|weekend|month|year|night|summer|winter|spring|fall|friday|saturday|sunday"
    r"|monday|tuesday|wednesday|thursday)"
    r"|next (week|month|year|weekend)|this (week|weekend|month|year|morning)"
    r"|few (days|weeks|months|years)"
    r"|january|february|march|april|may|june|july|august|september|october|november"
    r"|december|\d{4})\b",
    re.IGNORECASE,
)


def asks_when(query: str) -> bool:
    """A question about when ("When did...", "How long ago...")."""
    return _WHEN.match(query) is not None


def says_when(text: str) -> bool:
    """The text places something in time ("yesterday", "last week", "in May", "2022")."""
    return _TIME_WORDS.search(text) is not None


def speaker_named(query_tokens: AbstractSet[str], document: Document) -> float:
    """1 if every word of the memory's speaker's name is in the query, else 0."""
    return speakers_named(query_tokens, [document])[0]


def speakers_named(query_tokens: AbstractSet[str], documents: Sequence[Document]) -> list[float]:
    """`speaker_named` of each document, in one pass (a call per candidate was a tenth of a
    search's score)."""
    return [1.0 if d.speaker and d.speaker <= query_tokens else 0.0 for d in documents]


def bm25(query_tokens: set[str], documents: Sequence[list[str]]) -> list[float]:
    """Okapi BM25 of each document for the query, divided by the best (so in [0, 1]).

    The collection statistics (document frequency, average length) are those of
    `documents`, the candidates of one search: no index beyond what was fetched.
    """
    return bm25_counted(query_tokens, [Document(Counter(words), len(words)) for words in documents])


def bm25_counted(query_tokens: set[str], documents: Sequence[Document]) -> list[float]:
    """`bm25` of documents already counted (see `document`)."""
    words = list(query_tokens)
    if not documents or not words:
        return [0.0] * len(documents)
    tf = term_frequencies(words, documents)
    scores: list[float] = bm25_of(tf, inverse_document_frequency(tf > 0), documents).tolist()
    return scores


def term_frequencies(words: Sequence[str], documents: Sequence[Document]) -> NDArray[np.float64]:
    """One row a document, one column a word: the word's count in it. Filled a column at a
    time (a query has a few words, a search ~110 documents): one dict lookup per cell,
    ~1.6x faster than a set intersection per document (2026-12-03)."""
    tf = np.empty((len(documents), len(words)))
    for j, word in enumerate(words):
        tf[:, j] = [d.counts.get(word, 0.0) for d in documents]
    return tf


def inverse_document_frequency(present: NDArray[np.bool_]) -> NDArray[np.float64]:
    """idf = ln(1 + (N - df + 0.5) / (df + 0.5)) of each column of a documents x words
    presence matrix: always positive; a word in every document (a speaker's name in
    "Name: text") weighs little, a rare one (a dog's name) much."""
    n = present.shape[0]
    df = present.sum(axis=0)
    idf: NDArray[np.float64] = np.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf


def bm25_of(
    tf: NDArray[np.float64], idf: NDArray[np.float64], documents: Sequence[Document]
) -> NDArray[np.float64]:
    """Okapi BM25 of each document (a row of `tf`), divided by the best (so in [0, 1]); a
    word no document holds adds nothing."""
    lengths = np.array([d.length for d in documents], dtype=np.float64)
    average = float(lengths.mean()) or 1.0
    norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths / average)
    scores = (idf * tf * (BM25_K1 + 1) / (tf + norm[:, None])).sum(axis=1)
    best = float(scores.max())
    return scores / best if best > 0 else np.zeros_like(scores)


def similarity(cosine: float) -> float:
    """Boosted cosine similarity 1 - e^(-3s), rescaled so 1 stays 1; negatives are 0."""
    return float(similarities(np.array([cosine]))[0])


def similarities(cosines: NDArray[np.float64]) -> NDArray[np.float64]:
    """`similarity` of each cosine."""
    boosted = 1 - np.exp(-SIMILARITY_TAU * np.clip(cosines, 0.0, 1.0))
    return np.clip(boosted / (1 - math.exp(-SIMILARITY_TAU)), 0.0, 1.0)


def keyword_overlap(
    query_tokens: set[str],
    memory_tokens: AbstractSet[str],
    weights: Mapping[str, float] | None = None,
) -> float:
    """The (weighted) share of the query's content words the memory contains.

    Without `weights` every word counts 1; with them (see `term_weights`) a word found in
    few candidates counts more than one found in most.
    """
    if not query_tokens:
        return 0.0
    if weights is None:
        return len(query_tokens & memory_tokens) / len(query_tokens)
    total = sum(weights.get(token, 1.0) for token in query_tokens)
    found = sum(weights.get(token, 1.0) for token in query_tokens & memory_tokens)
    return found / total if total > 0 else 0.0


def term_weights(query_tokens: set[str], documents: Sequence[Collection[str]]) -> dict[str, float]:
    """BM25's inverse document frequency of each query word over `documents` (see
    `inverse_document_frequency`)."""
    words = list(query_tokens)
    present = np.array([[word in d for word in words] for d in documents], dtype=np.bool_)
    idf = inverse_document_frequency(present.reshape(len(documents), len(words)))
    return dict(zip(words, idf.tolist(), strict=True))


def recency(days: float) -> float:
    """e^(-d/7) * (1 - d/60) for d days since last access: 1 now, 0 from 60 days on."""
    return float(recencies(np.array([days]))[0])


def recencies(days: NDArray[np.float64]) -> NDArray[np.float64]:
    """`recency` of each age in days."""
    since = np.maximum(days, 0.0)
    decayed = np.exp(-since / RECENCY_HALF_DAYS) * (1 - since / RECENCY_HORIZON_DAYS)
    return np.clip(decayed, 0.0, 1.0)


def waypoint_activation(edge_weights: Iterable[float]) -> float:
    """Activation spread to a memory by the edges reaching it from the best hits.

    Edges combine like independent evidence, 1 - prod(1 - w): one edge of 0.5 gives 0.5,
    two give 0.75; never above 1.
    """
    missing = 1.0
    for weight in edge_weights:
        missing *= 1 - _clamp(weight)
    return 1 - missing


def hybrid(components: Components, weights: Weights) -> float:
    """The weighted sum, the weights normalised to sum to 1 (`weights` already normalised
    are used as they are: a search normalises once, not per candidate)."""
    total = sum(weights.values())
    w = weights if abs(total - 1.0) < 1e-9 else weights.normalised()
    return _clamp(
        w.similarity * components.similarity
        + w.keywords * components.keywords
        + w.waypoints * components.waypoints
        + w.recency * components.recency
        + w.bm25 * components.bm25
        + w.speaker * components.speaker
        + w.time * components.time
    )


def candidate_scores(
    query_tokens: AbstractSet[str],
    documents: Sequence[Document],
    cosines: NDArray[np.float64],
    days: NDArray[np.float64],
    weights: Weights,
    *,
    asks_when: bool = False,
    waypoints: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """`hybrid` of every candidate of one search at once, in numpy: each candidate's
    similarity (from its cosine), keyword overlap weighted by `term_weights` over the
    candidates, waypoint activation (given, or 0), recency (`days` since last access),
    BM25 over the candidates, speaker named and time. Per candidate in Python this was
    ~13 us of a search's ~110 candidates (docs/MEMORY.md)."""
    w = weights.normalised()
    score = w.similarity * similarities(cosines)
    words = list(query_tokens)
    if words and documents:
        tf = term_frequencies(words, documents)
        present = tf > 0
        idf = inverse_document_frequency(present)
        score += w.keywords * ((present @ idf) / idf.sum())
    if waypoints is not None:
        score += w.waypoints * waypoints
    score += w.recency * recencies(days)
    if words and documents:
        score += w.bm25 * bm25_of(tf, idf, documents)
    if w.speaker:
        score += w.speaker * np.array(speakers_named(query_tokens, documents))
    if asks_when and w.time:
        score += w.time * np.array([1.0 if d.dated else 0.0 for d in documents])
    return np.clip(score, 0.0, 1.0)


def salience_after(salience: float, rate_per_day: float, days: float) -> float:
    """Salience decayed exponentially for `days` at the sector's daily rate."""
    return _clamp(salience * math.exp(-rate_per_day * max(0.0, days)))


def reinforced(salience: float, boost: float = 0.1) -> float:
    """Salience after a retrieval: a step of `boost` toward 1."""
    return _clamp(salience + boost * (1 - salience))
