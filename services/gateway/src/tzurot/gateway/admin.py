"""The admin API's use-cases: personalities, aliases, configs, overrides, users, personas,
settings, channels, usage, denylist, history/memory on the user's behalf, privacy.

Authorization by principal: a user acts on their own things, superusers on everything, and
an internal identity listed as an operator (e.g. the CLI) may act without an actor, as
superuser.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.gateway import settings as cascade
from tzurot.gateway.admin_store import AdminStore
from tzurot.gateway.domain import (
    Actor,
    ChannelActivation,
    ConfigSource,
    DenyEntry,
    DenyScope,
    HistoryTurn,
    LlmConfig,
    Location,
    Persona,
    Personality,
    ResolvedConfig,
    UsageTotal,
    User,
)
from tzurot.gateway.exchanges import delete_exchange
from tzurot.gateway.mentions import find_mentions
from tzurot.gateway.personalities import BIRTHDAY_PATTERN, SLUG_PATTERN, normalize_alias, slugify
from tzurot.gateway.ports import KeyVault, Memory
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

MAX_NAME = 80
MAX_TEXT = 64_000
MAX_PERSONA_FIELD = 2000
PERSONALITY_PATHS = frozenset(
    {
        "display_name",
        "avatar_url",
        "system_prompt",
        "character",
        "default_llm_config_id",
        "error_message",
        "birthday",
        "public",
        "nsfw",
        "voice_id",
        "aliases",
    }
)
_PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}


@dataclass(frozen=True)
class Principal:
    """Who acts: a user, or the operator itself (an internal identity without an actor)."""

    user: User | None

    @property
    def superuser(self) -> bool:
        return self.user is None or self.user.superuser

    @property
    def user_id(self) -> str | None:
        return None if self.user is None else self.user.id

    def require_user(self) -> User:
        if self.user is None:
            raise InvalidArgument("actor", "this request acts for a user: set actor.user_id")
        return self.user


@dataclass(frozen=True)
class SettingTarget:
    """The level a setting is written at, and what names it there."""

    scope: ConfigSource
    personality: str = ""
    location: Location = Location()  # noqa: RUF009 - frozen


def _require(field: str, value: str, max_len: int = 200) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument(field, f"{field} is required")
    if len(value) > max_len:
        raise InvalidArgument(field, f"{field} is longer than {max_len} characters")
    return value


def _limit(field: str, value: str, max_len: int) -> str:
    if len(value) > max_len:
        raise InvalidArgument(field, f"{field} is longer than {max_len} characters")
    return value


class Admin:
    def __init__(
        self,
        *,
        gateway: Gateway,
        store: GatewayStore,
        memory: Memory,
        keyvault: KeyVault,
        operator_identities: frozenset[str],
    ) -> None:
        self._gateway = gateway
        self._store = store
        self._db = AdminStore(store.engine, store.catalog)
        self._memory = memory
        self._keyvault = keyvault
        self._operators = operator_identities

    async def principal(self, actor: Actor | None, caller: str | None) -> Principal:
        if actor is not None:
            _require("actor.user_id", actor.platform_user_id)
            return Principal(await self._gateway.user(actor))
        if caller is not None and caller in self._operators:
            return Principal(None)
        raise InvalidArgument("actor", "actor.user_id is required")

    # ---- personalities ----

    async def _personality(
        self, name: str, who: Principal, field: str = "personality"
    ) -> Personality:
        _require(field, name)
        found = await self._store.find_personality(name)
        if found is None or not _may_see(found, who):
            raise NotFound(f"no personality named {name!r}", reason="PERSONALITY_NOT_FOUND")
        return found

    async def _owned(self, name: str, who: Principal, field: str = "personality") -> Personality:
        found = await self._personality(name, who, field)
        if not (who.superuser or found.owner_user_id == who.user_id):
            raise PermissionDenied(
                f"only the owner of {found.slug!r} or a superuser may change it",
                reason="NOT_OWNER",
            )
        return found

    async def create_personality(self, who: Principal, p: Personality) -> Personality:
        display = _require("personality.display_name", p.display_name, MAX_NAME)
        slug = p.slug.strip() or slugify(display)
        if not SLUG_PATTERN.match(slug):
            raise InvalidArgument(
                "personality.slug", "a slug is lowercase letters, digits and dashes, at most 63"
            )
        values = await self._personality_values(who, p, set(PERSONALITY_PATHS) - {"aliases"})
        values.update(slug=slug, display_name=display, owner_user_id=who.user_id)
        aliases = self._aliases(p.aliases)
        personality_id = await self._db.create_personality(values, aliases)
        created = await self._store.get_personality(personality_id)
        assert created is not None
        return created

    async def update_personality(
        self, who: Principal, p: Personality, paths: Sequence[str]
    ) -> Personality:
        key = p.id or p.slug
        if not key:
            raise InvalidArgument("personality.id", "name the personality by id or slug")
        target = (
            await self._store.get_personality(p.id) if _is_uuid(p.id) else None
        ) or await self._store.find_personality(p.slug or p.id)
        if target is None or not _may_see(target, who):
            raise NotFound(f"no personality {key!r}", reason="PERSONALITY_NOT_FOUND")
        target = await self._owned(target.slug, who)
        unknown = sorted(set(paths) - PERSONALITY_PATHS)
        if unknown:
            raise InvalidArgument("update_paths", f"cannot update {', '.join(unknown)}")
        if not paths:
            raise InvalidArgument("update_paths", "name the fields to update")
        values = await self._personality_values(who, p, set(paths) - {"aliases"})
        if "display_name" in values:
            values["display_name"] = _require("personality.display_name", p.display_name, MAX_NAME)
        aliases = self._aliases(p.aliases) if "aliases" in paths else None
        await self._db.update_personality(target.id, values, aliases)
        updated = await self._store.get_personality(target.id)
        assert updated is not None
        return updated

    async def delete_personality(self, who: Principal, name: str) -> None:
        target = await self._owned(name, who)
        await self._db.delete_personality(target.id)

    async def _personality_values(
        self, who: Principal, p: Personality, paths: set[str]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        texts = {
            "display_name": (p.display_name.strip(), MAX_NAME),
            "avatar_url": (p.avatar_url, 2048),
            "system_prompt": (p.system_prompt, MAX_TEXT),
            "error_message": (p.error_message, 2000),
            "voice_id": (p.voice_id, 200),
        }
        for name, (text, max_len) in texts.items():
            if name in paths:
                values[name] = _limit(f"personality.{name}", text, max_len)
        for flag in ("public", "nsfw"):
            if flag in paths:
                values[flag] = getattr(p, flag)
        if "character" in paths:
            for name, text in vars(p.character).items():
                _limit(f"personality.character.{name}", text, MAX_TEXT)
            values["character"] = dict(vars(p.character))
        if "birthday" in paths:
            if p.birthday and not _valid_birthday(p.birthday):
                raise InvalidArgument("personality.birthday", "birthday is MM-DD")
            values["birthday"] = p.birthday
        if "default_llm_config_id" in paths:
            config_id = p.default_llm_config_id or None
            if config_id is not None:
                await self._usable_config(who, config_id, "personality.default_llm_config_id")
            values["default_llm_config_id"] = config_id
        return values

    @staticmethod
    def _aliases(aliases: Sequence[str]) -> list[str]:
        for alias in aliases:
            if not normalize_alias(alias) or len(alias) > MAX_NAME:
                raise InvalidArgument(
                    "personality.aliases", f"alias {alias!r} is not 1 to 80 characters"
                )
        return list(aliases)

    async def add_alias(self, who: Principal, name: str, alias: str) -> Personality:
        _require("alias", alias, MAX_NAME)
        if not normalize_alias(alias):
            raise InvalidArgument("alias", "the alias is empty")
        target = await self._owned(name, who)
        await self._db.add_alias(target.id, alias)
        updated = await self._store.get_personality(target.id)
        assert updated is not None
        return updated

    async def remove_alias(self, who: Principal, alias: str) -> None:
        _require("alias", alias, MAX_NAME)
        owner = await self._db.alias_owner(alias)
        if owner is None or not _may_see(owner, who):
            raise NotFound(f"no alias {alias!r}", reason="ALIAS_NOT_FOUND")
        await self._owned(owner.slug, who)
        await self._db.remove_alias(alias)

    # ---- users and personas ----

    async def set_timezone(self, who: Principal, tz: str) -> User:
        user = who.require_user()
        _require("timezone", tz, 64)
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidArgument(
                "timezone", f"{tz!r} is not an IANA time zone (e.g. Europe/Berlin)"
            ) from None
        return await self._db.update_user(user.id, timezone=tz)

    async def verify_nsfw(self, who: Principal, where: Location) -> User:
        user = who.require_user()
        if user.nsfw_verified:
            return user
        if not where.nsfw_channel:
            raise FailedPrecondition(
                "verify in an age-restricted channel", reason="NSFW_CHANNEL_REQUIRED"
            )
        return await self._db.update_user(user.id, nsfw_verified=True)

    async def set_persona(self, who: Principal, name: str, persona: Persona) -> Persona:
        user = who.require_user()
        for field, value in vars(persona).items():
            _limit(f"persona.{field}", value, MAX_PERSONA_FIELD)
        personality_id = (await self._personality(name, who)).id if name.strip() else None
        await self._db.set_persona(user.id, personality_id, persona)
        return persona

    async def get_persona(self, who: Principal, name: str) -> tuple[Persona, bool]:
        user = who.require_user()
        if name.strip():
            personality = await self._personality(name, who)
            override = await self._db.get_persona(user.id, personality.id)
            if override is not None:
                return override, True
        default = await self._db.get_persona(user.id, None)
        return default or Persona(name=user.display_name), False

    # ---- LLM configs and overrides ----

    async def create_llm_config(self, who: Principal, c: LlmConfig, *, global_: bool) -> LlmConfig:
        if global_ and not who.superuser:
            raise PermissionDenied("only superusers may create global configs")
        if not global_:
            who.require_user()
        name = _require("config.name", c.name, MAX_NAME)
        provider = _require("config.provider", c.provider, 64)
        model = _require("config.model", c.model, 200)
        if c.context_window < 0:
            raise InvalidArgument("config.context_window", "context_window is negative")
        if c.max_referenced_messages < 0:
            raise InvalidArgument("config.max_referenced_messages", "it is negative")
        if c.free_use and not who.superuser:
            raise PermissionDenied("only superusers may mark a config free to use")
        return await self._db.create_llm_config(
            {
                "name": name,
                "provider": provider,
                "model": model,
                "owner_user_id": None if global_ else who.user_id,
                "advanced_parameters": dict(c.advanced_parameters),
                "context_window": c.context_window,
                "max_referenced_messages": c.max_referenced_messages,
                "free_use": c.free_use,
                "description": _limit("config.description", c.description, 2000),
            }
        )

    async def list_llm_configs(self, who: Principal) -> list[LlmConfig]:
        return await self._db.list_llm_configs(who.user_id)

    async def _usable_config(self, who: Principal, config_id: str, field: str) -> LlmConfig:
        _require(field, config_id)
        config = await self._store.get_llm_config(config_id) if _is_uuid(config_id) else None
        if config is None or not (
            config.owner_user_id is None or config.owner_user_id == who.user_id or who.superuser
        ):
            raise NotFound(f"no LLM config {config_id}", reason="CONFIG_NOT_FOUND")
        return config

    async def delete_llm_config(self, who: Principal, config_id: str) -> None:
        config = await self._usable_config(who, config_id, "config_id")
        if config.owner_user_id != who.user_id and not who.superuser:
            raise PermissionDenied("only superusers may delete global configs")
        await self._db.delete_llm_config(config.id)

    async def set_model_override(self, who: Principal, name: str, config_id: str) -> ResolvedConfig:
        user = who.require_user()
        personality = await self._personality(name, who)
        config = await self._usable_config(who, config_id, "config_id")
        await self._db.set_override(user.id, personality.id, config.id)
        return await self._gateway.effective_config(personality, user)

    async def reset_model_override(self, who: Principal, name: str) -> ResolvedConfig:
        user = who.require_user()
        personality = await self._personality(name, who)
        await self._db.reset_override(user.id, personality.id)
        return await self._gateway.effective_config(personality, user)

    async def effective_config(self, who: Principal, name: str) -> ResolvedConfig:
        personality = await self._personality(name, who)
        return await self._gateway.effective_config(personality, who.user)

    # ---- settings ----

    async def get_settings(
        self, who: Principal, name: str, where: Location
    ) -> list[cascade.ResolvedSetting]:
        personality = await self._personality(name, who) if name.strip() else None
        resolved = await self._gateway.resolved_settings(
            who.user, personality, where.conversation_id
        )
        return list(resolved.values())

    async def _setting_ids(self, who: Principal, target: SettingTarget) -> dict[str, str]:
        scope, name, where = target.scope, target.personality, target.location
        if scope is ConfigSource.GLOBAL:
            if not who.superuser:
                raise PermissionDenied("only superusers may change global settings")
            return {}
        if scope is ConfigSource.PERSONALITY:
            return {"personality_id": (await self._owned(name, who)).id}
        if scope is ConfigSource.CHANNEL:
            # Who may manage a channel is Discord's to say; the bot checks it before calling.
            return {"channel_id": _require("location.channel_id", where.conversation_id)}
        if scope is ConfigSource.USER:
            return {"user_id": who.require_user().id}
        if scope is ConfigSource.USER_PERSONALITY:
            user = who.require_user()
            return {"user_id": user.id, "personality_id": (await self._personality(name, who)).id}
        raise InvalidArgument(
            "scope", "scope is GLOBAL, PERSONALITY, CHANNEL, USER or USER_PERSONALITY"
        )

    async def set_setting(
        self, who: Principal, target: SettingTarget, key: str, value: Any
    ) -> cascade.ResolvedSetting:
        checked = cascade.validate(key, value)
        ids = await self._setting_ids(who, target)
        await self._db.set_setting(target.scope, ids, key, checked)
        return cascade.ResolvedSetting(key, checked, target.scope)

    async def reset_setting(
        self, who: Principal, target: SettingTarget, key: str
    ) -> cascade.ResolvedSetting:
        name, where = target.personality, target.location
        if key not in cascade.SPECS:
            raise InvalidArgument("key", f"unknown setting {key!r}")
        ids = await self._setting_ids(who, target)
        await self._db.reset_setting(target.scope, ids, key)
        personality = await self._personality(name, who) if name.strip() else None
        resolved = await self._gateway.resolved_settings(
            who.user, personality, where.conversation_id
        )
        return resolved[key]

    # ---- usage ----

    async def usage(
        self, who: Principal, period: str, *, all_users: bool, now: datetime | None = None
    ) -> tuple[list[UsageTotal], datetime]:
        if all_users and not who.superuser:
            raise PermissionDenied("only superusers may see every user's usage")
        if period not in _PERIODS:
            raise InvalidArgument("period", "period is DAY, WEEK or MONTH")
        since = (now or datetime.now(UTC)) - _PERIODS[period]
        user_id = None if all_users else who.require_user().id
        return await self._db.usage_totals(since, user_id), since

    # ---- channels ----

    async def activate_channel(
        self, who: Principal, where: Location, name: str
    ) -> ChannelActivation:
        channel_id = _require("location.channel_id", where.channel_id)
        personality = await self._personality(name, who)
        if not await self._db.activate(where.guild_id, channel_id, personality.id, who.user_id):
            current = await self._db.get_activation(channel_id)
            named = current.personality.slug if current else "another personality"
            raise AlreadyExists(
                f"{named!r} is already activated in this channel; deactivate it first",
                reason="CHANNEL_ALREADY_ACTIVATED",
                metadata={"personality": named},
            )
        activation = await self._db.get_activation(channel_id)
        assert activation is not None
        return activation

    async def deactivate_channel(self, who: Principal, where: Location) -> None:
        channel_id = _require("location.channel_id", where.channel_id)
        if not await self._db.deactivate(channel_id):
            raise NotFound("no personality is activated in this channel", reason="NOT_ACTIVATED")

    async def channel_activation(self, where: Location) -> ChannelActivation | None:
        return await self._db.get_activation(_require("location.channel_id", where.channel_id))

    # ---- history and memory ----

    async def clear_history(self, who: Principal, where: Location, name: str) -> int:
        who.require_user()
        conversation = _require("location.channel_id", where.conversation_id)
        personality = await self._personality(name, who)
        return await self._memory.clear_turns(conversation, personality.id)

    async def undo_last_exchange(
        self, who: Principal, where: Location, name: str
    ) -> list[HistoryTurn]:
        user = who.require_user()
        conversation = _require("location.channel_id", where.conversation_id)
        personality = await self._personality(name, who)
        return await self._memory.remove_last_exchange(conversation, personality.id, user.id)

    async def delete_exchange(self, who: Principal, message_id: str) -> list[HistoryTurn]:
        """❌/🔄 on any answer: its exchange leaves history (exchanges.py)."""
        return await delete_exchange(self._store, self._memory, who.require_user(), message_id)

    async def search_memories(
        self, who: Principal, name: str, query: str, limit: int
    ) -> mem.QueryMemoriesResponse:
        user = who.require_user()
        _require("query", query, 2000)
        if not 0 <= limit <= 100:
            raise InvalidArgument("limit", "limit is between 1 and 100 (0 for the default)")
        personality = await self._personality(name, who)
        return await self._memory.query_memories(
            mem.QueryMemoriesRequest(
                personality_id=personality.id, user_id=user.id, query=query, limit=limit or 10
            )
        )

    async def prune_memories(
        self, who: Principal, name: str, threshold: float
    ) -> mem.DropWeakMemoriesResponse:
        user = who.require_user()
        if not 0.0 < threshold <= 1.0:
            raise InvalidArgument("threshold", "threshold is above 0 and at most 1")
        personality = await self._personality(name, who)
        return await self._memory.drop_weak_memories(
            mem.DropWeakMemoriesRequest(
                personality_id=personality.id, user_id=user.id, threshold=threshold
            )
        )

    async def memory_stats(self, who: Principal, name: str) -> mem.CountMemoriesResponse:
        user = who.require_user()
        personality = await self._personality(name, who)
        return await self._memory.count_memories(
            mem.CountMemoriesRequest(personality_id=personality.id, user_id=user.id)
        )

    # ---- denylist ----

    def _superuser(self, who: Principal) -> None:
        if not who.superuser:
            raise PermissionDenied("only superusers manage the denylist")

    async def add_deny(self, who: Principal, entry: DenyEntry) -> DenyEntry:
        self._superuser(who)
        target_id = _require("entry.target_id", entry.target_id)
        scope_id = entry.scope_id.strip()
        if entry.scope is DenyScope.BOT:
            scope_id = ""
        elif not scope_id:
            raise InvalidArgument("entry.scope_id", f"a {entry.scope.value} entry names one")
        elif entry.scope is DenyScope.PERSONALITY:
            scope_id = (await self._personality(scope_id, who, "entry.scope_id")).slug
        return await self._db.add_deny(
            target=entry.target,
            target_id=target_id,
            scope=entry.scope,
            scope_id=scope_id,
            mode=entry.mode,
            reason=_limit("entry.reason", entry.reason, 500),
        )

    async def remove_deny(self, who: Principal, entry_id: str) -> None:
        self._superuser(who)
        _require("entry_id", entry_id)
        if not _is_uuid(entry_id) or not await self._db.remove_deny(entry_id):
            raise NotFound(f"no denylist entry {entry_id}", reason="ENTRY_NOT_FOUND")

    async def list_deny(self, who: Principal) -> list[DenyEntry]:
        self._superuser(who)
        return await self._db.list_deny()

    # ---- privacy ----

    async def export_user_data(self, who: Principal) -> tuple[bytes, str]:
        user = who.require_user()
        data = await self._db.export_user(user.id)
        keys = await self._keyvault.list_keys(user.id)
        data["wallet"] = [
            {
                "provider": k.provider,
                "created_at": k.created_at.isoformat() if k.created_at else None,
                "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
            }
            for k in keys
        ]
        stored = await self._memory.export_user(user.id)
        data["history"] = [_exported_turn(turn) for turn in stored.turns]
        data["memories"] = [_exported_memory(memory) for memory in stored.memories]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, rows in data.items():
                archive.writestr(f"{name}.json", json.dumps(rows, indent=2, ensure_ascii=False))
            archive.writestr(
                "README.txt",
                "Everything Tzurot stores about you. Your requests and answers are in "
                "messages.json; the conversation turns memory keeps (the context personalities "
                "see) are in history.json, and what personalities remember about you long-term "
                "is in memories.json. API keys are never exported (wallet.json lists "
                "providers).\n",
            )
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        return buffer.getvalue(), f"tzurot-{user.platform_user_id}-{stamp}.zip"

    async def delete_user_data(self, who: Principal) -> int:
        user = who.require_user()
        deleted = await self._memory.forget_user(user.id)
        for key in await self._keyvault.list_keys(user.id):
            deleted += int(await self._keyvault.delete_key(user.id, key.provider))
        return deleted + await self._db.delete_user(user.id)

    # ---- mentions ----

    async def resolve_mentions(
        self, who: Principal, content: str, limit: int
    ) -> list[tuple[Personality, str, int]]:
        if limit < 0:
            raise InvalidArgument("limit", "limit is not negative")
        _limit("content", content, 16_000)
        personalities = [p for p in await self._store.list_personalities() if _may_see(p, who)]
        return find_mentions(content, personalities, limit or 5)


def _may_see(personality: Personality, who: Principal) -> bool:
    return personality.public or who.superuser or personality.owner_user_id == who.user_id


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _valid_birthday(value: str) -> bool:
    return BIRTHDAY_PATTERN.match(value) is not None


def _stamp(message: Message, field: str) -> str | None:
    """A Timestamp field as ISO 8601 UTC; None when unset."""
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC).isoformat()


def _exported_turn(turn: common.Turn) -> dict[str, Any]:
    """One history turn for history.json."""
    return {
        "channel_id": turn.channel_id,
        "personality_id": turn.personality_id,
        "job_id": turn.job_id,
        "role": common.Role.Name(turn.role).removeprefix("ROLE_").lower(),
        "author_id": turn.author_id,
        "author_name": turn.author_name,
        "content": turn.content,
        "message_ids": list(turn.message_ids),
        "attachments": [
            {"url": a.url, "filename": a.filename, "content_type": a.content_type}
            for a in turn.attachments
        ],
        "created_at": _stamp(turn, "created_at"),
    }


def _exported_memory(memory: common.Memory) -> dict[str, Any]:
    """One long-term memory for memories.json (no embedding, no score)."""
    return {
        "personality_id": memory.personality_id,
        "text": memory.text,
        "sector": common.MemorySector.Name(memory.sector).removeprefix("MEMORY_SECTOR_").lower(),
        "salience": memory.salience,
        "created_at": _stamp(memory, "created_at"),
        "last_accessed_at": _stamp(memory, "last_accessed_at"),
    }
