"""Every command the bot registers is within Discord's limits (discord-api-docs, Application
Commands): Discord refuses the whole sync for one command over them, and then no slash command
works. A command that breaks one fails here, named, before it reaches Discord."""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

import discord
from discord import app_commands

from tzurot.bot.commands.registry import add_commands
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.messages import MessageFlow
from tzurot.testing.fake_discord import Json
from tzurot.testing.fake_discord.application_commands import bulk_overwrite_error
from tzurot.testing.fake_discord.command_rules import valid_chat_input_name

CHAT_INPUT = 1
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
NESTING = {SUB_COMMAND, SUB_COMMAND_GROUP}
MAX_COMMANDS = {CHAT_INPUT: 100, 2: 15, 3: 15}  # CHAT_INPUT, USER, MESSAGE per scope


def registered(tree: app_commands.CommandTree | None = None) -> list[Json]:
    """What the bot's sync sends: every command of its tree, as discord.py serializes it."""
    if tree is None:
        tree = app_commands.CommandTree(discord.Client(intents=discord.Intents(guilds=True)))
        # Only built, never called: the commands reach the gateway and the flow when run.
        add_commands(tree, cast(GatewayClient, None), cast(MessageFlow, None))
    return [command.to_dict(tree) for command in tree.get_commands()]


def _longest(item: Json, field: str) -> int:
    texts = [item.get(field) or "", *(item.get(f"{field}_localizations") or {}).values()]
    return max(len(text) for text in texts)


def size(item: Json) -> int:
    """Discord's count against 8000: names, descriptions, choice names and values, recursively,
    each field's longest localization."""
    total = _longest(item, "name") + _longest(item, "description")
    for choice in item.get("choices") or []:
        total += _longest(choice, "name") + len(str(choice["value"]))
    return total + sum(size(option) for option in item.get("options") or [])


def problems(item: Json, path: str, *, top: bool = False) -> list[str]:
    """What breaks a limit in a slash command (`top`), group, subcommand or option, and below."""
    found: list[str] = []
    texts = [item["name"], *(item.get("name_localizations") or {}).values()]
    found += [
        f"{path}: name {n!r} is not 1-32 of -_' letters, numbers, lowercase"
        for n in texts
        if not valid_chat_input_name(n)
    ]
    texts = [item.get("description") or "", *(item.get("description_localizations") or {}).values()]
    found += [
        f"{path}: description of {len(d)} characters (1-100): {d!r}"
        for d in texts
        if not 1 <= len(d) <= 100
    ]
    options: list[Json] = item.get("options") or []
    if len(options) > 25:
        found.append(f"{path}: {len(options)} options (at most 25)")
    twice = [n for n, k in Counter(o["name"] for o in options).items() if k > 1]
    found += [f"{path}: two options named {n!r}" for n in twice]
    plain = [o for o in options if o["type"] not in NESTING]
    if plain and len(plain) < len(options):
        found.append(f"{path}: subcommands mixed with options")
    required = [bool(o.get("required")) for o in plain]
    if required != sorted(required, reverse=True):
        found.append(f"{path}: a required option after an optional one")
    choices: list[Json] = item.get("choices") or []
    if len(choices) > 25:
        found.append(f"{path}: {len(choices)} choices (at most 25)")
    if choices and item.get("autocomplete"):
        found.append(f"{path}: autocomplete with choices")
    for choice in choices:
        value = choice["value"]
        if not 1 <= len(choice["name"]) <= 100 or (isinstance(value, str) and len(value) > 100):
            found.append(f"{path}: choice {choice['name']!r} over 100 characters")
    if not 0 <= item.get("min_length", 0) <= 6000 or not 1 <= item.get("max_length", 1) <= 6000:
        found.append(f"{path}: min_length/max_length outside 0-6000/1-6000")
    for option in options:
        here = f"{path} {option['name']}"
        # The only nesting: command → group → subcommand → options.
        if item["type"] == SUB_COMMAND_GROUP and not top:
            nested_well = option["type"] == SUB_COMMAND
        else:
            nested_well = top or option["type"] not in NESTING
        if not nested_well:
            found.append(f"{here}: nested deeper than Discord allows")
        found += problems(option, here)
    return found


def all_problems(commands: list[Json]) -> list[str]:
    found: list[str] = []
    kinds = Counter(c.get("type", CHAT_INPUT) for c in commands)
    found += [
        f"{k} commands of type {t} (at most {MAX_COMMANDS[t]})"
        for t, k in kinds.items()
        if k > MAX_COMMANDS[t]
    ]
    names = Counter((c.get("type", CHAT_INPUT), c["name"]) for c in commands)
    found += [f"two commands named {n!r}" for (_, n), k in names.items() if k > 1]
    for command in commands:
        path = f"/{command['name']}"
        if command.get("type", CHAT_INPUT) != CHAT_INPUT:  # a context menu
            if not 1 <= len(command["name"]) <= 32 or command.get("description"):
                found.append(f"{command['name']!r}: 1-32 characters and no description")
            continue
        found += problems(command, path, top=True)
        if size(command) > 8000:
            found.append(f"{path}: {size(command)} characters in all (at most 8000)")
    return found


def test_every_registered_command_is_within_discords_limits() -> None:
    commands = registered()
    assert {c["name"] for c in commands} >= {"wallet", "character", "Inspect", "Speak"}
    assert all_problems(commands) == []


def test_discord_as_the_fake_plays_it_accepts_the_command_set() -> None:
    commands = registered()
    assert bulk_overwrite_error(commands, guild=False) is None
    assert bulk_overwrite_error(commands, guild=True) is None


def test_the_checks_name_a_command_over_the_limits() -> None:
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents(guilds=True)))

    @app_commands.command(name="long", description="x" * 115)
    async def long(interaction: discord.Interaction[Any], text: str) -> None:
        """Never run."""

    tree.add_command(long)
    found = all_problems(registered(tree))
    assert found == [f"/long: description of 115 characters (1-100): {'x' * 115!r}"]
    assert bulk_overwrite_error(registered(tree), guild=True) is not None
