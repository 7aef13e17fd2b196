"""Every command the bot registers is within Discord's limits (discord-api-docs, Application
Commands): Discord refuses the whole sync for one command over them, and then no slash command
works. A command that breaks one fails here, named, before it reaches Discord."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any, cast

import discord
from discord import app_commands

from tzurot.bot.activated import ActivatedChannels
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


def bot_tree() -> app_commands.CommandTree:
    """The bot's command tree, with every command it registers."""
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents(guilds=True)))
    # Only built, never called: the commands reach the gateway and the flow when run; the
    # channel commands take the flow's memory of activated channels when built.
    flow = SimpleNamespace(activated=ActivatedChannels())
    add_commands(tree, cast(GatewayClient, None), cast(MessageFlow, flow))
    return tree


def registered(tree: app_commands.CommandTree | None = None) -> list[Json]:
    """What the bot's sync sends: every command of its tree, as discord.py serializes it."""
    tree = tree or bot_tree()
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


def value_problems(item: Json, path: str) -> list[str]:
    """What breaks a limit in an option's choices and bounds; and what Discord registers all
    the same: a minimum above the maximum (an option nobody can fill), two choices alike."""
    found: list[str] = []
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
    for low, high in (("min_value", "max_value"), ("min_length", "max_length")):
        if item.get(low) is not None and item.get(high) is not None and item[low] > item[high]:
            found.append(f"{path}: {low} {item[low]} above {high} {item[high]}")
    alike = [n for n, k in Counter(c["name"] for c in choices).items() if k > 1]
    found += [f"{path}: two choices named {n!r}" for n in alike]
    return found


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
    found += value_problems(item, path)
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


def _options(item: Json, path: str) -> list[tuple[str, Json]]:
    """Every option below a command, group or subcommand, with its path (`/cmd sub option`)."""
    found: list[tuple[str, Json]] = []
    for option in item.get("options") or []:
        here = f"{path} {option['name']}"
        found += _options(option, here) if option["type"] in NESTING else [(here, option)]
    return found


def _raw_descriptions(command: app_commands.Command[Any, Any, Any]) -> dict[str, str]:
    """Each option's description as written, before discord.py shortens it to 100 characters:
    `@app_commands.describe` under `@command` keeps the text on the callback; else only the
    shortened one is left."""
    written = getattr(command.callback, "__discord_app_commands_param_description__", {})
    return {p.display_name: str(written.get(p.name, p.description)) for p in command.parameters}


def _commands(tree: app_commands.CommandTree) -> list[app_commands.Command[Any, Any, Any]]:
    """Every slash command and subcommand of the tree (context menus have no options)."""
    found: list[app_commands.Command[Any, Any, Any]] = []
    for top in tree.get_commands():
        below = top.walk_commands() if isinstance(top, app_commands.Group) else [top]
        found += [c for c in below if isinstance(c, app_commands.Command)]
    return found


def option_description_problems(tree: app_commands.CommandTree) -> list[str]:
    """Options Discord would show without a real description: discord.py's placeholder "…"
    (no `describe`), an empty one, or one over 100 characters as written (which discord.py
    silently cuts to end in "…")."""
    found: list[str] = []
    for payload in registered(tree):
        for here, option in _options(payload, f"/{payload['name']}"):
            text = option.get("description") or ""
            if text in {"", "…"}:
                found.append(f"{here}: no description ({text!r})")
            elif text.endswith("…"):
                found.append(f"{here}: description cut by discord.py: {text!r}")
    for command in _commands(tree):
        found += [
            f"/{command.qualified_name} {name}: description of {len(text)} characters "
            f"(at most 100): {text!r}"
            for name, text in _raw_descriptions(command).items()
            if len(text) > 100
        ]
    return found


def test_every_option_of_every_command_has_a_real_description() -> None:
    assert option_description_problems(bot_tree()) == []


def test_the_description_check_names_the_command_and_option() -> None:
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents(guilds=True)))
    group = app_commands.Group(name="group", description="A group")

    @group.command(name="sub", description="A subcommand")
    @app_commands.describe(long="x " * 60)
    async def sub(interaction: discord.Interaction[Any], bare: str, long: str) -> None:
        """Never run."""

    tree.add_command(group)
    found = option_description_problems(tree)
    assert found[0] == "/group sub bare: no description ('…')"
    assert found[1].startswith("/group sub long: description cut by discord.py: 'x x")
    assert found[2:] == [
        f"/group sub long: description of 120 characters (at most 100): {'x ' * 60!r}"
    ]


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


def test_the_checks_name_an_option_discord_takes_but_nobody_can_use() -> None:
    """Discord registers a minimum above the maximum (discord-api-docs issue 5149) and two
    choices of one name: an option nobody can fill, or two choices nobody can tell apart."""
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents(guilds=True)))

    @app_commands.command(name="odd", description="Never run")
    @app_commands.describe(count="A count", word="A word", pick="A pick")
    @app_commands.choices(
        pick=[app_commands.Choice(name="one", value=1), app_commands.Choice(name="one", value=2)]
    )
    async def odd(interaction: discord.Interaction[Any], count: int, word: str, pick: int) -> None:
        """Never run."""

    tree.add_command(odd)
    commands = registered(tree)
    count, word, _ = commands[0]["options"]
    count.update(min_value=10, max_value=1)
    word.update(min_length=30, max_length=3)
    assert all_problems(commands) == [
        "/odd count: min_value 10 above max_value 1",
        "/odd word: min_length 30 above max_length 3",
        "/odd pick: two choices named 'one'",
    ]
    assert bulk_overwrite_error(commands, guild=True) is None  # as Discord, the fake takes it
