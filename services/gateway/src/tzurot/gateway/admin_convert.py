"""Proto <-> domain mappings of the admin API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2

from tzurot.gateway import domain as d
from tzurot.gateway import settings as cascade
from tzurot.gateway.convert import CONFIG_SOURCE, llm_config, personality, timestamp
from tzurot.runtime.errors import InvalidArgument
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

CONFIG_SOURCE_TO_PROTO = CONFIG_SOURCE
_CONFIG_SOURCE_FROM_PROTO: dict[int, d.ConfigSource] = {
    int(v): k for k, v in CONFIG_SOURCE_TO_PROTO.items()
}
_TARGETS = {gw.DENY_TARGET_USER: d.DenyTarget.USER, gw.DENY_TARGET_GUILD: d.DenyTarget.GUILD}
_SCOPES = {
    gw.DENY_SCOPE_BOT: d.DenyScope.BOT,
    gw.DENY_SCOPE_GUILD: d.DenyScope.GUILD,
    gw.DENY_SCOPE_CHANNEL: d.DenyScope.CHANNEL,
    gw.DENY_SCOPE_PERSONALITY: d.DenyScope.PERSONALITY,
}
_MODES = {gw.DENY_MODE_BLOCK: d.DenyMode.BLOCK, gw.DENY_MODE_MUTE: d.DenyMode.MUTE}
_PERIODS = {
    gw.USAGE_PERIOD_DAY: "day",
    gw.USAGE_PERIOD_WEEK: "week",
    gw.USAGE_PERIOD_MONTH: "month",
}
_UNSET_TIME = datetime.min.replace(tzinfo=UTC)  # a request's object has no timestamps yet
_ROLES = {"user": common.ROLE_USER, "assistant": common.ROLE_ASSISTANT}


def _pick(table: dict[Any, Any], value: int, field: str) -> Any:
    if value not in table:
        raise InvalidArgument(field, f"{field} is required")
    return table[value]


def config_source(value: int, field: str = "scope") -> d.ConfigSource:
    source = _CONFIG_SOURCE_FROM_PROTO.get(int(value))
    if source is None or source is d.ConfigSource.HARDCODED:
        raise InvalidArgument(
            field, "scope is GLOBAL, PERSONALITY, CHANNEL, USER or USER_PERSONALITY"
        )
    return source


def usage_period(value: int) -> str:
    return str(_pick(_PERIODS, value, "period"))


def personality_in(msg: common.Personality) -> d.Personality:
    """A personality as a request describes it (ids and timestamps are ignored on create)."""
    c = msg.character
    return d.Personality(
        id=msg.id,
        slug=msg.slug,
        display_name=msg.display_name,
        aliases=tuple(msg.aliases),
        avatar_url=msg.avatar_url,
        system_prompt=msg.system_prompt,
        character=d.CharacterFields(
            description=c.description,
            personality=c.personality,
            scenario=c.scenario,
            example_dialogues=c.example_dialogues,
            post_history_instructions=c.post_history_instructions,
            author_note=c.author_note,
            author_note_depth=c.author_note_depth,
        ),
        cleanup_rules=tuple(
            d.CleanupRule(pattern=r.pattern, replacement=r.replacement) for r in msg.cleanup_rules
        ),
        default_llm_config_id=msg.default_llm_config_id or None,
        error_message=msg.error_message,
        birthday=msg.birthday,
        owner_user_id=None,
        public=msg.public,
        nsfw=msg.nsfw,
        created_at=_UNSET_TIME,
        updated_at=_UNSET_TIME,
        voice_id=msg.voice_id,
        skills=tuple(msg.skills),
        suppress_embeds=msg.suppress_embeds,
    )


def llm_config_in(msg: common.LlmConfig) -> d.LlmConfig:
    return d.LlmConfig(
        id="",
        name=msg.name,
        provider=msg.provider,
        model=msg.model,
        advanced_parameters=json_format.MessageToDict(msg.advanced_parameters),
        context_window=msg.context_window,
        max_referenced_messages=msg.max_referenced_messages,
        free_use=msg.free_use,
        description=msg.description,
    )


def resolved_config(r: d.ResolvedConfig) -> common.ResolvedLlmConfig:
    return common.ResolvedLlmConfig(
        config=llm_config(r.config), source=CONFIG_SOURCE_TO_PROTO[r.source]
    )


def user(u: d.User) -> gw.User:
    return gw.User(
        id=u.id,
        platform_user_id=u.platform_user_id,
        display_name=u.display_name,
        timezone=u.timezone,
        superuser=u.superuser,
        nsfw_verified=u.nsfw_verified,
        created_at=timestamp(u.created_at),
    )


def persona_in(msg: gw.Persona) -> d.Persona:
    return d.Persona(
        name=msg.name,
        preferred_name=msg.preferred_name,
        pronouns=msg.pronouns,
        description=msg.description,
    )


def persona(p: d.Persona) -> gw.Persona:
    return gw.Persona(
        name=p.name, preferred_name=p.preferred_name, pronouns=p.pronouns, description=p.description
    )


def value_in(msg: struct_pb2.Value) -> Any:
    return json_format.MessageToDict(msg)


def resolved_setting(s: cascade.ResolvedSetting) -> gw.ResolvedSetting:
    value = struct_pb2.Value()
    if isinstance(s.value, bool):
        value.bool_value = s.value
    elif isinstance(s.value, str):
        value.string_value = s.value
    else:
        value.number_value = float(s.value)
    spec = cascade.SPECS.get(s.key)
    return gw.ResolvedSetting(
        key=s.key,
        value=value,
        source=CONFIG_SOURCE_TO_PROTO[s.source],
        help=spec.help if spec else "",
        allowed=spec.allowed if spec else "",
        choices=list(spec.choices) if spec else [],
    )


def activation(a: d.ChannelActivation) -> gw.ChannelActivation:
    return gw.ChannelActivation(
        location=common.Location(guild_id=a.guild_id, channel_id=a.channel_id),
        personality=personality(a.personality),
        activated_by_user_id=a.activated_by_user_id or "",
        activated_at=timestamp(a.activated_at),
    )


def usage_total(u: d.UsageTotal, *, with_user: bool) -> gw.UsageTotal:
    return gw.UsageTotal(
        provider=u.provider,
        model=u.model,
        requests=u.requests,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        user_id=u.platform_user_id if with_user else "",
        images=u.images,
        request_type=u.request_type,
        audio_seconds=u.audio_seconds,
        characters=u.characters,
        failed_requests=u.failed_requests,
        estimated_requests=u.estimated_requests,
    )


def deny_entry_in(msg: gw.DenylistEntry) -> d.DenyEntry:
    return d.DenyEntry(
        id="",
        target=_pick(_TARGETS, msg.target, "entry.target"),
        target_id=msg.target_id,
        scope=_pick(_SCOPES, msg.scope, "entry.scope"),
        scope_id=msg.scope_id,
        mode=_pick(_MODES, msg.mode, "entry.mode"),
        reason=msg.reason,
        created_at=_UNSET_TIME,
    )


def deny_entry(e: d.DenyEntry) -> gw.DenylistEntry:
    return gw.DenylistEntry(
        id=e.id,
        target={v: k for k, v in _TARGETS.items()}[e.target],
        target_id=e.target_id,
        scope={v: k for k, v in _SCOPES.items()}[e.scope],
        scope_id=e.scope_id,
        mode={v: k for k, v in _MODES.items()}[e.mode],
        reason=e.reason,
        created_at=timestamp(e.created_at),
    )


def turn(t: d.HistoryTurn) -> common.Turn:
    return common.Turn(
        role=_ROLES.get(t.role, common.ROLE_USER),
        author_id=t.author_id,
        author_name=t.author_name,
        content=t.content,
        message_ids=list(t.message_ids),
    )
