"""Autocomplete sources shared by several commands.

Discord gives an autocomplete the same 3 s as any interaction, so the backend's answer is
awaited for `AUTOCOMPLETE_BUDGET` seconds at most; past that the last answer for this user
(if younger than `CACHE_SECONDS`) is used, or no suggestions. A late answer still fills the
cache, so the next keystroke has it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands

from tzurot.bot.commands.common import (
    CHOICE_LIMIT,
    actor,
    choice_name,
    choices,
    choosable,
    named,
)
from tzurot.bot.commands.words import plural
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import TzurotError
from tzurot.runtime.graphemes import clipped
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

AUTOCOMPLETE_BUDGET = 1.5
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 2048


class _Cache:
    """The last list of values per (source, user), bounded, with the time it was fetched."""

    def __init__(self) -> None:
        self._values: OrderedDict[tuple[str, int], tuple[float, list[tuple[str, str]]]] = (
            OrderedDict()
        )
        self._pending: dict[tuple[str, int], asyncio.Task[list[tuple[str, str]]]] = {}

    async def get(
        self, key: tuple[str, int], fetch: Callable[[], Awaitable[list[tuple[str, str]]]]
    ) -> list[tuple[str, str]]:
        cached = self._values.get(key)
        if cached is not None and time.monotonic() - cached[0] > CACHE_SECONDS:
            cached = None
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fill(key, fetch))
            self._pending[key] = task
        try:
            return await asyncio.wait_for(asyncio.shield(task), AUTOCOMPLETE_BUDGET)
        except (TimeoutError, TzurotError):
            return cached[1] if cached is not None else []

    async def _fill(
        self, key: tuple[str, int], fetch: Callable[[], Awaitable[list[tuple[str, str]]]]
    ) -> list[tuple[str, str]]:
        try:
            values = await fetch()
        finally:
            self._pending.pop(key, None)
        self._values[key] = (time.monotonic(), values)
        self._values.move_to_end(key)
        while len(self._values) > CACHE_ENTRIES:
            self._values.popitem(last=False)
        return values


_cache = _Cache()


async def cached_values(
    source: str, interaction: discord.Interaction, fetch: Callable[[], Awaitable[list[str]]]
) -> list[str]:
    """`fetch()` within the autocomplete budget, else its last answer for this user."""

    async def pairs() -> list[tuple[str, str]]:
        return [(v, v) for v in await fetch()]

    return [v for v, _ in await _cache.get((source, interaction.user.id), pairs)]


async def personality_choices(
    gateway: GatewayClient, interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    async def fetch() -> list[tuple[str, str]]:
        found = await gateway.personalities(actor(interaction))
        return [(p.display_name, p.display_name) for p in found]

    values = await _cache.get(("personalities", interaction.user.id), fetch)
    return choices([name for name, _ in values], current)


async def owned_personality_choices(
    gateway: GatewayClient, interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    """The personalities the user owns (for what only an owner does: deleting one), by name,
    each chosen by its slug (exactly that one, whatever else shares its name). Only a
    suggestion: the gateway decides who may, a superuser included."""

    async def fetch() -> list[tuple[str, str]]:
        found = await gateway.personalities(actor(interaction), owned_only=True)
        return [(p.display_name, p.slug) for p in found]

    values = await _cache.get(("owned personalities", interaction.user.id), fetch)
    return _by_slug(values, current)


async def personality_slug_choices(
    gateway: GatewayClient, interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    """The personalities the user may use, by name and slug, each chosen by its slug: for the
    commands that remove something for good, which act only on a personality named by its
    slug (`chosen.py`)."""

    async def fetch() -> list[tuple[str, str]]:
        found = await gateway.personalities(actor(interaction))
        return [(_label(p), p.slug) for p in found]

    values = await _cache.get(("personality slugs", interaction.user.id), fetch)
    return _by_slug(values, current)


def _label(p: common.Personality) -> str:
    """Its display name and slug, as in "Sage (sage-2)": the name cut (`clipped`) so that the
    slug always shows (`CHOICE_LIMIT` characters at most)."""
    if not named(p.display_name):
        return p.slug
    return f"{clipped(p.display_name, CHOICE_LIMIT - len(p.slug) - 3)} ({p.slug})"


def _by_slug(values: list[tuple[str, str]], current: str) -> list[app_commands.Choice[str]]:
    """(name, slug) pairs as choices of their slug, matched by name or slug; a slug too long
    to be a choice's value is left out (cut, it would name no personality)."""
    typed = current.casefold()
    return [
        app_commands.Choice(name=choice_name(name, slug), value=slug)
        for name, slug in values
        if slug and choosable(slug) and (typed in name.casefold() or typed in slug)
    ][:25]


async def lorebook_choices(
    gateway: GatewayClient, interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    """The user's own lorebooks (a superuser's: every one), by name and size, each chosen by
    its id (exactly that one, whatever else shares its name)."""

    async def fetch() -> list[tuple[str, str]]:
        listed = await gateway.call(
            gateway.stub.ListLorebooks(gw.ListLorebooksRequest(actor=actor(interaction)))
        )
        return [(_lorebook_label(book), book.id) for book in listed.lorebooks]

    values = await _cache.get(("lorebooks", interaction.user.id), fetch)
    typed = current.strip().casefold()
    return [
        app_commands.Choice(name=label, value=book_id)
        for label, book_id in values
        if typed in label.casefold() or book_id == typed
    ][:25]


def _lorebook_label(book: common.Lorebook) -> str:
    """Its name and size, as in "Haunts (3 entries)": the name cut to 80, the whole to
    `CHOICE_LIMIT` (`choice_name`)."""
    size = plural(book.entry_count, "entry", "entries")
    return choice_name(f"{clipped(book.name, 80)} ({size})")


async def memory_choices(
    gateway: GatewayClient, interaction: discord.Interaction, personality: str, current: str
) -> list[app_commands.Choice[str]]:
    """The user's newest memories of `personality` (text, id), matched by text or id."""

    async def fetch() -> list[tuple[str, str]]:
        found = await gateway.call(
            gateway.stub.BrowseMemories(
                gw.BrowseMemoriesRequest(
                    actor=actor(interaction), personality=personality, page_size=25
                )
            )
        )
        return [(" ".join(m.text.split()), m.id) for m in found.memories]

    values = await _cache.get((f"memories:{personality.casefold()}", interaction.user.id), fetch)
    typed = current.strip().casefold()
    return [
        app_commands.Choice(name=choice_name(text, value), value=value)
        for text, value in values
        if typed in text.casefold() or value.startswith(typed)
    ][:25]


async def config_choices(
    gateway: GatewayClient, interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    async def fetch() -> list[tuple[str, str]]:
        listed = await gateway.call(
            gateway.stub.ListLlmConfigs(gw.ListLlmConfigsRequest(actor=actor(interaction)))
        )
        return [(f"{c.name} ({c.provider}/{c.model})", c.id) for c in listed.configs]

    values = await _cache.get(("configs", interaction.user.id), fetch)
    typed = current.casefold()
    return [
        app_commands.Choice(name=choice_name(name), value=value)
        for name, value in values
        if typed in name.casefold()
    ][:25]
