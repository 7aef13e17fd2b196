"""The cleanup pipeline (echo strip, rules in order) and near-repeat detection."""

import pytest

from tzurot.inference.cleanup import (
    ECHO_PATTERNS_KEPT,
    BadRule,
    clean_answer,
    compile_rules,
    could_still_repeat,
    echo_prefix,
    repeats,
    similar,
    similarity,
)
from tzurot.inference.domain import CleanupRule


@pytest.mark.parametrize(
    "raw",
    [
        "Lilith: Hello.",
        "lilith:Hello.",
        "**Lilith:** Hello.",
        "Lilith: [2025-06-03 14:05] Hello.",
        "[14:05] Lilith: Hello.",
        "Lilith: Lilith: Hello.",
        "  Lilith : Hello.",
    ],
)
def test_the_models_name_and_timestamp_echo_is_stripped(raw: str) -> None:
    assert clean_answer(raw, "Lilith", ()) == "Hello."


def test_a_name_inside_the_answer_is_kept() -> None:
    assert clean_answer("I am Lilith: queen of night.", "Lilith", ()) == (
        "I am Lilith: queen of night."
    )
    assert clean_answer("Ann: said hi", "Lilith", ()) == "Ann: said hi"


def test_echo_patterns_are_kept_per_name_and_bounded() -> None:
    assert echo_prefix("Lilith") is echo_prefix("Lilith")
    assert echo_prefix.cache_info().maxsize == ECHO_PATTERNS_KEPT
    for index in range(ECHO_PATTERNS_KEPT + 10):
        echo_prefix(f"Name {index}")
    assert echo_prefix.cache_info().currsize == ECHO_PATTERNS_KEPT


def test_a_renamed_personality_strips_its_new_name_only() -> None:
    assert clean_answer("Lilith: Hello.", "Lilith", ()) == "Hello."
    assert clean_answer("Lilith: Hello.", "Lilita", ()) == "Lilith: Hello."
    assert clean_answer("Lilita: Hello.", "Lilita", ()) == "Hello."


def test_rules_apply_in_order() -> None:
    rules = compile_rules(
        [
            CleanupRule(r"\bcolour\b", "color"),
            CleanupRule(r"color", "hue"),
            CleanupRule(r"^\*[^*\n]+\*\s*", ""),  # multiline: a leading action line
            CleanupRule(r"(\w+)@(\w+)", r"\2 at \1"),
        ]
    )
    text = "*sighs*\nThe colour is red.\n*smiles* me@home"
    assert clean_answer(text, "X", rules) == "The hue is red.\nhome at me"


@pytest.mark.parametrize(
    ("rules", "index"),
    [
        ([CleanupRule("ok"), CleanupRule("(unclosed")], 1),
        ([CleanupRule("a" * 501)], 0),
        ([CleanupRule("(a)", r"\2")], 0),
        ([CleanupRule("x")] * 51, 50),
    ],
)
def test_bad_rules_name_which(rules: list[CleanupRule], index: int) -> None:
    with pytest.raises(BadRule) as caught:
        compile_rules(rules)
    assert caught.value.index == index


def test_similarity_and_repeats() -> None:
    old = "The night is young, and so are you, mortal."
    assert similarity(old, old.upper()) == 1.0
    assert repeats("The night is young, and so are you mortal!", [old])
    assert not repeats("Go home, it is late.", [old])
    assert not repeats("", [""])
    assert repeats("abcdefghij" * 10 + "x", ["zzz", "abcdefghij" * 10])


def test_could_still_repeat_follows_the_start() -> None:
    old = "The night is young, and so are you, mortal. Stay a while."
    assert could_still_repeat("The night is young,", [old])
    assert not could_still_repeat("Completely different", [old])
    assert not could_still_repeat("anything", [])


def test_similar_agrees_with_the_ratio_at_every_threshold() -> None:
    """The quick bounds only skip work: the answer is always `similarity >= threshold`."""
    texts = [
        "The night is young, and so are you, mortal.",
        "The night is young and so are you mortal!",
        "the NIGHT is young",
        "Go home, it is late.",
        "a short instant answer 0f3c9a",
        "a short instant answer 9be1d2",
        "",
        "zzzz",
    ]
    for a in texts:
        for b in texts:
            for threshold in (0.0, 0.3, 0.5, 0.7, 0.85, 0.95, 1.0):
                assert similar(a, b, threshold) == (similarity(a, b) >= threshold), (a, b)
