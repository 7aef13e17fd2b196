"""Deterministic sector classification and extractive reflection."""

import numpy as np
import pytest

from tzurot.memory import reflection
from tzurot.memory.sectors import DECAY_PER_DAY, Sector, classify


@pytest.mark.parametrize(
    ("text", "sector"),
    [
        ("Yesterday I went to the beach with my cousin", Sector.EPISODIC),
        ("How to install the driver: first download it, then run setup", Sector.PROCEDURAL),
        ("I feel so anxious and sad about the exam!!", Sector.EMOTIONAL),
        ("I realize now the lesson was about patience and my values", Sector.REFLECTIVE),
        ("The definition of entropy in information theory", Sector.SEMANTIC),
        ("Paris is the capital of France", Sector.SEMANTIC),  # no rule: a plain fact
    ],
)
def test_classify(text: str, sector: Sector) -> None:
    assert classify(text) == sector


def test_decay_rates() -> None:
    assert DECAY_PER_DAY == {
        Sector.EPISODIC: 0.015,
        Sector.SEMANTIC: 0.005,
        Sector.EMOTIONAL: 0.020,
        Sector.PROCEDURAL: 0.008,
        Sector.REFLECTIVE: 0.001,
    }


def test_sentences_are_ranked_by_content() -> None:
    dated = "On March 3 I visited Lisbon with Maria."
    plain = "it was kind of a long and rather uneventful afternoon overall for everyone there"
    assert reflection.sentence_score(dated) > reflection.sentence_score(plain)
    question = "Why do we keep going back there?"
    assert reflection.sentence_score(question) > reflection.sentence_score(plain)


def test_summarise_keeps_best_sentences_in_order_within_budget() -> None:
    texts = [
        "Alice: it was kind of a long and rather uneventful afternoon overall for everyone.",
        "Alice: On March 3 I visited Lisbon with Maria. We ate a lot.",
        "Alice: On March 3 I visited Lisbon with Maria.",
    ]
    summary = reflection.summarise(texts, max_chars=60)
    assert summary == "On March 3 I visited Lisbon with Maria. We ate a lot."
    assert "Alice:" not in summary
    assert reflection.summarise([], 100) == ""


def test_clusters_group_close_vectors() -> None:
    a = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    b = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    near_a = np.array([0.95, 0.31, 0.0], dtype=np.float32)
    near_a /= np.linalg.norm(near_a)
    vectors = np.stack([a, b, near_a, a])
    assert reflection.clusters(vectors, 0.8, 2) == [[0, 2, 3]]
    assert reflection.clusters(vectors, 0.8, 4) == []
    assert reflection.clusters(np.zeros((0, 3), dtype=np.float32), 0.8, 1) == []
