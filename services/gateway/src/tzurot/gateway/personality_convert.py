"""Personalities, LLM configs and skills as gateway's API and inference carry them, and the
formats a personality is imported from."""

from __future__ import annotations

from google.protobuf import json_format

from tzurot.gateway import domain as d
from tzurot.gateway import lore_convert
from tzurot.gateway.imports import ImportFormat
from tzurot.gateway.message_convert import timestamp
from tzurot.runtime.errors import InvalidArgument
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

CONFIG_SOURCE = {
    d.ConfigSource.HARDCODED: common.CONFIG_SOURCE_HARDCODED,
    d.ConfigSource.GLOBAL: common.CONFIG_SOURCE_GLOBAL,
    d.ConfigSource.PERSONALITY: common.CONFIG_SOURCE_PERSONALITY,
    d.ConfigSource.CHANNEL: common.CONFIG_SOURCE_CHANNEL,
    d.ConfigSource.USER: common.CONFIG_SOURCE_USER,
    d.ConfigSource.USER_PERSONALITY: common.CONFIG_SOURCE_USER_PERSONALITY,
}


def personality(p: d.Personality) -> common.Personality:
    return common.Personality(
        id=p.id,
        slug=p.slug,
        display_name=p.display_name,
        aliases=list(p.aliases),
        avatar_url=p.avatar_url,
        system_prompt=p.system_prompt,
        character=common.CharacterFields(
            description=p.character.description,
            personality=p.character.personality,
            scenario=p.character.scenario,
            example_dialogues=p.character.example_dialogues,
            post_history_instructions=p.character.post_history_instructions,
            author_note=p.character.author_note,
            author_note_depth=p.character.author_note_depth,
        ),
        cleanup_rules=[
            common.CleanupRule(pattern=r.pattern, replacement=r.replacement)
            for r in p.cleanup_rules
        ],
        default_llm_config_id=p.default_llm_config_id or "",
        error_message=p.error_message,
        birthday=p.birthday,
        owner_user_id=p.owner_user_id or "",
        public=p.public,
        nsfw=p.nsfw,
        voice_id=p.voice_id,
        skills=list(p.skills),
        created_at=timestamp(p.created_at),
        updated_at=timestamp(p.updated_at),
        card=lore_convert.character_card(p.card),
        custom_fields=lore_convert.struct(p.custom_fields),
        suppress_embeds=p.suppress_embeds,
    )


def llm_config(c: d.LlmConfig) -> common.LlmConfig:
    msg = common.LlmConfig(
        id=c.id,
        name=c.name,
        provider=c.provider,
        model=c.model,
        owner_user_id=c.owner_user_id or "",
        context_window=c.context_window,
        max_referenced_messages=c.max_referenced_messages,
        free_use=c.free_use,
        description=c.description,
    )
    json_format.ParseDict(dict(c.advanced_parameters), msg.advanced_parameters)
    return msg


def skill_info(s: d.SkillInfo) -> common.SkillInfo:
    return common.SkillInfo(
        name=s.name,
        description=s.description,
        parameters_json=s.parameters_json,
        stealth=s.stealth,
        auto_memorize=s.auto_memorize,
    )


def skill_info_in(msg: common.SkillInfo) -> d.SkillInfo:
    return d.SkillInfo(
        name=msg.name,
        description=msg.description,
        parameters_json=msg.parameters_json,
        stealth=msg.stealth,
        auto_memorize=msg.auto_memorize,
    )


_IMPORT_FORMATS: dict[int, ImportFormat] = {
    gw.IMPORT_FORMAT_SEED_YAML: ImportFormat.SEED_YAML,
    gw.IMPORT_FORMAT_CHARACTER_CARD_JSON: ImportFormat.CHARACTER_CARD_JSON,
}


def import_format(value: int) -> ImportFormat:
    found = _IMPORT_FORMATS.get(int(value))
    if found is None:
        raise InvalidArgument(
            "format", "format is IMPORT_FORMAT_SEED_YAML or IMPORT_FORMAT_CHARACTER_CARD_JSON"
        )
    return found
