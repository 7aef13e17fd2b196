"""Autocomplete choices within Discord's limits (a name of 1-100 characters, a string value of
at most 100): a value is never cut (cut, it is another string, and picking it looks up
something that does not exist), a choice whose value does not fit is left out; a name is cut
between characters as a reader sees them, with an ellipsis. Every answer here is one the fake
Discord, as strict as Discord, takes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from discord import app_commands

from tzurot.bot.commands.common import CHOICE_LIMIT, choices
from tzurot.bot.commands.lookups import (
    _by_slug,
    _label,
    _lorebook_label,
    config_choices,
    memory_choices,
)
from tzurot.bot.commands.settings import SettingsCommands
from tzurot.bot.commands.voice import sample_label
from tzurot.bot.gateway_client import GatewayClient
from tzurot.testing.fake_discord.interactions import AUTOCOMPLETE, callback_error
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

THUMB = "👍🏽"  # a thumb and its skin tone: two code points, one character as a reader sees it


def taken(found: list[app_commands.Choice[str]]) -> bool:
    """Whether the fake Discord takes these choices as an autocomplete's answer."""
    body = {"type": 8, "data": {"choices": [c.to_dict() for c in found]}}
    return callback_error(body, 0, {"type": AUTOCOMPLETE}) is None


def test_a_value_too_long_to_be_a_choice_is_left_out_never_cut() -> None:
    longest, longer = "k" * CHOICE_LIMIT, "k" * (CHOICE_LIMIT + 1)
    found = choices([longer, longest, "", "key"], "k")
    assert [c.value for c in found] == [longest, "key"]
    assert [c.name for c in found] == [longest, "key"]
    assert taken(found)


def test_a_slug_choice_keeps_its_slug_whole_and_cuts_its_name() -> None:
    name = "n" * 98 + THUMB + "tail"
    found = _by_slug([(name, "sage"), ("", "echo"), ("Long", "s" * 101)], "")
    assert [(c.name, c.value) for c in found] == [("n" * 98 + "…", "sage"), ("echo", "echo")]
    assert taken(found)


def test_a_personality_label_keeps_its_slug_and_cuts_its_name_between_characters() -> None:
    slug = "a-slug-of-sixty-three-characters-" + "x" * 30
    name = "N" * (CHOICE_LIMIT - len(slug) - 5) + THUMB + "tail"
    label = _label(common.Personality(slug=slug, display_name=name))
    assert label == f"{'N' * (CHOICE_LIMIT - len(slug) - 5)}… ({slug})"
    assert len(label) <= CHOICE_LIMIT


def test_a_lorebook_label_cuts_its_name_between_characters() -> None:
    book = common.Lorebook(id="b1", name="L" * 78 + THUMB + "tail", entry_count=2)
    assert _lorebook_label(book) == f"{'L' * 78}… (2 entries)"


def test_a_voice_samples_name_keeps_its_duration() -> None:
    sample = gw.VoiceSampleInfo(id="s1", filename="f" * 95 + THUMB + ".ogg", duration_secs=12)
    label = sample_label(sample)
    assert label == f"{'f' * (CHOICE_LIMIT - 8)}… (12 s)"
    assert len(label) == CHOICE_LIMIT


def test_a_voice_samples_name_is_cut_between_characters() -> None:
    """The thumb straddles the cut (code points 92-93 of a name cut to 92): left out whole."""
    sample = gw.VoiceSampleInfo(id="s1", filename="f" * 91 + THUMB + ".ogg", duration_secs=12)
    assert sample_label(sample) == f"{'f' * 91}… (12 s)"


def test_labels_stay_within_the_limit_whatever_their_numbers() -> None:
    """A duration or a size too long to leave the name any room still gives a name Discord
    takes (review: `clipped` gave "…" for a limit under 1, and the label went over)."""
    sample = gw.VoiceSampleInfo(id="s1", filename="take.ogg", duration_secs=1e97)
    book = common.Lorebook(id="b1", name="L" * 120, entry_count=2**31 - 1)
    labels = [sample_label(sample), _lorebook_label(book)]
    assert all(0 < len(label) <= CHOICE_LIMIT for label in labels), labels
    named = [app_commands.Choice(name=label, value="v") for label in labels]
    assert taken(named)


def test_a_blank_name_is_never_sent() -> None:
    """Discord trims a choice's name before its 1-100 check: a blank one is refused, and the
    whole answer with it. A blank value is left out; a blank name falls back to the slug."""
    assert [c.value for c in choices(["  ", "\u3000", "ok"], "")] == ["ok"]
    found = _by_slug([(" \t", "sage")], "")
    assert [(c.name, c.value) for c in found] == [("sage", "sage")]
    assert taken(found)
    assert _label(common.Personality(slug="sage", display_name="   ")) == "sage"
    assert not taken([app_commands.Choice(name="  ", value="v")])  # the fake refuses it


class _Gateway:
    """What the lookups below ask the gateway: memories, configs, settings."""

    def __init__(self, text: str, settings: list[gw.ResolvedSetting] | None = None) -> None:
        self.text = text
        self.settings = settings

    async def call(self, rpc: Any) -> Any:
        return await rpc

    @property
    def stub(self) -> _Gateway:
        return self

    async def BrowseMemories(self, request: gw.BrowseMemoriesRequest) -> Any:
        return gw.BrowseMemoriesResponse(memories=[common.Memory(id="m1", text=self.text)])

    async def ListLlmConfigs(self, request: gw.ListLlmConfigsRequest) -> Any:
        config = common.LlmConfig(id="c1", name=self.text, provider="openai", model="gpt")
        return gw.ListLlmConfigsResponse(configs=[config])

    async def GetSettings(self, request: gw.GetSettingsRequest) -> Any:
        setting = gw.ResolvedSetting(key="max_history_messages", allowed="a whole number")
        return gw.GetSettingsResponse(settings=self.settings or [setting])


def _interaction(user_id: int, **namespace: str) -> Any:
    user = SimpleNamespace(id=user_id, name="alice", display_name="alice", bot=False)
    return SimpleNamespace(user=user, namespace=SimpleNamespace(**namespace))


async def test_memory_and_config_names_are_cut_between_characters() -> None:
    text = "m" * 98 + THUMB + " and more"
    gateway = cast(GatewayClient, _Gateway(text))
    memories = await memory_choices(gateway, _interaction(9601), "Echo", "")
    configs = await config_choices(gateway, _interaction(9602), "")
    assert [(c.name, c.value) for c in memories] == [("m" * 98 + "…", "m1")]
    assert [(c.name, c.value) for c in configs] == [("m" * 98 + "…", "c1")]
    assert taken(memories)
    assert taken(configs)


@pytest.mark.parametrize(("typed", "offered"), [("7" * CHOICE_LIMIT, True), ("7" * 101, False)])
async def test_a_typed_setting_value_is_offered_whole_or_not_at_all(
    typed: str, offered: bool
) -> None:
    """What was typed is sent as typed; a suggestion of it cut would send another value."""
    settings = SettingsCommands(cast(GatewayClient, _Gateway("")))
    typing = _interaction(9603, key="max_history_messages")
    # discord.py's autocomplete decorator types the method as unbound: called as Discord does.
    found = await cast(Any, settings)._values(typing, typed)
    assert [c.value for c in found] == ([typed] if offered else [])
    assert taken(found)


async def test_a_setting_value_is_not_offered_when_there_is_none() -> None:
    """Nothing typed and no value shown: a choice of "" would name no value (review F4)."""
    settings = SettingsCommands(cast(GatewayClient, _Gateway("")))
    typing = _interaction(9604, key="max_history_messages")
    assert await cast(Any, settings)._values(typing, "") == []


async def test_a_setting_key_too_long_to_be_a_value_is_left_out() -> None:
    """Its name is cut, its value could not be: picked, it would name no setting."""
    longest, longer = "k" * CHOICE_LIMIT, "k" * (CHOICE_LIMIT + 1)
    known = [gw.ResolvedSetting(key=key, help="what it does") for key in (longer, longest)]
    settings = SettingsCommands(cast(GatewayClient, _Gateway("", known)))
    found = await cast(Any, settings)._keys(_interaction(9605), "")
    assert [c.value for c in found] == [longest]
    assert taken(found)
