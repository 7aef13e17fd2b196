"""Every option of the bot's commands that names a personality or an alias, or gives a name,
declares a `max_length` (Discord's own limit is 6000 characters), so Discord refuses a name
longer than any a personality can have before it reaches the bot, let alone the gateway."""

from __future__ import annotations

from collections.abc import Iterator

from tzurot.bot.commands.options import LONGEST_NAME, LONGEST_PERSONALITY_NAME
from tzurot.gateway.admin.base import MAX_NAME
from tzurot.gateway.store.personalities import LONGEST_NAME as GATEWAY_LONGEST_NAME
from tzurot.testing.fake_discord import Json

from .test_command_limits import registered

STRING = 3
NESTING = {1, 2}  # SUB_COMMAND, SUB_COMMAND_GROUP
MAX_CHOICE_VALUE = 100  # what an autocomplete choice's value holds
LONGEST_SLUG = 63


def string_options(item: Json, path: str) -> Iterator[tuple[str, Json]]:
    for option in item.get("options") or []:
        where = f"{path} {option['name']}"
        if option["type"] in NESTING:
            yield from string_options(option, where)
        elif option["type"] == STRING:
            yield where, option


def every_string_option() -> dict[str, Json]:
    return {
        where: option
        for command in registered()
        for where, option in string_options(command, f"/{command['name']}")
    }


def bounds(option: Json) -> tuple[int | None, int | None]:
    return option.get("min_length"), option.get("max_length")


def test_every_personality_option_is_as_long_as_a_name_and_no_longer() -> None:
    options = {w: o for w, o in every_string_option().items() if w.endswith(" personality")}
    assert len(options) > 40  # every command that takes one
    wrong = {w: bounds(o) for w, o in options.items() if bounds(o) != (1, 100)}
    assert wrong == {}


def test_every_alias_and_new_name_option_is_as_long_as_the_gateway_allows() -> None:
    options = every_string_option()
    named = [
        "/alias add alias",
        "/alias remove alias",
        "/character alias add alias",
        "/character alias remove alias",
        "/character create name",
        "/llm-config create name",
    ]
    assert {w: bounds(options[w]) for w in named} == dict.fromkeys(named, (1, 80))


def test_the_bounds_fit_every_name_a_personality_can_have() -> None:
    """A display name or alias (the gateway's limit, with an '@') and a slug fit; no longer
    than what picking an autocomplete choice sends."""
    assert LONGEST_NAME == MAX_NAME == GATEWAY_LONGEST_NAME
    assert max(LONGEST_NAME + 1, LONGEST_SLUG) <= LONGEST_PERSONALITY_NAME <= MAX_CHOICE_VALUE
