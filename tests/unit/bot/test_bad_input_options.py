"""What `/personality voice set` declares is what the gateway takes (review: its `provider`
was unchecked), so Discord's client refuses the rest up front: a voice's provider is typed (an
operator's own speech server must be typable), as long as the gateway takes, inference's
built-in speech providers suggested as you type.

`/admin deny add` and `/lorebook import`: test_bad_input_deny_lorebook.py (apart, so that a
change of voice code does not hide them).
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from discord import app_commands

from tzurot.bot.commands import options as bot
from tzurot.bot.commands import voice as bot_voice
from tzurot.gateway import voice as gateway_voice

from .test_command_limits import bot_tree
from .test_option_limits import every_option


def test_a_voice_provider_is_typed_as_long_as_the_gateway_takes_and_autocompletes() -> None:
    """No choices: a name the operator added (`TZUROT_PROVIDERS`) is typed and the gateway,
    which asks inference, decides."""
    provider = every_option()["/personality voice set provider"]
    assert "choices" not in provider
    assert provider.get("autocomplete") is True
    assert provider.get("required") is True
    assert (provider["min_length"], provider["max_length"]) == (1, bot.LONGEST_PROVIDER)
    assert bot.LONGEST_PROVIDER == gateway_voice.MAX_PROVIDER_CHARS  # test_option_limits too


async def suggested(current: str) -> list[str]:
    """What `/personality voice set provider` suggests for `current` typed."""
    personality = bot_tree().get_command("personality")
    assert isinstance(personality, app_commands.Group)
    voice = personality.get_command("voice")
    assert isinstance(voice, app_commands.Group)
    command = voice.get_command("set")
    assert isinstance(command, app_commands.Command)
    complete = command._params["provider"].autocomplete  # what discord.py calls
    assert complete is not None
    offered = await complete(cast(Any, None), current)
    return [choice.value for choice in offered]


@pytest.mark.parametrize(
    ("current", "offered"),
    [
        ("", ["elevenlabs", "openai", "kokoro", "openedai-speech"]),
        ("open", ["openai", "openedai-speech"]),
        ("KO", ["kokoro"]),
        ("my-tts", []),  # typed all the same: the gateway decides
    ],
)
async def test_the_built_in_speech_providers_are_suggested(
    current: str, offered: list[str]
) -> None:
    assert await suggested(current) == offered


def test_those_suggested_are_the_gateways_built_in_speech_providers() -> None:
    assert bot_voice.SPEECH_PROVIDERS == gateway_voice.BUILT_IN_SPEECH_PROVIDERS
