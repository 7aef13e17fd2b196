"""What `/admin deny add`, `/personality voice set` and `/lorebook import` declare is what the
gateway takes (review: their `scope_id`, `provider` and `name` were unchecked), so Discord's
client refuses the rest up front:

- a server's or a channel's id: at most 20 characters, the most digits a Discord id within
  64 bits has; a personality scope has its own option, as long as any personality name;
- a voice's provider: exactly the gateway's `SPEECH_PROVIDERS`, as choices;
- a lorebook's name: the gateway's `MAX_LOREBOOK_NAME`.
"""

from __future__ import annotations

import pytest

from tzurot.bot.commands import options as bot
from tzurot.bot.commands.admin import scope_misfit
from tzurot.bot.commands.lorebooks import default_name
from tzurot.gateway.cards.lorebooks import MAX_LOREBOOK_NAME
from tzurot.gateway.ids import MAX_SNOWFLAKE, is_snowflake
from tzurot.gateway.voice import SPEECH_PROVIDERS

from .test_option_limits import every_option


def test_a_discord_id_option_is_as_long_as_the_longest_id_the_gateway_takes() -> None:
    longest = str(MAX_SNOWFLAKE)
    assert len(longest) == bot.LONGEST_DISCORD_ID
    assert is_snowflake(longest)
    assert not is_snowflake(longest + "0")
    options = every_option()
    for where in ("/admin deny add scope_id", "/admin deny add guild_id"):
        declared = options[where]
        assert (declared.get("min_length"), declared.get("max_length")) == (1, 20), where


def test_a_personality_scope_is_its_own_option_which_autocompletes() -> None:
    personality = every_option()["/admin deny add personality"]
    assert (personality["min_length"], personality["max_length"]) == (
        1,
        bot.LONGEST_PERSONALITY_NAME,
    )
    assert personality.get("autocomplete") is True
    assert not personality.get("required")


def test_a_voice_provider_is_one_of_the_gateways() -> None:
    provider = every_option()["/personality voice set provider"]
    offered = [c["value"] for c in provider["choices"]]
    assert offered == list(bot.SPEECH_PROVIDERS) == list(SPEECH_PROVIDERS)
    assert [c["name"] for c in provider["choices"]] == offered
    assert provider.get("required") is True


def test_a_lorebook_name_is_as_long_as_the_gateway_takes() -> None:
    assert bot.LONGEST_LOREBOOK_NAME == MAX_LOREBOOK_NAME
    name = every_option()["/lorebook import name"]
    assert (name["min_length"], name["max_length"]) == (1, MAX_LOREBOOK_NAME)


def test_a_files_name_stands_in_for_a_name_cut_to_the_limit() -> None:
    """No name was typed: the file's, without its extension, never one to refuse."""
    assert default_name("haunts.json") == "haunts"
    assert default_name("my.world.info.json") == "my.world.info"
    assert default_name("L" * 150 + ".json") == "L" * MAX_LOREBOOK_NAME


@pytest.mark.parametrize(
    ("scope", "scope_id", "personality", "misfit"),
    [
        ("bot", "", "", None),
        ("guild", "", "", None),
        ("channel", "123456789012345678", "", None),
        ("personality", "", "lilith", None),
        ("personality", "", "  ", "name the personality (the `personality` option)."),
        ("personality", "lilith", "", "with `scope: personality`, name the personality in "),
        ("guild", "", "lilith", "`personality` goes with `scope: personality`, not `scope: guild`"),
        ("bot", "123", "", "`scope_id` goes with `scope: guild` or `channel`"),
    ],
)
def test_options_that_do_not_fit_the_scope_are_refused_by_the_bot(
    scope: str, scope_id: str, personality: str, misfit: str | None
) -> None:
    said = scope_misfit(scope, scope_id, personality)
    if misfit is None:
        assert said is None
    else:
        assert said is not None
        assert said.startswith(misfit)
