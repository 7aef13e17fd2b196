"""Rows of `core` as domain objects, and the personality columns every query selects."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tzurot.gateway import tables as t
from tzurot.gateway.domain import (
    CharacterFields,
    DenyEntry,
    DenyMode,
    DenyScope,
    DenyTarget,
    Job,
    JobError,
    JobStatus,
    LlmConfig,
    Persona,
    Personality,
    Usage,
    User,
)
from tzurot.gateway.rules import rules_from_json

# array_agg over no rows is NULL, which _personality reads as no aliases.
_ALIASES = (
    sa.select(sa.func.array_agg(t.personality_aliases.c.display))
    .where(t.personality_aliases.c.personality_id == t.personalities.c.id)
    .scalar_subquery()
    .label("aliases")
)
PERSONALITY_COLUMNS = (*t.personalities.c, _ALIASES)
LIVE_PERSONALITY = t.personalities.c.deletion_requested_at.is_(None)
"""Not being deleted: a personality whose deletion is under way (admin/deletions.py) is found
by no name, id, alias or channel, so it answers nobody while memory forgets it."""


def user_from_row(row: sa.RowMapping) -> User:
    return User(
        id=str(row["id"]),
        platform_user_id=row["platform_user_id"],
        display_name=row["display_name"],
        timezone=row["timezone"],
        superuser=row["superuser"],
        nsfw_verified=row["nsfw_verified"],
        created_at=row["created_at"],
        deleting=row.get("deletion_requested_at") is not None,
    )


def personality_from_row(row: sa.RowMapping) -> Personality:
    character = row["character"]
    if isinstance(
        character, str
    ):  # pragma: no cover - asyncpg decodes jsonb to str without a codec
        character = json.loads(character)
    return Personality(
        id=str(row["id"]),
        slug=row["slug"],
        display_name=row["display_name"],
        aliases=tuple(sorted(row["aliases"] or ())),
        avatar_url=row["avatar_url"],
        system_prompt=row["system_prompt"],
        character=CharacterFields(**character),
        default_llm_config_id=_opt_str(row["default_llm_config_id"]),
        error_message=row["error_message"],
        birthday=row["birthday"],
        owner_user_id=_opt_str(row["owner_user_id"]),
        public=row["public"],
        nsfw=row["nsfw"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        voice_id=row["voice_id"],
        card=_json(row["card"]),
        custom_fields=_json(row["custom_fields"]),
        skills=tuple(row["skills"] or ()),
        cleanup_rules=rules_from_json(_json_list(row["cleanup_rules"])),
        suppress_embeds=bool(row.get("suppress_embeds", False)),
    )


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):  # pragma: no cover - asyncpg decodes jsonb to str without a codec
        value = json.loads(value)
    return dict(value or {})


def _json_list(value: Any) -> Any:
    if isinstance(value, str):  # pragma: no cover - asyncpg decodes jsonb to str without a codec
        value = json.loads(value)
    return value


def llm_config_from_row(row: sa.RowMapping) -> LlmConfig:
    return LlmConfig(
        id=str(row["id"]),
        name=row["name"],
        provider=row["provider"],
        model=row["model"],
        owner_user_id=_opt_str(row["owner_user_id"]),
        advanced_parameters=row["advanced_parameters"] or {},
        context_window=row["context_window"],
        max_referenced_messages=row["max_referenced_messages"],
        free_use=row["free_use"],
        description=row["description"],
    )


def persona_from_row(row: sa.Row[Any]) -> Persona:
    return Persona(
        name=row.name,
        preferred_name=row.preferred_name,
        pronouns=row.pronouns,
        description=row.description,
    )


def deny_from_row(row: sa.RowMapping) -> DenyEntry:
    return DenyEntry(
        id=str(row["id"]),
        target=DenyTarget(row["target"]),
        target_id=row["target_id"],
        scope=DenyScope(row["scope"]),
        scope_id=row["scope_id"],
        mode=DenyMode(row["mode"]),
        reason=row["reason"],
        created_at=row["created_at"],
    )


def job_from_row(row: sa.RowMapping) -> Job:
    usage = None
    if row["provider"] is not None:
        usage = Usage(
            provider=row["provider"],
            model=row["model"] or "",
            input_tokens=row["input_tokens"] or 0,
            output_tokens=row["output_tokens"] or 0,
        )
    error = None
    if row["error_code"] is not None:
        error = JobError(
            code=row["error_code"],
            reason=row["error_reason"] or "",
            message=row["error_message"] or "",
        )
    return Job(
        id=str(row["id"]),
        idempotency_key=row["idempotency_key"],
        status=JobStatus(row["status"]),
        user_id=str(row["user_id"]),
        personality_id=str(row["personality_id"]),
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        request_content=row["request_content"],
        request_message_ids=tuple(row["request_message_ids"]),
        author_id=row["author_id"],
        author_name=row["author_name"],
        attempts=row["attempts"],
        content=row["content"],
        usage=usage,
        error=error,
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        delivered_at=row["delivered_at"],
        delivered_message_ids=tuple(row["delivered_message_ids"]),
        preview_message_ids=tuple(row["preview_message_ids"]),
        preview_header=row.get("preview_header") or "",
        preview_retried_at=row["preview_retried_at"],
        retry_until=row.get("retry_until"),
        parent_channel_id=row["parent_channel_id"],
        nsfw_channel=row["nsfw_channel"],
        replaces_job_id=str(row.get("replaces_job_id") or ""),
        attachment_reads=tuple(sorted(_json(row.get("attachment_reads")).items())),
    )


def plain(value: Any) -> Any:
    """A column value as JSON can hold it (datetimes as ISO 8601, the rest as text)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | int | float | bool | list | dict) or value is None:
        return value
    return str(value)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
