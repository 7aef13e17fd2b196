"""What the name and alias rule tests share: a personality as CreatePersonality describes it,
and the refusal they expect."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tzurot.gateway.domain import CharacterFields, Personality
from tzurot.runtime.errors import AlreadyExists

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def draft(
    name: str, *, slug: str = "", aliases: tuple[str, ...] = (), public: bool = True
) -> Personality:
    """A personality as CreatePersonality describes it."""
    return Personality(
        id="",
        slug=slug,
        display_name=name,
        aliases=aliases,
        avatar_url="",
        system_prompt=f"You are {name}.",
        character=CharacterFields(),
        default_llm_config_id=None,
        error_message="",
        birthday="",
        owner_user_id=None,
        public=public,
        nsfw=False,
        created_at=NOW,  # ignored on create
        updated_at=NOW,
    )


async def refused(call: object, reason: str) -> AlreadyExists:
    """The AlreadyExists `call` raises, its reason `reason`."""
    with pytest.raises(AlreadyExists) as caught:
        await call  # type: ignore[misc]
    assert caught.value.reason == reason, caught.value
    return caught.value
