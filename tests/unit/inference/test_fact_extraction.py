"""Fact extraction's prompt and the parsing of the model's answer."""

from datetime import UTC, datetime

from tzurot.inference.fact_extraction import (
    MAX_FACT_CHARS,
    ExtractedFact,
    KnownFact,
    SaidTurn,
    extraction_messages,
    parse_facts,
)

PARIS = "0b5c7d1e-1111-4222-8333-944455556666"


def test_the_prompt_lists_known_facts_with_their_ids_and_dates_the_turns() -> None:
    messages = extraction_messages(
        "Alice",
        "Echo",
        [SaidTurn("Alice", "I moved to Berlin", datetime(2023, 5, 8, tzinfo=UTC))],
        [KnownFact(PARIS, "Alice lives in Paris")],
    )
    assert f"{PARIS}: Alice lives in Paris" in str(messages[0]["content"])
    assert "[08 May 2023] Alice: I moved to Berlin" in str(messages[1]["content"])


def test_parse_keeps_facts_and_only_known_ids() -> None:
    answer = (
        "Here you go:\n```json\n"
        '{"facts": [{"text": "Alice lives in  Berlin", "supersedes": ["'
        + PARIS
        + '", "made-up"]}, {"text": "  "}, {"text": "Alice has a dog named Rex"}, 7]}\n```'
    )
    assert parse_facts(answer, {PARIS}) == [
        ExtractedFact("Alice lives in Berlin", (PARIS,)),
        ExtractedFact("Alice has a dog named Rex", ()),
    ]


def test_parse_reads_nothing_from_prose_or_broken_json() -> None:
    assert parse_facts("nothing worth keeping", set()) == []
    assert parse_facts('{"facts": [', set()) == []
    assert parse_facts('{"facts": "Alice"}', set()) == []


def test_a_long_fact_is_cut() -> None:
    (fact,) = parse_facts('{"facts": [{"text": "' + "a" * 900 + '"}]}', set())
    assert len(fact.text) == MAX_FACT_CHARS
