"""A gateway `Personality` for unit tests: the catalog row with plain defaults, so a test
names only the fields it is about (test_mentions.py, test_name_keys_sigma.py, …)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from tzurot.gateway.domain import CharacterFields, Personality

NOW = datetime(2025, 1, 1, tzinfo=UTC)
"""When the factory's personalities were created and last updated, unless a test says."""


def personality(slug: str, display_name: str, *aliases: str, **overrides: Any) -> Personality:
    """Public personality `slug` (its id too) with no prompt, owner, default config or card,
    created and updated at NOW; `overrides` replace any field."""
    made = Personality(
        id=slug,
        slug=slug,
        display_name=display_name,
        aliases=aliases,
        avatar_url="",
        system_prompt="",
        character=CharacterFields(),
        default_llm_config_id=None,
        error_message="",
        birthday="",
        owner_user_id=None,
        public=True,
        nsfw=False,
        created_at=NOW,
        updated_at=NOW,
    )
    return replace(made, **overrides)
