"""LLM configs, users' model overrides and the settings cascade's stored levels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from tzurot.gateway import tables as t
from tzurot.gateway.cache import TtlCache
from tzurot.gateway.domain import ConfigSource, LlmConfig, Personality
from tzurot.gateway.settings import stored_levels
from tzurot.gateway.store.base import AdminSqlBase, SqlBase
from tzurot.gateway.store.rows import llm_config_from_row
from tzurot.runtime.errors import AlreadyExists, quoted


class ConfigReads(SqlBase):
    catalog: TtlCache[Personality | LlmConfig]

    async def get_llm_config(self, config_id: str) -> LlmConfig | None:
        cached = self.catalog.get(("config", config_id))
        if isinstance(cached, LlmConfig):
            return cached
        generation = self.catalog.generation
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(sa.select(t.llm_configs).where(t.llm_configs.c.id == config_id))
            ).one_or_none()
        if row is None:
            return None
        config = llm_config_from_row(row._mapping)
        self.catalog.put(("config", config_id), config, generation)
        return config


class ConfigWrites(AdminSqlBase):
    async def create_llm_config(self, values: Mapping[str, Any]) -> LlmConfig:
        try:
            async with self._catalog_write() as conn:
                row = (
                    await conn.execute(
                        sa.insert(t.llm_configs).values(**values).returning(*t.llm_configs.c)
                    )
                ).one()
        except IntegrityError:
            raise AlreadyExists(
                f"a config named {quoted(values['name'])} already exists", reason="CONFIG_EXISTS"
            ) from None
        return llm_config_from_row(row._mapping)

    async def list_llm_configs(self, user_id: str | None) -> list[LlmConfig]:
        c = t.llm_configs.c
        where: sa.ColumnElement[bool] = c.owner_user_id.is_(None)
        if user_id is not None:
            where = sa.or_(where, c.owner_user_id == user_id)
        stmt = sa.select(t.llm_configs).where(where).order_by(c.owner_user_id.nulls_first(), c.name)
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [llm_config_from_row(row._mapping) for row in rows]

    async def delete_llm_config(self, config_id: str) -> None:
        async with self._catalog_write() as conn:
            await conn.execute(sa.delete(t.llm_configs).where(t.llm_configs.c.id == config_id))

    # ---- model overrides ----

    async def set_override(self, user_id: str, personality_id: str, config_id: str) -> None:
        stmt = insert(t.model_overrides).values(
            user_id=user_id, personality_id=personality_id, llm_config_id=config_id
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.model_overrides.c.user_id, t.model_overrides.c.personality_id],
            set_={"llm_config_id": config_id, "updated_at": sa.func.now()},
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def reset_override(self, user_id: str, personality_id: str) -> bool:
        o = t.model_overrides.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.delete(t.model_overrides).where(
                    o.user_id == user_id, o.personality_id == personality_id
                )
            )
        return bool(result.rowcount)


def _scope_id(scope: ConfigSource, ids: Mapping[str, str]) -> str:
    if scope is ConfigSource.GLOBAL:
        return ""
    if scope is ConfigSource.PERSONALITY:
        return ids["personality_id"]
    if scope is ConfigSource.CHANNEL:
        return ids["channel_id"]
    if scope is ConfigSource.USER:
        return ids["user_id"]
    return f"{ids['user_id']}:{ids['personality_id']}"


class SettingQueries(AdminSqlBase):
    async def setting_levels(self, **ids: str) -> dict[ConfigSource, dict[str, Any]]:
        """Stored values of every level that `ids` (user_id, personality_id, channel_id and,
        in a thread, parent_channel_id) name; a thread's channel level falls back to its
        parent's key by key (settings.stored_levels)."""
        s = t.settings.c
        wanted = [(ConfigSource.GLOBAL, "")]
        if ids.get("personality_id"):
            wanted.append((ConfigSource.PERSONALITY, ids["personality_id"]))
        if ids.get("channel_id"):
            wanted.append((ConfigSource.CHANNEL, ids["channel_id"]))
            if ids.get("parent_channel_id"):
                wanted.append((ConfigSource.CHANNEL, ids["parent_channel_id"]))
        if ids.get("user_id"):
            wanted.append((ConfigSource.USER, ids["user_id"]))
            if ids.get("personality_id"):
                wanted.append(
                    (
                        ConfigSource.USER_PERSONALITY,
                        f"{ids['user_id']}:{ids['personality_id']}",
                    )
                )
        stmt = sa.select(s.scope, s.scope_id, s.key, s.value).where(
            sa.tuple_(s.scope, s.scope_id).in_([(scope.value, sid) for scope, sid in wanted])
        )
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return stored_levels(rows, ids.get("channel_id", ""))

    async def set_setting(
        self, scope: ConfigSource, ids: Mapping[str, str], key: str, value: Any
    ) -> None:
        stmt = insert(t.settings).values(
            scope=scope.value, scope_id=_scope_id(scope, ids), key=key, value=value
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.settings.c.scope, t.settings.c.scope_id, t.settings.c.key],
            set_={"value": stmt.excluded.value, "updated_at": sa.func.now()},
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def reset_setting(self, scope: ConfigSource, ids: Mapping[str, str], key: str) -> bool:
        s = t.settings.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.delete(t.settings).where(
                    s.scope == scope.value, s.scope_id == _scope_id(scope, ids), s.key == key
                )
            )
        return bool(result.rowcount)
