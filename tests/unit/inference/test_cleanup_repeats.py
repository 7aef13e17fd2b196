"""The near-repeat checks give difflib's answers: randomised against the functions they
replaced (copied here as the reference, before the longest-common-subsequence bound)."""

import difflib
import random
from collections.abc import Sequence

from tzurot.inference.cleanup import could_still_repeat, repeats, similar

THRESHOLDS = (0.0, 0.5, 0.7, 0.85, 0.95, 1.0)
WORDS = (
    "the",
    "night",
    "is",
    "young",
    "and",
    "so",
    "are",
    "you",
    "mortal",
    "stay",
    "a",
    "while",
    "go",
    "home",
    "it",
    "is",
    "late",
)


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def reference_similar(a: str, b: str, threshold: float) -> bool:
    matcher = difflib.SequenceMatcher(None, _normal(a), _normal(b), autojunk=False)
    return (
        matcher.real_quick_ratio() >= threshold
        and matcher.quick_ratio() >= threshold
        and matcher.ratio() >= threshold
    )


def reference_repeats(answer: str, recent: Sequence[str], threshold: float) -> bool:
    return bool(answer.strip()) and any(reference_similar(answer, old, threshold) for old in recent)


def reference_could_still_repeat(partial: str, recent: Sequence[str], threshold: float) -> bool:
    if not partial.strip():
        return bool(recent)
    return any(reference_similar(partial, old[: len(partial)], threshold) for old in recent)


def _text(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:  # few letters: long matches, ratios near every threshold
        return "".join(rng.choice("ab c") for _ in range(rng.randrange(0, 60)))
    if kind == 1:
        return "a short instant answer " + "".join(rng.choices("0123456789abcdef", k=32))
    return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 20)))


def _edited(text: str, rng: random.Random) -> str:
    letters = list(text)
    for _ in range(rng.randrange(0, 6)):
        where = rng.randrange(len(letters) + 1)
        action = rng.randrange(3)
        if action == 0:
            letters.insert(where, rng.choice("abx ,"))
        elif letters and where < len(letters):
            if action == 1:
                del letters[where]
            else:
                letters[where] = rng.choice("abx ,")
    edited = "".join(letters)
    return edited.upper() if rng.random() < 0.2 else edited.replace(" ", "  \n")


def _chunks(text: str, rng: random.Random) -> list[str]:
    cuts = (
        sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randrange(8))))
        if text
        else []
    )
    return [text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def test_the_checks_agree_with_difflib_over_random_streams() -> None:
    rng = random.Random(331)
    outcomes: set[bool] = set()
    for _ in range(1000):
        answer = _text(rng)
        recent = [
            rng.choice([answer, _edited(answer, rng), _text(rng), ""])
            for _ in range(rng.randrange(6))
        ]
        threshold = rng.choice(THRESHOLDS)
        held = ""
        for chunk in _chunks(answer, rng):
            held += chunk
            expected = reference_could_still_repeat(held, recent, threshold)
            assert could_still_repeat(held, recent, threshold) == expected, (
                held,
                recent,
                threshold,
            )
            outcomes.add(expected)
        assert repeats(answer, recent, threshold) == reference_repeats(answer, recent, threshold)
        for old in recent:
            assert similar(answer, old, threshold) == reference_similar(answer, old, threshold)
    assert outcomes == {True, False}
