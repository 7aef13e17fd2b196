"""A shapes.inc backup folder written from the documented field list (SHAPES_BACKUP.md),
for the import tests: configuration, long-term memory summaries and chat history."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHAPE_ID = "5b0f3a52-8d1c-4a8e-9a4e-2f1d6c0e7b11"
ALICE = "0c9d7e2a-1111-4a4a-9e9e-000000000001"
BOB = "0c9d7e2a-2222-4a4a-9e9e-000000000002"
STRANGER = "0c9d7e2a-3333-4a4a-9e9e-000000000003"
BASE_TS = 1_690_000_000


def shape_config(**changes: Any) -> dict[str, Any]:
    """Every field of the configuration table, plus one unknown field."""
    config: dict[str, Any] = {
        "id": SHAPE_ID,
        "name": "Mira Vale",
        "username": "mira-vale",
        "avatar": "https://files.shapes.inc/avatars/mira.png",
        "jailbreak": "You are Mira Vale, a lighthouse keeper who speaks in sea metaphors.",
        "user_prompt": "Mira keeps the Greyhaven light and has for forty years.",
        "personality_traits": "patient, wry, stubborn",
        "personality_tone": "warm and salty",
        "personality_age": "67",
        "personality_appearance": "oilskin coat, silver braid",
        "personality_likes": "storms, strong tea",
        "personality_dislikes": "landlubbers, fog horns at night",
        "personality_conversational_goals": "teach sailors to read the weather",
        "personality_conversational_examples": (
            "{{user}}: Storm coming?\n{{char}}: Smell that? Rain by dusk."
        ),
        "engine_model": "anthropic/claude-3.5-sonnet",
        "fallback_engine_model": "openai/gpt-4o-mini",
        "engine_temperature": 0.9,
        "engine_top_p": 0.95,
        "engine_top_k": 40,
        "engine_frequency_penalty": 0.2,
        "engine_presence_penalty": 0.1,
        "engine_repetition_penalty": 1.05,
        "engine_min_p": 0.05,
        "engine_top_a": 0.1,
        "stm_window": 24,
        "ltm_enabled": True,
        "ltm_threshold": 0.3,
        "ltm_max_retrieved_summaries": 7,
        "voice_model": "eleven_multilingual_v2",
        "voice_id": "EXAVITQu4vr4xnSDxMaL",
        "voice_frequency": 0.5,
        "voice_stability": 0.4,
        "voice_similarity": 0.8,
        "voice_style": 0.2,
        "voice_transcription_enabled": True,
        "image_model": "flux-dev",
        "image_size": "1024x1024",
        "force_image_size": False,
        "error_message": "*The lamp flickers.* Mira lost the thread:",
        "birthday": "03-14",
        "favorite_reacts": ["🌊", "⚓"],
        "keywords": ["lighthouse", "sea"],
        "search_description": "A salty lighthouse keeper",
        "wack_message": "Mira shakes off the sea spray.",
        "sleep_message": "Mira dims the lamp for the night.",
        "aliases": ["mira", "the keeper"],
        "shape_settings": {"dm_only": False, "nested": [1, 2]},
    }
    return config | changes


def shape_memories(count: int = 6) -> list[dict[str, Any]]:
    """Summaries: alternately about Alice, Bob and a stranger nobody mapped."""
    senders = [ALICE, BOB, STRANGER]
    items = []
    for index in range(count):
        first, last = uuid.UUID(int=index * 2 + 1), uuid.UUID(int=index * 2 + 2)
        who = senders[index % 3]
        start = BASE_TS + index * 86_400
        items.append(
            {
                "id": f"{first}/{last}",
                "shape_id": SHAPE_ID,
                "senders": [who],
                "result": f"Summary {index}: {_topic(index)}",
                "metadata": {
                    "start_ts": start,
                    "end_ts": start + 600,
                    "created_at": start + 900,
                    "senders": [who],
                    "discord_channel_id": "700000000000000001",
                    "discord_guild_id": "700000000000000000",
                },
            }
        )
    return items


def long_summary() -> str:
    """A real-sized summary (~11 KB, as in a backup seen in the wild: 107 in ~1.2 MB):
    twelve paragraphs of one evening's talk, one of them over 2,000 characters."""
    return (Path(__file__).parent / "shapes_long_summary.txt").read_text(encoding="utf-8")


def long_summary_memory(index: int = 90, *, created_at_ms: int | None = None) -> dict[str, Any]:
    """Alice's long summary, its times in milliseconds (as some backup tools write them)."""
    first, last = uuid.UUID(int=index * 2 + 1), uuid.UUID(int=index * 2 + 2)
    created = created_at_ms if created_at_ms is not None else (BASE_TS + 5_000) * 1000
    return {
        "id": f"{first}/{last}",
        "shape_id": SHAPE_ID,
        "senders": [ALICE],
        "result": long_summary(),
        "metadata": {
            "start_ts": created - 3_600_000,
            "end_ts": created - 60_000,
            "created_at": created,
            "senders": [ALICE],
            "discord_channel_id": "700000000000000001",
            "discord_guild_id": "700000000000000000",
        },
    }


def _topic(index: int) -> str:
    topics = [
        "Alice told Mira about her sailboat named Kestrel and the storm that nearly sank it.",
        "Bob asked Mira how to read cirrus clouds before a front comes in.",
        "A stranger argued with Mira about whether the old foghorn should be restored.",
        "Alice promised to bring Mira a tin of smoked Lapsang tea from the harbour market.",
        "Bob learned to tie a bowline knot and proudly showed Mira.",
        "A visitor asked about the shipwreck of the Marigold in 1952.",
    ]
    return topics[index % len(topics)]


def shape_history(count: int = 8) -> list[dict[str, Any]]:
    items = []
    for index in range(count):
        user_turn = index % 2 == 0
        items.append(
            {
                "id": str(uuid.UUID(int=1000 + index)),
                "shape_id": SHAPE_ID,
                "user_id": ALICE if user_turn else "",
                "role": "user" if user_turn else "assistant",
                "content": f"message {index}",
                "timestamp": BASE_TS + index * 60,
            }
        )
    return items


@dataclass
class ShapesBackup:
    folder: Path
    config: dict[str, Any]
    memories: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def write_backup(
    folder: Path,
    *,
    config: dict[str, Any] | None = None,
    memories: list[dict[str, Any]] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> ShapesBackup:
    """The folder, with file names unlike the documents' kinds (the importer goes by shape)."""
    folder.mkdir(parents=True, exist_ok=True)
    backup = ShapesBackup(
        folder,
        config if config is not None else shape_config(),
        memories if memories is not None else shape_memories(),
        history if history is not None else shape_history(),
    )
    (folder / "a.json").write_text(json.dumps(backup.memories), encoding="utf-8")
    (folder / "b.json").write_text(json.dumps(backup.config), encoding="utf-8")
    (folder / "c.json").write_text(json.dumps(backup.history), encoding="utf-8")
    (folder / "notes.txt").write_text("not a document", encoding="utf-8")
    return backup
