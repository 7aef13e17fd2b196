"""A value of a shapes.inc configuration Tzurot would refuse is kept aside (custom fields,
`not_imported`) with a warning, and the rest is imported: a text over UpdatePersonality's
limit, a voice id over 200 characters, an avatar that is not a well formed http(s) URL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tzurot.cli.shapes_import import read_backup
from tzurot.gateway.admin.base import MAX_TEXT
from tzurot.gateway.personalities import AVATAR_URL_LIMIT
from tzurot.gateway.shapes.documents import load_json, parse_config
from tzurot.gateway.shapes.mapping import (
    MAX_ALIASES,
    MAX_TEXT_CHARS,
    MAX_VOICE_ID_CHARS,
    ShapePlan,
    plan_personality,
)
from tzurot.testing.shapes_backup import shape_config, write_backup

LONG = "You are Mira. " * 5_000  # 70,000 characters


def planned(tmp_path: Path, **changes: Any) -> ShapePlan:
    """The plan of a backup written to disk and read back as the CLI reads it."""
    backup = read_backup(write_backup(tmp_path / "backup", config=shape_config(**changes)).folder)
    return plan_personality(parse_config(load_json(backup.config, source="c", root="config")))


def test_the_limits_are_the_ones_updates_apply() -> None:
    assert MAX_TEXT_CHARS == MAX_TEXT
    assert MAX_VOICE_ID_CHARS == 200


def test_a_jailbreak_over_the_limit_is_kept_aside_with_a_warning(tmp_path: Path) -> None:
    assert len(LONG.strip()) > MAX_TEXT_CHARS
    plan = planned(tmp_path, jailbreak=LONG)
    assert plan.seed.system_prompt == ""
    assert plan.custom_fields["not_imported"] == {"jailbreak": LONG.strip()}
    assert plan.warnings == [
        f"jailbreak is {len(LONG.strip())} characters, over Tzurot's {MAX_TEXT_CHARS}; "
        "kept in custom fields"
    ]
    assert plan.seed.name == "Mira Vale"  # the rest is imported
    assert plan.seed.avatar_url == "https://files.shapes.inc/avatars/mira.png"
    assert plan.voice_id == "EXAVITQu4vr4xnSDxMaL"


def test_a_jailbreak_at_the_limit_is_imported(tmp_path: Path) -> None:
    plan = planned(tmp_path, jailbreak="x" * MAX_TEXT_CHARS)
    assert len(plan.seed.system_prompt) == MAX_TEXT_CHARS
    assert "not_imported" not in plan.custom_fields
    assert plan.warnings == []


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("user_prompt", lambda plan: plan.seed.character.description),
        ("personality_conversational_examples", lambda plan: plan.seed.character.example_dialogues),
    ],
)
def test_character_texts_over_the_limit_are_kept_aside(
    tmp_path: Path, field: str, where: Any
) -> None:
    plan = planned(tmp_path, **{field: LONG})
    assert where(plan) == ""
    assert plan.custom_fields["not_imported"] == {field: LONG.strip()}
    assert len(plan.warnings) == 1
    assert plan.warnings[0].startswith(f"{field} is ")


def test_traits_over_the_limit_together_are_kept_aside(tmp_path: Path) -> None:
    half = "w" * (MAX_TEXT_CHARS // 2)
    plan = planned(tmp_path, personality_traits=half, personality_tone=half)
    assert plan.seed.character.personality == ""
    kept = plan.custom_fields["not_imported"]
    assert (kept["personality_traits"], kept["personality_tone"]) == (half, half)
    assert kept["personality_age"] == "67"
    assert len(plan.warnings) == 1
    assert "personality traits" in plan.warnings[0]


@pytest.mark.parametrize(
    "avatar",
    [
        "https://",
        "https://files.shapes.inc/a b.png",
        "https://files.shapes.inc/" + "a" * AVATAR_URL_LIMIT,
        "ftp://files.shapes.inc/mira.png",
        "files.shapes.inc/mira.png",
    ],
)
def test_a_malformed_avatar_url_is_skipped_with_a_warning(tmp_path: Path, avatar: str) -> None:
    plan = planned(tmp_path, avatar=avatar)
    assert plan.seed.avatar_url == ""
    assert plan.custom_fields["not_imported"] == {"avatar": avatar}
    assert len(plan.warnings) == 1
    assert plan.warnings[0].startswith("the avatar is not a URL Discord takes (")
    assert "imported without one" in plan.warnings[0]
    assert "files.shapes.inc" not in plan.warnings[0]  # a warning does not quote the URL
    assert plan.seed.system_prompt.startswith("You are Mira Vale")


def test_no_avatar_is_no_warning(tmp_path: Path) -> None:
    plan = planned(tmp_path, avatar="")
    assert (plan.seed.avatar_url, plan.warnings) == ("", [])


def test_a_voice_id_over_200_characters_is_kept_aside(tmp_path: Path) -> None:
    voice_id = "v" * (MAX_VOICE_ID_CHARS + 1)
    plan = planned(tmp_path, voice_id=voice_id)
    assert plan.voice_id == ""
    assert plan.custom_fields["not_imported"] == {"voice_id": voice_id}
    assert plan.warnings == [
        f"voice_id is {MAX_VOICE_ID_CHARS + 1} characters, over Tzurot's {MAX_VOICE_ID_CHARS}; "
        "kept in custom fields"
    ]
    assert plan.custom_fields["voice"]["model"] == "eleven_multilingual_v2"  # the rest kept
    assert planned(tmp_path, voice_id="v" * MAX_VOICE_ID_CHARS).voice_id == "v" * 200


def test_an_engine_model_name_over_200_characters_is_kept_aside(tmp_path: Path) -> None:
    model = "m" * 201
    plan = planned(tmp_path, engine_model=model)
    assert plan.seed.llm is None
    assert plan.custom_fields["not_imported"] == {"engine_model": model}
    assert len(plan.warnings) == 1


def test_aliases_past_the_fiftieth_are_kept_aside(tmp_path: Path) -> None:
    aliases = [f"alias {n}" for n in range(MAX_ALIASES + 5)]
    plan = planned(tmp_path, aliases=aliases)
    assert plan.seed.aliases == aliases[:MAX_ALIASES]
    assert plan.custom_fields["not_imported"] == {"aliases": aliases[MAX_ALIASES:]}
    assert len(plan.warnings) == 1


def test_everything_refused_at_once_is_one_warning_each(tmp_path: Path) -> None:
    plan = planned(tmp_path, jailbreak=LONG, avatar="https://", voice_id="v" * 300)
    assert set(plan.custom_fields["not_imported"]) == {"jailbreak", "avatar", "voice_id"}
    assert len(plan.warnings) == 3
    json.dumps(plan.custom_fields)  # still JSON for the custom_fields column
