"""A V2 card's top-level V1 fields (SillyTavern repeats `name`, `description`… there) are not
kept as unknown fields: written back unchanged they went stale once the personality was
edited (review 142, 12)."""

from __future__ import annotations

import json
from typing import Any

from tzurot.gateway.cards import codec
from tzurot.gateway.cards.mapping import CharacterView, card_from_view, draft_from_card
from tzurot.gateway.cards.spec import card_json


def _sillytavern_v2() -> dict[str, Any]:
    v1 = {"name": "Zed", "description": "OLD", "personality": "calm", "first_mes": "Hi."}
    return {
        **v1,
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "chat": "zed - 2024-01-01",  # a top-level field of SillyTavern's own: kept
        "data": {**v1, "mes_example": ""},
    }


def _view(card: dict[str, Any], description: str) -> CharacterView:
    return CharacterView(
        name="Zed",
        slug="zed",
        aliases=(),
        avatar_url="",
        system_prompt="",
        description=description,
        personality="calm",
        scenario="",
        example_dialogues="",
        post_history_instructions="",
        error_message="",
        birthday="",
        nsfw=False,
        public=False,
        card=card,
    )


def test_v1_fields_at_the_top_level_are_not_kept() -> None:
    draft = draft_from_card(codec.decode(json.dumps(_sillytavern_v2()).encode()))
    assert draft.card["card_unknown_fields"] == {"chat": "zed - 2024-01-01"}


def test_an_edited_card_exports_no_stale_top_level_description() -> None:
    draft = draft_from_card(codec.decode(json.dumps(_sillytavern_v2()).encode()))
    exported = card_json(card_from_view(_view(draft.card, "NEW")))
    assert exported["data"]["description"] == "NEW"
    assert exported["chat"] == "zed - 2024-01-01"
    assert not set(exported) & {"name", "description", "personality", "first_mes"}


def test_a_card_stored_with_v1_top_level_fields_exports_without_them() -> None:
    stored = {"card_unknown_fields": {"name": "Zed", "description": "OLD", "chat": "c"}}
    view = _view(stored, "NEW")
    exported = card_json(card_from_view(view))
    assert "description" not in exported
    assert exported["chat"] == "c"
