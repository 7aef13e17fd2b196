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
        referenced_message_ids=["r-1"],
        history_turns=4,
        key_source="system",
        prompt_tokens_estimate=900,
    )
    text = render.inspection(info, REFS)
    assert text.splitlines() == [
        "Prompt: ~900 tokens, 4 history turns, paid with the operator's key",
        "Memories (2): `m-1`, `m-2`",
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
