"""Lorebook activation: a table per rule (selective logic, matching, timed effects, budget,
recursion, decorators), against SillyTavern's World Info semantics."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from google.protobuf import struct_pb2

from tzurot.inference.lore.convert import entry
from tzurot.inference.lore.engine import Scan, activate
from tzurot.inference.lore.matching import decorators
from tzurot.inference.lore.model import Book, Entry, LoreState, Outcome, TimedEffect
from tzurot.v1 import common_pb2 as common


def words(text: str) -> int:
    return len(text.split())


def run(
    entries: list[Entry],
    messages: list[str],
    *,
    length: int = 10,
    state: LoreState | None = None,
    budget: int = 1000,
    seed: int = 1,
    book: dict[str, Any] | None = None,
    assistant: int = 0,
) -> Outcome:
    lore = Book(id="b", name="Book", entries=tuple(entries), **(book or {}))
    return activate(
        [lore],
        Scan(messages=messages, chat_length=length, assistant_messages=assistant),
        state or LoreState(),
        budget=budget,
        count=words,
        rng=random.Random(seed),
    )


def fired(outcome: Outcome) -> list[str]:
    return [a.entry.uid for a in outcome.activated]


E = Entry(uid="e", keys=("dragon",), content="Dragons breathe fire.")


@pytest.mark.parametrize(
    ("logic", "secondary", "text", "expected"),
    [
        # AND_ANY: the primary key and at least one secondary key
        ("AND_ANY", ("cave", "gold"), "a dragon in the cave", True),
        ("AND_ANY", ("cave", "gold"), "a dragon with gold", True),
        ("AND_ANY", ("cave", "gold"), "a dragon alone", False),
        # AND_ALL: the primary key and every secondary key
        ("AND_ALL", ("cave", "gold"), "a dragon in the cave with gold", True),
        ("AND_ALL", ("cave", "gold"), "a dragon in the cave", False),
        # NOT_ANY: the primary key and none of the secondary keys
        ("NOT_ANY", ("cave", "gold"), "a dragon alone", True),
        ("NOT_ANY", ("cave", "gold"), "a dragon with gold", False),
        # NOT_ALL: the primary key and not every secondary key
        ("NOT_ALL", ("cave", "gold"), "a dragon in the cave", True),
        ("NOT_ALL", ("cave", "gold"), "a dragon alone", True),
        ("NOT_ALL", ("cave", "gold"), "a dragon in the cave with gold", False),
        # no secondary keys: the primary key alone; no primary key: never
        ("AND_ALL", (), "a dragon", True),
        ("NOT_ANY", ("cave",), "a cave", False),
    ],
)
def test_selective_logic(logic: str, secondary: tuple[str, ...], text: str, expected: bool) -> None:
    entry = replace(E, logic=logic, secondary_keys=secondary)  # type: ignore[arg-type]
    outcome = run([entry], [text])
    assert (fired(outcome) == ["e"]) is expected
    if expected:
        assert "dragon" in outcome.activated[0].reason
        if secondary:
            assert logic in outcome.activated[0].reason


@pytest.mark.parametrize(
    ("changes", "text", "expected"),
    [
        ({}, "A DRAGON!", True),  # case-insensitive by default
        ({"case_sensitive": True}, "A DRAGON!", False),
        ({"case_sensitive": True}, "a dragon!", True),
        ({}, "dragonfly", True),  # substring by default
        ({"match_whole_words": True}, "dragonfly", False),
        ({"match_whole_words": True}, "the dragon, again", True),
        ({"keys": ("red dragon",), "match_whole_words": True}, "a red dragonfly", True),
        ({"keys": ("/drag(on|in)s?/i",)}, "DRAGINS everywhere", True),
        ({"keys": ("/drag(on|in)s?/",)}, "DRAGINS everywhere", False),
        ({"keys": ("/[unclosed/",)}, "[unclosed", False),  # invalid regex: no match
        ({"keys": ("dra.on$",), "use_regex": True}, "a dragon", True),
        ({"keys": ("(",), "use_regex": True}, "(", False),
        ({"keys": ("{{char}}",)}, "Grigori is here", True),  # macros in keys
        ({"enabled": False}, "dragon", False),
        ({"keys": ()}, "dragon", False),
    ],
)
def test_key_matching(changes: dict[str, Any], text: str, expected: bool) -> None:
    entry = replace(E, **changes)
    lore = Book(id="b", name="Book", entries=(entry,))
    outcome = activate(
        [lore],
        Scan(messages=[text], chat_length=3),
        LoreState(),
        budget=100,
        count=words,
        substitute=lambda t: t.replace("{{char}}", "Grigori"),
    )
    assert (fired(outcome) == ["e"]) is expected


def test_scan_depth_counts_the_newest_messages() -> None:
    history = ["no", "nothing", "a dragon", "old"]
    assert fired(run([E], history)) == []  # default depth 2
    assert fired(run([E], history, book={"scan_depth": 3})) == ["e"]
    assert fired(run([replace(E, scan_depth=3)], history)) == ["e"]
    assert fired(run([replace(E, scan_depth=3)], history, book={"scan_depth": 1})) == ["e"]


def test_constant_and_probability() -> None:
    constant = replace(E, uid="c", keys=(), constant=True)
    assert fired(run([constant], ["anything"])) == ["c"]
    assert run([constant], ["x"]).activated[0].reason == "constant"
    never = replace(E, probability=0)
    always = replace(E, probability=100)
    assert fired(run([never], ["dragon"])) == []
    assert fired(run([always], ["dragon"])) == ["e"]
    half = replace(E, probability=50)
    hits = sum(bool(fired(run([half], ["dragon"], seed=s))) for s in range(200))
    assert 70 < hits < 130
    unrolled = replace(E, probability=0, use_probability=False)
    assert fired(run([unrolled], ["dragon"])) == ["e"]


# -- timed effects: (entry, [(chat length, text)], expected fired per step) ----------------

TIMED_CASES = [
    # sticky 2: stays active 2 messages after it fired (fires at 10, held at 11, ends at 12)
    ("sticky", {"sticky": 2}, [(10, "dragon"), (11, "calm"), (12, "calm")], [True, True, False]),
    # cooldown 3: cannot fire again for 3 messages
    (
        "cooldown",
        {"cooldown": 3},
        [(10, "dragon"), (11, "dragon"), (12, "dragon"), (13, "dragon")],
        [True, False, False, True],
    ),
    # delay 5: cannot fire before the chat has 5 messages
    ("delay", {"delay": 5}, [(3, "dragon"), (4, "dragon"), (5, "dragon")], [False, False, True]),
    # sticky then cooldown: cooldown starts when sticky ends
    (
        "sticky+cooldown",
        {"sticky": 1, "cooldown": 2},
        [(10, "dragon"), (11, "dragon"), (12, "dragon"), (13, "dragon")],
        [True, False, False, True],
    ),
    # a retried message (the chat did not advance) voids the window it opened
    ("retry voids sticky", {"sticky": 5}, [(10, "dragon"), (10, "calm")], [True, False]),
    # sticky holds an entry even when its keys are gone and ignores its probability
    (
        "sticky skips roll",
        {"sticky": 3, "probability": 100},
        [(10, "dragon"), (11, "calm"), (12, "calm"), (13, "calm")],
        [True, True, True, False],
    ),
]


@pytest.mark.parametrize(
    ("name", "changes", "steps", "expected"), TIMED_CASES, ids=[c[0] for c in TIMED_CASES]
)
def test_timed_effects(
    name: str, changes: dict[str, Any], steps: list[tuple[int, str]], expected: list[bool]
) -> None:
    entry = replace(E, **changes)
    state = LoreState()
    seen = []
    for length, text in steps:
        outcome = run([entry], [text], length=length, state=state)
        seen.append(fired(outcome) == ["e"])
        state = outcome.state
    assert seen == expected


def test_timed_state_survives_as_data() -> None:
    outcome = run([replace(E, sticky=2, cooldown=4)], ["dragon"], length=7)
    kinds = {(e.kind, e.start, e.end) for e in outcome.state.effects}
    assert kinds == {("sticky", 7, 9), ("cooldown", 7, 11)}
    # effects of a book not in play are kept until they run out
    foreign = TimedEffect("other", "x", "sticky", 1, 20)
    kept = run([E], ["calm"], length=8, state=LoreState(effects=(foreign,))).state
    assert foreign in kept.effects
    expired = run([E], ["calm"], length=25, state=LoreState(effects=(foreign,))).state
    assert foreign not in expired.effects


def test_budget_drops_the_lowest_priority() -> None:
    entries = [
        replace(E, uid="low", order=1, content="one two three four"),
        replace(E, uid="high", order=50, content="one two three four"),
        replace(E, uid="mid", order=10, priority=90, content="one two three four"),
    ]
    outcome = run(entries, ["dragon"], budget=8)
    assert sorted(fired(outcome)) == ["high", "mid"]
    assert [a.entry.uid for a in outcome.dropped] == ["low"]
    # the result is in insertion order (lower order first) for placement
    assert fired(outcome) == ["mid", "high"]


def test_recursion_is_opt_in_and_bounded() -> None:
    a = Entry(uid="a", keys=("dragon",), content="The dragon guards the crown.", order=3)
    b = Entry(uid="b", keys=("crown",), content="The crown is cursed by the witch.", order=2)
    c = Entry(uid="c", keys=("witch",), content="The witch lives under the hill.", order=1)
    assert fired(run([a, b, c], ["dragon"])) == ["a"]
    recursive = {"recursive_scanning": True}
    assert sorted(fired(run([a, b, c], ["dragon"], book=recursive))) == ["a", "b", "c"]
    lore = Book(id="b", name="Book", entries=(a, b, c), recursive_scanning=True)
    one_step = activate(
        [lore], Scan(["dragon"], 3), LoreState(), budget=100, count=words, max_recursion_steps=1
    )
    assert sorted(fired(one_step)) == ["a", "b"]
    blocked = replace(b, exclude_recursion=True)
    assert fired(run([a, blocked, c], ["dragon"], book=recursive)) == ["a"]
    silent = replace(a, prevent_recursion=True)
    assert fired(run([silent, b, c], ["dragon"], book=recursive)) == ["a"]
    late = replace(c, keys=("dragon",), delay_until_recursion=1)
    assert sorted(fired(run([a, b, late], ["dragon"], book=recursive))) == ["a", "b", "c"]
    assert fired(run([late], ["dragon"])) == []


def test_positions_and_decorators() -> None:
    at_depth = replace(E, position="at_depth", depth=2, role="assistant")
    placed = run([at_depth], ["dragon"]).activated[0]
    assert (placed.position, placed.depth, placed.role) == ("at_depth", 2, "assistant")
    decorated = replace(E, content="@@depth 1\n@@role user\n@@scan_depth 3\nThe lore.")
    item = run([decorated], ["x", "y", "dragon"]).activated[0]
    assert (item.position, item.depth, item.role, item.content) == (
        "at_depth",
        1,
        "user",
        "The lore.",
    )
    assert fired(run([replace(E, keys=(), content="@@activate\nAlways.")], ["x"])) == ["e"]
    assert fired(run([replace(E, content="@@dont_activate\nNever.")], ["dragon"])) == []
    only_after = replace(E, content="@@activate_only_after 3\nLater.")
    assert fired(run([only_after], ["dragon"], assistant=2)) == []
    assert fired(run([only_after], ["dragon"], assistant=3)) == ["e"]
    every = replace(E, content="@@activate_only_every 2\nEvery other.")
    assert fired(run([every], ["dragon"], assistant=3)) == []
    assert fired(run([every], ["dragon"], assistant=4)) == ["e"]
    extra = replace(E, content="@@additional_keys gold,silver\n@@exclude_keys knight\nHoard.")
    assert fired(run([extra], ["dragon gold"])) == ["e"]
    assert fired(run([extra], ["dragon"])) == []
    assert fired(run([extra], ["dragon gold knight"])) == []
    fallback = decorators("@@risu_only 4\n@@@depth 2\nText")
    assert (fallback.depth, fallback.content) == (2, "Text")
    position = decorators("@@position after_desc\nText")
    assert position.position == "after_char"


def test_books_in_order_and_entries_once() -> None:
    channel = Book(
        id="c",
        name="Channel",
        entries=(replace(E, uid="1", content="channel lore"),),
        scope="channel",
    )
    personality = Book(
        id="p", name="Personality", entries=(replace(E, uid="1", content="char lore"),)
    )
    outcome = activate(
        [channel, personality], Scan(["dragon"], 2), LoreState(), budget=100, count=words
    )
    assert [(a.book_id, a.content) for a in outcome.activated] == [
        ("c", "channel lore"),
        ("p", "char lore"),
    ]


def grouped(uid: str, **changes: Any) -> Entry:
    return replace(E, uid=uid, content=f"lore {uid}", group=("weather",), **changes)


@pytest.mark.parametrize(
    ("entries", "messages", "state", "expected"),
    [
        # one of the group fires, never two
        ([grouped("a"), grouped("b")], ["dragon"], None, 1),
        # an entry alone in its group fires as usual
        ([grouped("a")], ["dragon"], None, 1),
        # different groups do not compete
        ([grouped("a"), replace(grouped("b"), group=("mood",))], ["dragon"], None, 2),
        # an entry of several groups competes in each
        ([grouped("a"), replace(grouped("b"), group=("weather", "mood"))], ["dragon"], None, 1),
    ],
)
def test_inclusion_groups_keep_one_entry(
    entries: list[Entry], messages: list[str], state: LoreState | None, expected: int
) -> None:
    for seed in range(20):
        assert len(fired(run(entries, messages, state=state, seed=seed))) == expected


def test_inclusion_group_override_picks_the_highest_order() -> None:
    entries = [
        grouped("low", group_override=True, order=10),
        grouped("high", group_override=True, order=50),
        grouped("plain", order=99),
    ]
    for seed in range(10):
        outcome = run(entries, ["dragon"], seed=seed)
        assert fired(outcome) == ["high"]
        assert "won group 'weather' (override)" in outcome.activated[0].reason


def test_inclusion_group_draw_follows_the_weights() -> None:
    entries = [grouped("rare", group_weight=1), grouped("common", group_weight=99)]
    wins = [fired(run(entries, ["dragon"], seed=seed))[0] for seed in range(200)]
    assert wins.count("common") > 180
    assert "rare" in wins or wins.count("common") == 200
    zero = [grouped("never", group_weight=0), grouped("always")]
    assert {fired(run(zero, ["dragon"], seed=seed))[0] for seed in range(50)} == {"always"}


def test_inclusion_group_scoring_keeps_the_best_match() -> None:
    one = grouped("one", keys=("dragon",), use_group_scoring=True)
    two = grouped("two", keys=("dragon", "cave"), use_group_scoring=True)
    for seed in range(20):
        assert fired(run([one, two], ["a dragon in the cave"], seed=seed)) == ["two"]
    # without scoring, either may win
    plain = {
        fired(
            run(
                [replace(one, use_group_scoring=False), replace(two, use_group_scoring=False)],
                ["a dragon in the cave"],
                seed=seed,
            )
        )[0]
        for seed in range(40)
    }
    assert plain == {"one", "two"}


def test_inclusion_group_sticky_entry_holds_the_group() -> None:
    sticky = grouped("held", sticky=3)
    other = grouped("other", group_override=True, order=999)
    state = LoreState(effects=(TimedEffect("b", "held", "sticky", 5, 8),))
    assert fired(run([sticky, other], ["dragon"], length=6, state=state)) == ["held"]


def test_inclusion_group_is_closed_once_an_entry_is_in_the_prompt() -> None:
    # `first` fires on the message; its text triggers `second` by recursion, same group.
    first = replace(grouped("first"), content="the cave")
    second = replace(grouped("second"), keys=("cave",))
    book = {"recursive_scanning": True}
    assert fired(run([first, second], ["dragon"], book=book)) == ["first"]
    # in another group, the recursion fires it
    free = replace(second, group=("elsewhere",))
    assert sorted(fired(run([first, free], ["dragon"], book=book))) == ["first", "second"]


@pytest.mark.parametrize(
    "extensions",
    [
        {"group": "weather, mood", "group_override": True, "group_weight": 7},  # a card entry
        {"group": "weather, mood", "groupOverride": True, "groupWeight": 7},  # world info
    ],
)
def test_inclusion_group_fields_come_from_the_entry_extensions(extensions: dict[str, Any]) -> None:
    ext = struct_pb2.Struct()
    ext.update({**extensions, "useGroupScoring": True})
    converted = entry(common.LoreEntry(uid="1", keys=["x"], extensions=ext))
    assert converted.group == ("weather", "mood")
    assert (converted.group_override, converted.group_weight) == (True, 7)
    assert converted.use_group_scoring
    assert entry(common.LoreEntry(uid="2")).group == ()


def test_match_memory_decorators_and_ignore_on_max_context() -> None:
    keep = replace(E, content="@@keep_activate_after_match\nOnce seen, always here.")
    first = run([keep], ["a dragon"], length=2)
    assert fired(first) == ["e"]
    assert [(e.kind, e.start) for e in first.state.effects] == [("matched", 2)]
    later = run([keep], ["nothing"], length=4, state=first.state)
    assert fired(later) == ["e"]
    assert "@@keep_activate_after_match" in later.activated[0].reason
    assert fired(run([keep], ["nothing"], length=4)) == []  # never matched: keys needed

    once = replace(E, content="@@dont_activate_after_match\nOnly the first time.")
    seen = run([once], ["a dragon"], length=2)
    assert fired(seen) == ["e"]
    assert fired(run([once], ["a dragon again"], length=4, state=seen.state)) == []
    # a retried message (the chat did not advance) forgets the match it recorded
    assert fired(run([once], ["a dragon"], length=2, state=seen.state)) == ["e"]
    # entries without these decorators keep no match state
    assert run([E], ["a dragon"]).state.effects == ()

    # two entries, room for one: the @@ignore_on_max_context one is left out first
    big = replace(E, uid="big", content="@@ignore_on_max_context\none two three", order=999)
    small = replace(E, uid="small", content="four five six", order=1)
    outcome = run([big, small], ["dragon"], budget=3)
    assert fired(outcome) == ["small"]
    assert [a.entry.uid for a in outcome.dropped] == ["big"]


def test_is_greeting_fires_only_after_that_greeting() -> None:
    zero = replace(E, uid="zero", content="@@is_greeting 0\nAfter first_mes.")
    one = replace(E, uid="one", content="@@is_greeting 1\nAfter the alternate.")
    greeted = LoreState(effects=(TimedEffect("", "", "greeting", 1, 2**31 - 1, True),))
    outcome = run([zero, one], ["dragon"], length=1, state=greeted)
    assert fired(outcome) == ["one"]
    assert any(e.kind == "greeting" for e in outcome.state.effects)  # kept for later turns
    # no greeting known (a conversation begun by a mention): the decorator is ignored
    assert sorted(fired(run([zero, one], ["dragon"]))) == ["one", "zero"]
