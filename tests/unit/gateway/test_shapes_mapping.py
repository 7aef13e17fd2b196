"""A shapes.inc configuration, written from the field list, mapped field by field."""

from __future__ import annotations

import pytest

from tzurot.cli.shapes_import import kind_of
from tzurot.gateway.shapes.documents import parse_config, parse_history, parse_memories
from tzurot.gateway.shapes.mapping import plan_personality
from tzurot.runtime.errors import InvalidArgument
from tzurot.testing.shapes_backup import ALICE, shape_config, shape_history, shape_memories


def test_documents_are_recognised_by_shape() -> None:
    assert kind_of(shape_config()) == "config"
    assert kind_of(shape_memories()) == "memories"
    assert kind_of(shape_history()) == "history"
    assert kind_of({"hello": 1}) is None
    assert kind_of([]) is None


def test_every_configuration_field_lands() -> None:
    plan = plan_personality(parse_config(shape_config()), extra_aliases=["lamp lady"])
    seed = plan.seed
    assert (seed.name, seed.effective_slug) == ("Mira Vale", "mira-vale")
    assert seed.avatar_url == "https://files.shapes.inc/avatars/mira.png"
    assert seed.system_prompt.startswith("You are Mira Vale")
    assert seed.character.description.startswith("Mira keeps the Greyhaven light")
    personality = seed.character.personality
    for line in (
        "Traits: patient, wry, stubborn",
        "Tone: warm and salty",
        "Age: 67",
        "Appearance: oilskin coat, silver braid",
        "Likes: storms, strong tea",
        "Dislikes: landlubbers, fog horns at night",
        "Conversational goals: teach sailors to read the weather",
    ):
        assert line in personality
    assert seed.character.example_dialogues.startswith("{{user}}: Storm coming?")
    assert seed.llm is not None
    assert (seed.llm.provider, seed.llm.model) == ("openrouter", "anthropic/claude-3.5-sonnet")
    assert seed.llm.advanced_parameters == {
        "temperature": 0.9,
        "top_p": 0.95,
        "top_k": 40,
        "frequency_penalty": 0.2,
        "presence_penalty": 0.1,
        "repetition_penalty": 1.05,
        "min_p": 0.05,
        "top_a": 0.1,
        "models": ["openai/gpt-4o-mini"],
    }
    assert plan.settings == {"max_history_messages": 24, "memory_threshold": 0.3, "memory_limit": 7}
    assert seed.error_message == "*The lamp flickers.* Mira lost the thread:"
    assert seed.birthday == "03-14"
    assert seed.aliases == ["mira", "the keeper", "lamp lady"]
    assert plan.voice_id == "EXAVITQu4vr4xnSDxMaL"
    custom = plan.custom_fields
    assert custom["voice"] == {
        "model": "eleven_multilingual_v2",
        "frequency": 0.5,
        "stability": 0.4,
        "similarity": 0.8,
        "style": 0.2,
        "transcription_enabled": True,
    }
    assert custom["image"] == {
        "image_model": "flux-dev",
        "image_size": "1024x1024",
        "force_image_size": False,
    }
    assert custom["id"] == "5b0f3a52-8d1c-4a8e-9a4e-2f1d6c0e7b11"
    assert custom["favorite_reacts"] == ["🌊", "⚓"]
    assert custom["keywords"] == ["lighthouse", "sea"]
    assert custom["search_description"] == "A salty lighthouse keeper"
    assert custom["wack_message"] == "Mira shakes off the sea spray."
    assert custom["sleep_message"] == "Mira dims the lamp for the night."
    assert custom["shape_settings"] == {"dm_only": False, "nested": [1, 2]}  # unknown: kept
    assert plan.warnings == []


def test_values_tzurot_would_refuse_are_kept_aside() -> None:
    plan = plan_personality(
        parse_config(
            shape_config(
                engine_temperature=3.5,
                birthday="March 14",
                ltm_enabled=False,
                stm_window=500,
                ltm_max_retrieved_summaries=250,
            )
        )
    )
    assert plan.seed.llm is not None
    assert "temperature" not in plan.seed.llm.advanced_parameters
    assert plan.seed.birthday == ""
    assert plan.custom_fields["not_imported"] == {"engine_temperature": 3.5, "birthday": "March 14"}
    assert plan.settings["memory_limit"] == 0
    assert plan.settings["max_history_messages"] == 100
    assert len(plan.warnings) == 4


def test_memories_and_history() -> None:
    memories = parse_memories(shape_memories(3))
    assert memories[0].sender_ids == [ALICE]
    assert memories[0].created_at is not None
    assert int(memories[0].created_at.timestamp()) == 1_690_000_900
    history = parse_history(shape_history(4))
    assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]


@pytest.mark.parametrize(
    ("call", "document", "words"),
    [
        (parse_config, {"name": "x"}, "username"),
        (parse_config, [1], "must be a JSON object"),
        (parse_memories, [{"id": "a"}], "memories[0]"),
        (parse_history, [{"id": "a", "role": "narrator", "content": "x"}], "history[0]"),
    ],
)
def test_bad_documents(call: object, document: object, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        call(document)  # type: ignore[operator]
    assert words in caught.value.message
