"""What `/admin deny add` and `/lorebook import` declare is what the gateway takes (review:
their `scope_id` and `name` were unchecked), so Discord's client refuses the rest up front;
what gets through to be refused is answered in the user's words, naming the option:

- a server's or a channel's id: at most 20 characters, the most digits a Discord id within
  64 bits has; a personality scope has its own option, as long as any personality name; a
  channel scope taken from a thread is that thread, and the reply says so;
- a lorebook's name: the gateway's `MAX_LOREBOOK_NAME`; the file's name standing in for it is
  cut between characters as a reader sees them.

Apart from the voice options' checks (test_bad_input_options.py): a change of voice code does
not hide these.
"""

from __future__ import annotations

import discord
import pytest

from tzurot.bot.commands import options as bot
from tzurot.bot.commands.admin import refusal_text, scope_misfit, thread_note
from tzurot.bot.commands.lorebooks import default_name
from tzurot.gateway.admin.channels import discord_id
from tzurot.gateway.cards.lorebooks import MAX_LOREBOOK_NAME
from tzurot.gateway.ids import MAX_SNOWFLAKE, is_snowflake
from tzurot.runtime.errors import InvalidArgument, NotFound, PermissionDenied
from tzurot.testing.fake_discord import Json

from .test_command_limits import registered


def declared(where: str) -> Json:
    """The option at `where` ("/admin deny add scope_id"), as the bot's sync sends it."""
    command, *names = where.removeprefix("/").split()
    (item,) = [c for c in registered() if c["name"] == command]
    for name in names:
        (item,) = [o for o in item.get("options") or [] if o["name"] == name]
    return item


# ---- /admin deny add ----


def test_a_discord_id_option_is_as_long_as_the_longest_id_the_gateway_takes() -> None:
    longest = str(MAX_SNOWFLAKE)
    assert len(longest) == bot.LONGEST_DISCORD_ID
    assert is_snowflake(longest)
    assert not is_snowflake(longest + "0")
    for where in ("/admin deny add scope_id", "/admin deny add guild_id"):
        option = declared(where)
        assert (option.get("min_length"), option.get("max_length")) == (1, 20), where


def test_a_personality_scope_is_its_own_option_which_autocompletes() -> None:
    personality = declared("/admin deny add personality")
    assert (personality["min_length"], personality["max_length"]) == (
        1,
        bot.LONGEST_PERSONALITY_NAME,
    )
    assert personality.get("autocomplete") is True
    assert not personality.get("required")


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


class Thread(discord.Thread):
    """A thread (or a forum post) as the interaction gives it: its id and its channel's."""

    def __init__(self, thread_id: int, parent_id: int) -> None:
        self.id, self.parent_id = thread_id, parent_id


def test_a_channel_scope_taken_from_a_thread_is_said_to_be_that_thread_alone() -> None:
    note = thread_note(Thread(103, parent_id=102))
    assert note == (
        "\nThat is this thread alone; to deny in all of its channel, give `scope_id: 102`."
    )


@pytest.mark.parametrize("channel", [None, object()])
def test_a_channel_scope_taken_from_a_channel_needs_no_word(channel: object) -> None:
    assert thread_note(channel) == ""


def refused(field: str, value: str, of: str) -> InvalidArgument:
    """The gateway's own refusal of `value` in `field` (what the bot decodes)."""
    with pytest.raises(InvalidArgument) as caught:
        discord_id(field, value, of)
    return caught.value


@pytest.mark.parametrize(
    ("field", "scope", "value", "of", "said"),
    [
        ("entry.scope_id", "channel", "general", "channel", "Nothing added (`scope_id`): "
         "'general' is not a Discord channel id: one is digits only, at most 20 and not "
         "starting with 0 (like 123456789012345678)"),
        ("entry.scope_id", "guild", "0", "server", "Nothing added (`scope_id`): "
         "'0' is not a Discord server id: one is digits only, at most 20 and not starting "
         "with 0 (like 123456789012345678)"),
        ("entry.target_id", "bot", "my-server", "server", "Nothing added (`guild_id`): "
         "'my-server' is not a Discord server id: one is digits only, at most 20 and not "
         "starting with 0 (like 123456789012345678)"),
    ],
)  # fmt: skip
def test_a_refused_id_is_told_by_the_option_it_was_typed_in(
    field: str, scope: str, value: str, of: str, said: str
) -> None:
    """Not by the request's field (`entry.scope_id`, no Discord user saw one), which the
    gateway still sends for API clients (BadRequest)."""
    err = refused(field, value, of)
    assert err.field == field
    text = refusal_text(err, scope)
    assert text == said
    assert "entry." not in text


def test_a_personality_scopes_refusal_names_the_personality_option() -> None:
    err = InvalidArgument("entry.scope_id", "a personality entry names one")
    assert refusal_text(err, "personality") == (
        "Nothing added (`personality`): a personality entry names one"
    )


def test_other_refusals_are_said_as_everywhere() -> None:
    denied = PermissionDenied("only superusers manage the denylist")
    assert refusal_text(denied, "channel") == "only superusers manage the denylist"
    gone = NotFound("no personality named 'x'", reason="PERSONALITY_NOT_FOUND")
    assert refusal_text(gone, "personality") == "no personality named 'x'"
    unnamed = InvalidArgument("entry.mode", "a mode is block or mute")
    assert refusal_text(unnamed, "bot") == "Nothing added: a mode is block or mute"


# ---- /lorebook import ----


def test_a_lorebook_name_is_as_long_as_the_gateway_takes() -> None:
    assert bot.LONGEST_LOREBOOK_NAME == MAX_LOREBOOK_NAME
    name = declared("/lorebook import name")
    assert (name["min_length"], name["max_length"]) == (1, MAX_LOREBOOK_NAME)


def test_a_files_name_stands_in_for_a_name_cut_to_the_limit() -> None:
    """No name was typed: the file's, without its extension, never one to refuse."""
    assert default_name("haunts.json") == "haunts"
    assert default_name("my.world.info.json") == "my.world.info"
    assert default_name("L" * 150 + ".json") == "L" * MAX_LOREBOOK_NAME


@pytest.mark.parametrize(
    ("ending", "kept"),
    [
        ("👍🏽", ""),  # a thumb and its skin tone: both or neither
        ("e\u0301", ""),  # a letter and its accent
        ("🇫🇷", ""),  # a flag's two letters
        ("👨\u200d👩\u200d👧", ""),  # a family, joined (ZWJ)
        ("✌\ufe0f", ""),  # an emoji and its presentation selector
        (" b", ""),  # the space before the cut: the gateway would drop it
        ("b", "b"),  # one that fits
    ],
)
def test_the_cut_falls_between_characters_as_a_reader_sees_them(ending: str, kept: str) -> None:
    """The last one the limit reaches into is left out whole (review: a skin tone, an accent
    were cut off the last character, stored and shown in `/lorebook list`)."""
    before = "a" * (MAX_LOREBOOK_NAME - 1)
    name = default_name(f"{before}{ending}.json")
    assert name == before + kept
    assert len(name) <= MAX_LOREBOOK_NAME


def test_as_many_whole_characters_as_fit_are_kept() -> None:
    accented = "e\u0301\u0323"  # one character as a reader sees it, three code points
    name = default_name(accented * 40 + ".json")
    assert name == accented * (MAX_LOREBOOK_NAME // 3)  # 33 of them: 99 code points


def test_a_space_bound_to_a_mark_before_it_goes_with_the_mark() -> None:
    """U+0600 and the space after it are one character (UAX #29 GB9b): the cut keeps both,
    and the space, dropped alone, would leave the mark bare (review F3)."""
    name = default_name("T" * (MAX_LOREBOOK_NAME - 2) + "\u0600 xyz.json")
    assert name == "T" * (MAX_LOREBOOK_NAME - 2)
