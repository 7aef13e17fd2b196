"""The bot's options that the gateway refuses past a length (or below a value) declare that
limit, so Discord's client refuses it up front (review: `/memory search query`, `/timezone set
zone`, `/llm-config create`, `/personality voice set`, `/admin deny`, `/memory delete|prune`,
the `lorebook` options, `/persona set`). Each limit is checked twice: in the registered
command's JSON (what the bot syncs) and against the gateway's own check, which takes a value
of exactly that length and refuses one more."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tzurot.bot.commands import options as bot
from tzurot.gateway.admin.base import Principal
from tzurot.gateway.admin.channels import ModerationAdmin
from tzurot.gateway.admin.configs import ConfigAdmin
from tzurot.gateway.admin.lorebooks import LorebookAdmin
from tzurot.gateway.admin.memory import MemoryAdmin
from tzurot.gateway.admin.users import UserAdmin
from tzurot.gateway.domain import LlmConfig, Persona, User
from tzurot.gateway.domain_channels import DenyEntry, DenyMode, DenyScope, DenyTarget
from tzurot.gateway.voice import Voice, validate_voice
from tzurot.runtime.errors import InvalidArgument, TzurotError
from tzurot.testing.fake_discord import Json

from .test_command_limits import registered

NESTING = {1, 2}  # SUB_COMMAND, SUB_COMMAND_GROUP

LENGTHS = {
    "/memory search query": bot.LONGEST_MEMORY_QUERY,
    "/memory delete memory": bot.LONGEST_MEMORY_ID,
    "/timezone set zone": bot.LONGEST_TIMEZONE,
    "/llm-config create provider": bot.LONGEST_PROVIDER,
    "/llm-config create model": bot.LONGEST_MODEL,
    "/llm-config create description": bot.LONGEST_CONFIG_DESCRIPTION,
    "/personality voice set provider": bot.LONGEST_PROVIDER,
    "/personality voice set voice_id": bot.LONGEST_VOICE_ID,
    "/personality voice set model": bot.LONGEST_MODEL,
    "/admin deny add guild_id": bot.LONGEST_DISCORD_ID,  # its digits: test_bad_input_options
    "/admin deny add scope_id": bot.LONGEST_DISCORD_ID,
    "/admin deny add reason": bot.LONGEST_DENY_REASON,
    "/admin deny remove entry_id": bot.LONGEST_REFERENCE,
    "/lorebook import name": bot.LONGEST_LOREBOOK_NAME,
    "/lorebook import replace": bot.LONGEST_REFERENCE,
    "/lorebook export lorebook": bot.LONGEST_REFERENCE,
    "/lorebook attach lorebook": bot.LONGEST_REFERENCE,
    "/lorebook detach lorebook": bot.LONGEST_REFERENCE,
    "/lorebook delete lorebook": bot.LONGEST_REFERENCE,
    "/persona set preferred_name": bot.LONGEST_PERSONA_FIELD,
    "/persona set pronouns": bot.LONGEST_PERSONA_FIELD,
    "/persona set description": bot.LONGEST_PERSONA_FIELD,
}


def leaf_options(item: Json, path: str) -> Iterator[tuple[str, Json]]:
    for option in item.get("options") or []:
        where = f"{path} {option['name']}"
        if option["type"] in NESTING:
            yield from leaf_options(option, where)
        else:
            yield where, option


def every_option() -> dict[str, Json]:
    return {
        where: option
        for command in registered()
        for where, option in leaf_options(command, f"/{command['name']}")
    }


def test_each_option_declares_the_length_the_gateway_takes() -> None:
    options = every_option()
    declared = {w: (options[w].get("min_length"), options[w].get("max_length")) for w in LENGTHS}
    assert declared == {w: (1, n) for w, n in LENGTHS.items()}


def test_prune_threshold_starts_above_zero() -> None:
    """The gateway refuses 0 ("above 0"); Discord's `min_value` includes itself."""
    threshold = every_option()["/memory prune threshold"]
    assert (threshold.get("min_value"), threshold.get("max_value")) == (0.01, 1.0)
    assert threshold["min_value"] == bot.WEAKEST_PRUNE_THRESHOLD > 0


# ---- the gateway's side: exactly the declared length passes its check, one more does not ----


class Passed(Exception):
    """The gateway's check let the value through (it went on to the store or a service)."""


class Beyond:
    """What a check that passed goes on to: any call there is `Passed`."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def passed(*args: Any, **kwargs: Any) -> Any:
            raise Passed(name)

        return passed


class Checks(UserAdmin, ConfigAdmin, MemoryAdmin, ModerationAdmin, LorebookAdmin):
    """The gateway's admin use-cases, with nothing behind their input checks."""

    def __init__(self) -> None:  # no super().__init__: only the checks run
        beyond: Any = Beyond()
        self._db = self._memory = self._store = self._gateway = beyond


SUPERUSER = Principal(
    user=User("u1", "1", "Alice", "UTC", superuser=True, nsfw_verified=False,
              created_at=datetime.now(UTC))
)  # fmt: skip


def deny(target_id: str = "1", reason: str = "") -> DenyEntry:
    return DenyEntry(
        "", DenyTarget.GUILD, target_id, DenyScope.BOT, "", DenyMode.BLOCK, reason,
        datetime.now(UTC),
    )  # fmt: skip


GATEWAY: dict[str, Callable[[Checks, str], Awaitable[object]]] = {
    "/memory search query": lambda g, v: g.search_memories(SUPERUSER, "p", v, 10),
    "/memory delete memory": lambda g, v: g.forget_memory(SUPERUSER, "p", v),
    "/timezone set zone": lambda g, v: g.set_timezone(SUPERUSER, v),
    "/llm-config create provider": lambda g, v: g.create_llm_config(
        SUPERUSER, LlmConfig("", "n", v, "m"), global_=False
    ),
    "/llm-config create model": lambda g, v: g.create_llm_config(
        SUPERUSER, LlmConfig("", "n", "p", v), global_=False
    ),
    "/llm-config create description": lambda g, v: g.create_llm_config(
        SUPERUSER, LlmConfig("", "n", "p", "m", description=v), global_=False
    ),
    "/admin deny add reason": lambda g, v: g.add_deny(SUPERUSER, deny(reason=v)),
    "/admin deny remove entry_id": lambda g, v: g.remove_deny(SUPERUSER, v),
    "/lorebook delete lorebook": lambda g, v: g.delete_lorebook(SUPERUSER, v),
    "/lorebook import name": lambda g, v: g.import_lorebook(SUPERUSER, b'{"entries": {}}', v, None),
    # the bot sends preferred_name as the persona's name too
    "/persona set preferred_name": lambda g, v: g.set_persona(
        SUPERUSER, "", Persona(name=v, preferred_name=v)
    ),
    "/persona set pronouns": lambda g, v: g.set_persona(SUPERUSER, "", Persona(pronouns=v)),
    "/persona set description": lambda g, v: g.set_persona(SUPERUSER, "", Persona(description=v)),
}


async def refused_as_too_long(check: Callable[[], Awaitable[object]]) -> str:
    """The "longer than" refusal the check gave, or "" if it gave none (it refused for another
    reason, such as no such entry, or let the value through)."""
    try:
        await check()
    except TzurotError as err:
        return str(err) if "longer than" in str(err) else ""
    except Passed:
        return ""
    return ""


@pytest.mark.parametrize("where", sorted(GATEWAY))
async def test_the_gateway_takes_exactly_the_declared_length(where: str) -> None:
    n = LENGTHS[where]
    checks = Checks()
    assert await refused_as_too_long(lambda: GATEWAY[where](checks, "x" * n)) == ""
    refused = await refused_as_too_long(lambda: GATEWAY[where](checks, "x" * (n + 1)))
    assert f"longer than {n} characters" in refused


def test_the_gateway_takes_a_voice_id_and_model_as_long_as_declared() -> None:
    """A voice id is checked by pattern: at most 100 characters for an OpenAI-compatible
    voice name, 64 for ElevenLabs. A provider by its length here (whether inference speaks
    with it is asked after: tests/unit/gateway/test_voice_providers.py)."""
    longest = bot.LONGEST_VOICE_ID
    validate_voice(Voice("openai", "x" * longest, model="m" * bot.LONGEST_MODEL))
    validate_voice(Voice("p" * bot.LONGEST_PROVIDER, "alloy"))
    with pytest.raises(InvalidArgument, match=f"longer than {bot.LONGEST_PROVIDER} characters"):
        validate_voice(Voice("p" * (bot.LONGEST_PROVIDER + 1), "alloy"))
    with pytest.raises(InvalidArgument, match=f"at most {longest} characters"):
        validate_voice(Voice("openai", "x" * (longest + 1)))
    with pytest.raises(InvalidArgument, match="at most 64 characters"):
        validate_voice(Voice("elevenlabs", "x" * 65))
    with pytest.raises(InvalidArgument, match=f"longer than {bot.LONGEST_MODEL} characters"):
        validate_voice(Voice("openai", "alloy", model="m" * (bot.LONGEST_MODEL + 1)))


async def test_the_gateway_takes_the_least_prune_threshold_and_refuses_zero() -> None:
    checks = Checks()
    with pytest.raises(Passed):
        await checks.prune_memories(SUPERUSER, "p", bot.WEAKEST_PRUNE_THRESHOLD)
    with pytest.raises(InvalidArgument, match="above 0"):
        await checks.prune_memories(SUPERUSER, "p", 0.0)
