"""What the fake Discord shows of the voice tests' answers: voice messages, and the bot's own
notices."""

from __future__ import annotations

from collections.abc import Callable

from tzurot.testing.discord_e2e import World
from tzurot.testing.fake_discord import Json
from tzurot.testing.fake_discord.records import Posted
from tzurot.testing.fake_discord.voice_messages import IS_VOICE_MESSAGE


def voice_messages(world: World, channel: Json) -> list[Posted]:
    return [
        m
        for m in world.discord.messages.get(int(channel["id"]), [])
        if int(m.data.get("flags") or 0) & IS_VOICE_MESSAGE
    ]


def spoken_count(world: World, n: int) -> Callable[[], bool]:
    """Whether `n` voice messages were posted in the general channel."""
    return lambda: len(voice_messages(world, world.general)) == n


def bot_texts(world: World, channel: Json) -> list[Posted]:
    """What the bot posted with words (its notices), not its voice messages, oldest first."""
    bot = str(world.discord.bot_user["id"])
    return [
        m
        for m in world.discord.messages.get(int(channel["id"]), [])
        if not m.webhook_id
        and not m.deleted
        and m.data["author"]["id"] == bot
        and not int(m.data.get("flags") or 0) & IS_VOICE_MESSAGE
    ]
