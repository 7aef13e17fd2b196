"""Each component of the hybrid score, and the sum, on known inputs."""

import dataclasses
import math
import random

import numpy as np
import pytest

from tzurot.memory import scoring
from tzurot.memory.scoring import Components, Weights


def test_similarity_is_boosted_and_normalised() -> None:
    assert scoring.similarity(1.0) == pytest.approx(1.0)
    assert scoring.similarity(0.0) == 0.0
    assert scoring.similarity(-0.4) == 0.0
    half = (1 - math.exp(-1.5)) / (1 - math.exp(-3))
    assert scoring.similarity(0.5) == pytest.approx(half)
    assert scoring.similarity(0.5) > 0.5  # the boost lifts mid similarities
    assert scoring.similarity(0.3) < scoring.similarity(0.31)


def test_keyword_overlap_is_the_share_of_query_words() -> None:
    query = scoring.tokens("Where did Alice adopt her dogs?")
    assert query == {"alic", "adopt", "dog"}  # Snowball's stems, as Postgres' english
    assert scoring.tokens("She lives there; I live here") == {"live"}
    assert scoring.keyword_overlap(query, scoring.tokens("alice adopted a dog")) == pytest.approx(
        1.0
    )
    assert scoring.keyword_overlap(query, scoring.tokens("the dog barked")) == pytest.approx(1 / 3)
    assert scoring.keyword_overlap(set(), {"x"}) == 0.0


def test_recency_falls_to_zero_at_sixty_days() -> None:
    assert scoring.recency(0) == pytest.approx(1.0)
    assert scoring.recency(7) == pytest.approx(math.exp(-1) * (1 - 7 / 60))
    assert scoring.recency(60) == 0.0
    assert scoring.recency(400) == 0.0
    assert scoring.recency(-1) == pytest.approx(1.0)


def test_waypoint_activation_combines_edges() -> None:
    assert scoring.waypoint_activation([]) == 0.0
    assert scoring.waypoint_activation([0.5]) == pytest.approx(0.5)
    assert scoring.waypoint_activation([0.5, 0.5]) == pytest.approx(0.75)
    assert scoring.waypoint_activation([1.0, 0.3]) == pytest.approx(1.0)


def test_hybrid_weights_each_component() -> None:
    weights = Weights()
    total = sum(dataclasses.astuple(weights))
    assert scoring.hybrid(Components(1, 0, 0, 0), weights) == pytest.approx(0.60 / total)
    assert scoring.hybrid(Components(0, 1, 0, 0), weights) == pytest.approx(0.10 / total)
    # Waypoints weigh nothing by default: they lowered LoCoMo recall (docs/MEMORY.md).
    assert scoring.hybrid(Components(0, 0, 1, 0), weights) == pytest.approx(0.0)
    assert scoring.hybrid(Components(0, 0, 0, 1), weights) == pytest.approx(0.05 / total)
    assert scoring.hybrid(Components(0, 0, 0, 0, 1), weights) == pytest.approx(0.25 / total)
    assert scoring.hybrid(Components(0, 0, 0, 0, speaker=1), weights) == pytest.approx(0.15 / total)
    assert scoring.hybrid(Components(0, 0, 0, 0, time=1), weights) == pytest.approx(0.05 / total)
    assert scoring.hybrid(Components(1, 1, 1, 1, 1, 1, 1), weights) == pytest.approx(1.0)


def test_bm25_favours_repeats_and_short_documents_and_is_scaled_to_the_best() -> None:
    documents = [["pixel", "dog"], ["pixel", "pixel", "dog"], ["dog"] * 9 + ["pixel"], ["cat"]]
    scores = scoring.bm25({"pixel"}, documents)
    assert scores[1] == pytest.approx(1.0)
    assert scores[1] > scores[0] > scores[2] > 0
    assert scores[3] == 0.0
    assert scoring.bm25({"absent"}, documents) == [0.0] * 4
    assert scoring.bm25(set(), []) == []


def test_weights_are_normalised_and_configurable() -> None:
    assert scoring.hybrid(Components(1, 0, 0, 0), Weights(2, 2, 0, 0, 0, 0, 0)) == pytest.approx(
        0.5
    )
    with pytest.raises(ValueError, match="positive"):
        Weights(0, 0, 0, 0, 0, 0, 0).normalised()


def test_salience_decays_and_reinforces() -> None:
    assert scoring.salience_after(0.8, 0.015, 10) == pytest.approx(0.8 * math.exp(-0.15))
    assert scoring.reinforced(0.5) == pytest.approx(0.55)
    assert scoring.reinforced(1.0) == 1.0


def test_term_weights_are_bm25_idf_over_the_candidates() -> None:
    documents = [{"maya", "dog"}, {"maya", "bakery"}, {"maya", "pixel"}, {"jonas", "bowl"}]
    weights = scoring.term_weights({"maya", "pixel", "absent"}, documents)
    assert weights["maya"] == pytest.approx(math.log(1 + 1.5 / 3.5))
    assert weights["pixel"] == pytest.approx(math.log(1 + 3.5 / 1.5))
    assert weights["absent"] == pytest.approx(math.log(1 + 4.5 / 0.5))
    assert weights["absent"] > weights["pixel"] > weights["maya"] > 0
    assert scoring.term_weights({"x"}, []) == {"x": pytest.approx(math.log(2))}


def test_weighted_overlap_favours_the_rare_query_word() -> None:
    query = {"maya", "pixel"}
    weights = {"maya": 0.1, "pixel": 0.9}
    # Unweighted, both memories share half of the query.
    assert scoring.keyword_overlap(query, {"maya"}) == scoring.keyword_overlap(query, {"pixel"})
    assert scoring.keyword_overlap(query, {"maya"}, weights) == pytest.approx(0.1)
    assert scoring.keyword_overlap(query, {"pixel"}, weights) == pytest.approx(0.9)
    assert scoring.keyword_overlap(query, {"maya", "pixel", "dog"}, weights) == pytest.approx(1)
    assert scoring.keyword_overlap(set(), {"maya"}, weights) == 0.0


def test_documents_are_counted_once_and_score_as_bm25() -> None:
    text = "Caroline: I painted my dog Pixel, and Pixel liked the painting"
    counted = scoring.document(text)
    assert scoring.document(text) is counted  # cached: a memory's words are read once
    assert counted.counts["pixel"] == 2
    assert counted.counts["paint"] == 2  # "painted", "painting": Snowball stems
    assert counted.length == sum(counted.counts.values())
    texts = ["pixel dog", "pixel pixel dog", " ".join(["dog"] * 9 + ["pixel"]), "cat"]
    lists = [scoring.token_list(t) for t in texts]
    assert scoring.bm25_counted({"pixel", "absent"}, [scoring.document(t) for t in texts]) == (
        pytest.approx(scoring.bm25({"pixel"}, lists))
    )


def test_the_query_naming_the_speaker_counts() -> None:
    query = scoring.tokens("What did Caroline paint last summer?")
    assert scoring.speaker_named(query, scoring.document("Caroline: I painted a lake")) == 1.0
    assert scoring.speaker_named(query, scoring.document("Melanie: I painted a lake")) == 0.0
    # Every word of the name must be named; a memory without "Name: " has no speaker.
    both = scoring.document("Caroline Smith: hello there")
    assert scoring.speaker_named(query, both) == 0.0
    assert scoring.speaker_named(query | {"smith"}, both) == 1.0
    assert scoring.speaker_named(query, scoring.document("caroline paints lakes")) == 0.0


def test_when_questions_and_memories_that_say_when() -> None:
    assert scoring.asks_when("When did Melanie run the charity race?")
    assert scoring.asks_when("how long ago was Caroline's 18th birthday?")
    assert not scoring.asks_when("What did Melanie run?")
    assert scoring.says_when("Melanie: I ran a charity race last Saturday")
    assert scoring.says_when("Caroline: we went in May 2022")
    assert scoring.says_when("Jon: it was two years ago")
    assert not scoring.says_when("Melanie: I ran a charity race for a shelter")
    assert scoring.document("Melanie: I ran a race yesterday").dated


def test_context_words_count_half_of_the_memorys_own() -> None:
    counted = scoring.document("Alice: yes, twice", "Lilith: did you visit the museum?")
    assert counted.counts["twice"] == 1
    assert counted.counts["museum"] == scoring.CONTEXT_WEIGHT
    assert counted.length == 6  # alice, yes, twice; lilith, visit, museum (stopwords out)
    assert counted.speaker == frozenset({"alic"})


def test_a_searchs_scores_at_once_are_each_candidates_hybrid() -> None:
    """`candidate_scores` (numpy, one search's candidates at once) gives every candidate
    the `hybrid` of its components computed one by one."""
    rng = random.Random(7)
    texts = [
        "Caroline: I painted my dog Pixel at the lake last summer",
        "Melanie: we adopted a puppy",
        "Caroline: the charity race was in May 2022",
        "Jon: pixel art is fun",
        "a memory without a speaker",
        "Melanie: Caroline and I went to the museum",
    ]
    documents = [
        scoring.document(t, rng.choice(["", "Lilith: did you paint the lake?"])) for t in texts
    ]
    cosines = [rng.uniform(-0.2, 1.0) for _ in texts]
    days = [rng.uniform(-1.0, 90.0) for _ in texts]
    waypoints = [rng.uniform(0.0, 1.0) for _ in texts]
    weights = Weights(similarity=0.5, keywords=0.1, waypoints=0.1, recency=0.05, bm25=0.25)
    for query in ("When did Caroline paint Pixel at the lake?", "what about the", ""):
        tokens = scoring.tokens(query)
        idf = scoring.term_weights(tokens, [d.counts.keys() for d in documents])
        bm25 = scoring.bm25_counted(tokens, documents)
        expected = [
            scoring.hybrid(
                Components(
                    similarity=scoring.similarity(cosine),
                    keywords=scoring.keyword_overlap(tokens, d.counts.keys(), idf),
                    waypoints=waypoint,
                    recency=scoring.recency(day),
                    bm25=bm25_score,
                    speaker=scoring.speaker_named(tokens, d),
                    time=1.0 if scoring.asks_when(query) and d.dated else 0.0,
                ),
                weights,
            )
            for d, cosine, day, waypoint, bm25_score in zip(
                documents, cosines, days, waypoints, bm25, strict=True
            )
        ]
        scores = scoring.candidate_scores(
            tokens,
            documents,
            np.array(cosines),
            np.array(days),
            weights,
            asks_when=scoring.asks_when(query),
            waypoints=np.array(waypoints),
        )
        assert scores.tolist() == pytest.approx(expected, abs=1e-12)
    assert expected != pytest.approx([expected[0]] * len(expected))  # not all alike


def test_term_frequencies_are_each_words_count_in_each_document() -> None:
    documents = [
        scoring.document("Caroline: I painted the lake, then painted it again"),
        scoring.document("nothing of the query here", "Caroline: the lake?"),
    ]
    tf = scoring.term_frequencies(["paint", "lake", "absent"], documents)
    assert tf.tolist() == [[2.0, 1.0, 0.0], [0.0, 0.5, 0.0]]  # context words count half
