"""Inspect's rendering of what informed an answer."""

from __future__ import annotations

from tzurot.bot.commands import render
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

REFS = [
    common.ReferencedMessage(message_id="r-1", author_name="Bob", content="the bridge closes"),
    common.ReferencedMessage(message_id="r-2", author_name="Eve", content="already in history"),
]


def test_only_the_references_the_prompt_kept_are_listed() -> None:
    info = gw.JobInspection(
        memory_ids=["m-1", "m-2"],
        memories=[
            common.MemoryNote(id="m-1", text="Ann fears moths.\nShe said so twice."),
            common.MemoryNote(id="m-2", text="Ann " + "likes tea " * 20),
        ],
        referenced_message_ids=["r-1"],
        history_turns=4,
        key_source="system",
        prompt_tokens_estimate=900,
    )
    text = render.inspection(info, REFS)
    assert text.splitlines() == [
        "Prompt: ~900 tokens, 4 history turns, paid with the operator's key",
        "Memories (2):",
        "- Ann fears moths.…",
        "- Ann " + ("likes tea " * 10)[:95] + "…",
        "References (1):",
        "- Bob: the bridge closes",
    ]


def test_long_reasoning_is_cut_but_stays_a_closed_spoiler() -> None:
    info = gw.JobInspection(history_turns=1, reasoning="why " * 1000)
    text = render.inspection(info, [])
    assert "Memories: none" in text
    assert text.endswith("||")
    assert text.count("||") == 2
    assert len(text) <= 1600


def test_a_degraded_answer_says_memory_was_unavailable() -> None:
    info = gw.JobInspection(history_turns=1, degraded=["memory_unavailable"])
    text = render.inspection(info, [])
    assert "Long-term memory was unavailable" in text
    assert "Long-term memory was unavailable" not in render.inspection(
        gw.JobInspection(history_turns=1), []
    )


def test_an_answer_whose_lore_ran_out_of_regex_time_says_so() -> None:
    info = gw.JobInspection(history_turns=1, degraded=["lore_regex_budget_spent"])
    assert "regex keys took too long" in render.inspection(info, [])
    assert "regex keys took too long" not in render.inspection(
        gw.JobInspection(history_turns=1), []
    )


def test_one_line_cuts_to_the_width_and_the_first_line() -> None:
    assert render.one_line("short", 10) == "short"
    assert render.one_line("a\nb", 10) == "a…"
    assert render.one_line("x" * 12, 10) == "x" * 9 + "…"
