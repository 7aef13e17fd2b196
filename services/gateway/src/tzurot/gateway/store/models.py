"""The levels of the LLM config cascade that people choose: a user toward one personality
(`model_overrides`), a user's default (`user_models`) and a channel's (`channel_models`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from tzurot.gateway import tables as t
from tzurot.gateway.domain import ConfigSource, LlmConfig
from tzurot.gateway.store.base import AdminSqlBase
from tzurot.gateway.store.rows import llm_config_from_row


class ModelChoices(AdminSqlBase):
    async def model_choices(
        self, *, user_id: str = "", personality_id: str = "", channel_id: str = ""
    ) -> dict[ConfigSource, LlmConfig]:
        """The configs chosen at each level these ids name, in one statement."""
        c = t.llm_configs
        parts: list[sa.Select[Any]] = []
        if user_id and personality_id:
            o = t.model_overrides.c
            parts.append(
                sa.select(sa.literal(ConfigSource.USER_PERSONALITY.value).label("level"), c)
                .join(t.model_overrides, o.llm_config_id == c.c.id)
                .where(o.user_id == user_id, o.personality_id == personality_id)
            )
        if user_id:
            u = t.user_models.c
            parts.append(
                sa.select(sa.literal(ConfigSource.USER.value).label("level"), c)
                .join(t.user_models, u.llm_config_id == c.c.id)
                .where(u.user_id == user_id)
            )
        if channel_id:
            ch = t.channel_models.c
            parts.append(
                sa.select(sa.literal(ConfigSource.CHANNEL.value).label("level"), c)
                .join(t.channel_models, ch.llm_config_id == c.c.id)
                .where(ch.channel_id == channel_id)
            )
        if not parts:
            return {}
        stmt = parts[0] if len(parts) == 1 else sa.union_all(*parts)
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {ConfigSource(row.level): llm_config_from_row(row._mapping) for row in rows}

    async def set_user_model(self, user_id: str, config_id: str) -> None:
        stmt = insert(t.user_models).values(user_id=user_id, llm_config_id=config_id)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.user_models.c.user_id],
            set_={"llm_config_id": config_id, "updated_at": sa.func.now()},
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def reset_user_model(self, user_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.delete(t.user_models).where(t.user_models.c.user_id == user_id)
            )
        return bool(result.rowcount)

    async def set_channel_model(self, channel_id: str, config_id: str, set_by: str | None) -> None:
        stmt = insert(t.channel_models).values(
            channel_id=channel_id, llm_config_id=config_id, set_by_user_id=set_by
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.channel_models.c.channel_id],
            set_={
                "llm_config_id": config_id,
                "set_by_user_id": set_by,
                "updated_at": sa.func.now(),
            },
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def reset_channel_model(self, channel_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.delete(t.channel_models).where(t.channel_models.c.channel_id == channel_id)
            )
        return bool(result.rowcount)
