"""SQL of the admin API (schema `core`): users, personalities, aliases, configs, overrides,
personas, settings, channel activations, the denylist, usage totals and user data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tzurot.db.engine import autocommit
from tzurot.gateway import tables as t
from tzurot.gateway.cache import TtlCache
from tzurot.gateway.domain import (
    ChannelActivation,
    ConfigSource,
    DenyEntry,
    DenyMode,
    DenyScope,
    DenyTarget,
    LlmConfig,
    Persona,
    Personality,
    UsageTotal,
    User,
)
from tzurot.gateway.personalities import normalize_alias
from tzurot.gateway.store import (
    PERSONALITY_COLUMNS,
    llm_config_from_row,
    personality_from_row,
    user_from_row,
)
from tzurot.runtime.errors import AlreadyExists

_ALIAS_LOCK = "tzurot.core.personality_import"  # shared with imports: alias checks serialize


def _persona(row: sa.Row[Any]) -> Persona:
    return Persona(
        name=row.name,
        preferred_name=row.preferred_name,
        pronouns=row.pronouns,
        description=row.description,
    )


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


class AdminStore:
    def __init__(self, engine: AsyncEngine, catalog: TtlCache[Any] | None = None) -> None:
        self._engine = engine
        self._autocommit = autocommit(engine)  # single statements: no BEGIN/COMMIT round trips
        self._catalog = catalog  # GatewayStore.catalog: cleared by writes to what it caches

    @asynccontextmanager
    async def _catalog_write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction writing personalities, aliases or configs; clears the catalog cache."""
        try:
            async with self._engine.begin() as conn:
                yield conn
        finally:
            if self._catalog is not None:
                self._catalog.clear()

    # ---- users ----

    async def update_user(self, user_id: str, **values: Any) -> User:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.update(t.users)
                    .where(t.users.c.id == user_id)
                    .values(**values)
                    .returning(*t.users.c)
                )
            ).one()
        return user_from_row(row._mapping)

    # ---- personalities ----

    async def create_personality(self, values: Mapping[str, Any], aliases: Sequence[str]) -> str:
        async with self._catalog_write() as conn:
            await conn.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(_ALIAS_LOCK)))
            )
            exists = await conn.scalar(
                sa.select(t.personalities.c.id).where(t.personalities.c.slug == values["slug"])
            )
            if exists is not None:
                raise AlreadyExists(
                    f"a personality with slug {values['slug']!r} already exists",
                    reason="PERSONALITY_EXISTS",
                )
            personality_id = str(
                await conn.scalar(
                    sa.insert(t.personalities).values(**values).returning(t.personalities.c.id)
                )
            )
            for alias in aliases:
                await self._add_alias(conn, personality_id, alias)
        return personality_id

    async def update_personality(
        self, personality_id: str, values: Mapping[str, Any], aliases: Sequence[str] | None
    ) -> None:
        async with self._catalog_write() as conn:
            await conn.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(_ALIAS_LOCK)))
            )
            if values:
                await conn.execute(
                    sa.update(t.personalities)
                    .where(t.personalities.c.id == personality_id)
                    .values(**values, updated_at=sa.func.now())
                )
            if aliases is not None:
                await conn.execute(
                    sa.delete(t.personality_aliases).where(
                        t.personality_aliases.c.personality_id == personality_id
                    )
                )
                for alias in aliases:
                    await self._add_alias(conn, personality_id, alias)

    async def delete_personality(self, personality_id: str) -> None:
        async with self._catalog_write() as conn:
            await conn.execute(
                sa.delete(t.personalities).where(t.personalities.c.id == personality_id)
            )

    async def add_alias(self, personality_id: str, alias: str) -> None:
        async with self._catalog_write() as conn:
            await conn.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(_ALIAS_LOCK)))
            )
            await self._add_alias(conn, personality_id, alias)

    @staticmethod
    async def _add_alias(conn: Any, personality_id: str, alias: str) -> None:
        key = normalize_alias(alias)
        owner = (
            await conn.execute(
                sa.select(t.personalities.c.id, t.personalities.c.slug)
                .join(t.personality_aliases)
                .where(t.personality_aliases.c.alias == key)
            )
        ).one_or_none()
        if owner is not None:
            if str(owner.id) == personality_id:
                return
            raise AlreadyExists(
                f"alias {key!r} already belongs to personality {owner.slug!r}",
                reason="ALIAS_TAKEN",
                metadata={"personality": owner.slug},
            )
        await conn.execute(
            sa.insert(t.personality_aliases).values(
                alias=key, display=alias.strip().lstrip("@"), personality_id=personality_id
            )
        )

    async def alias_owner(self, alias: str) -> Personality | None:
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(*PERSONALITY_COLUMNS).where(
                        t.personalities.c.id
                        == sa.select(t.personality_aliases.c.personality_id)
                        .where(t.personality_aliases.c.alias == normalize_alias(alias))
                        .scalar_subquery()
                    )
                )
            ).one_or_none()
        return None if row is None else personality_from_row(row._mapping)

    async def remove_alias(self, alias: str) -> None:
        async with self._catalog_write() as conn:
            await conn.execute(
                sa.delete(t.personality_aliases).where(
                    t.personality_aliases.c.alias == normalize_alias(alias)
                )
            )

    # ---- LLM configs and overrides ----

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
                f"a config named {values['name']!r} already exists", reason="CONFIG_EXISTS"
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

    async def get_override(self, user_id: str, personality_id: str) -> LlmConfig | None:
        o = t.model_overrides.c
        stmt = (
            sa.select(t.llm_configs)
            .join(t.model_overrides, o.llm_config_id == t.llm_configs.c.id)
            .where(o.user_id == user_id, o.personality_id == personality_id)
        )
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else llm_config_from_row(row._mapping)

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

    # ---- personas ----

    async def get_persona(self, user_id: str, personality_id: str | None) -> Persona | None:
        p = t.personas.c
        match = (
            p.personality_id.is_(None)
            if personality_id is None
            else (p.personality_id == personality_id)
        )
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(sa.select(t.personas).where(p.user_id == user_id, match))
            ).one_or_none()
        return None if row is None else _persona(row)

    async def effective_persona(self, user_id: str, personality_id: str) -> Persona | None:
        """The user's persona for this personality, else their default one: one query."""
        p = t.personas.c
        stmt = (
            sa.select(t.personas)
            .where(
                p.user_id == user_id,
                sa.or_(p.personality_id == personality_id, p.personality_id.is_(None)),
            )
            .order_by(p.personality_id.nulls_last())
            .limit(1)
        )
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else _persona(row)

    async def set_persona(self, user_id: str, personality_id: str | None, persona: Persona) -> None:
        values = {
            "name": persona.name,
            "preferred_name": persona.preferred_name,
            "pronouns": persona.pronouns,
            "description": persona.description,
        }
        stmt = insert(t.personas).values(user_id=user_id, personality_id=personality_id, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.personas.c.user_id, sa.text("coalesce(personality_id::text, '')")],
            set_={**values, "updated_at": sa.func.now()},
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    # ---- settings ----

    async def setting_levels(self, **ids: str) -> dict[ConfigSource, dict[str, Any]]:
        """Stored values of every level that `ids` (user_id, personality_id, channel_id) name."""
        s = t.settings.c
        wanted = [(ConfigSource.GLOBAL, "")]
        if ids.get("personality_id"):
            wanted.append((ConfigSource.PERSONALITY, ids["personality_id"]))
        if ids.get("channel_id"):
            wanted.append((ConfigSource.CHANNEL, ids["channel_id"]))
        if ids.get("user_id"):
            wanted.append((ConfigSource.USER, ids["user_id"]))
            if ids.get("personality_id"):
                wanted.append(
                    (
                        ConfigSource.USER_PERSONALITY,
                        f"{ids['user_id']}:{ids['personality_id']}",
                    )
                )
        stmt = sa.select(s.scope, s.key, s.value).where(
            sa.tuple_(s.scope, s.scope_id).in_([(scope.value, sid) for scope, sid in wanted])
        )
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        levels: dict[ConfigSource, dict[str, Any]] = {}
        for scope, key, value in rows:
            levels.setdefault(ConfigSource(scope), {})[key] = value
        return levels

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

    # ---- channel activations ----

    async def get_activation(self, channel_id: str) -> ChannelActivation | None:
        a = t.channel_activations.c
        stmt = (
            sa.select(
                a.guild_id,
                a.channel_id,
                a.activated_by_user_id,
                a.activated_at,
                *PERSONALITY_COLUMNS,
            )
            .join(t.personalities, t.personalities.c.id == a.personality_id)
            .where(a.channel_id == channel_id)
        )
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            return None
        m = row._mapping
        return ChannelActivation(
            guild_id=m["guild_id"],
            channel_id=m["channel_id"],
            personality=personality_from_row(m),
            activated_by_user_id=None
            if m["activated_by_user_id"] is None
            else str(m["activated_by_user_id"]),
            activated_at=m["activated_at"],
        )

    async def activate(
        self, guild_id: str, channel_id: str, personality_id: str, user_id: str | None
    ) -> bool:
        """Activates unless another personality is active there (False then)."""
        stmt = (
            insert(t.channel_activations)
            .values(
                channel_id=channel_id,
                guild_id=guild_id,
                personality_id=personality_id,
                activated_by_user_id=user_id,
            )
            .on_conflict_do_nothing(index_elements=[t.channel_activations.c.channel_id])
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)
            current = await conn.scalar(
                sa.select(t.channel_activations.c.personality_id).where(
                    t.channel_activations.c.channel_id == channel_id
                )
            )
        return str(current) == personality_id

    async def deactivate(self, channel_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.delete(t.channel_activations).where(
                    t.channel_activations.c.channel_id == channel_id
                )
            )
        return bool(result.rowcount)

    # ---- denylist ----

    async def add_deny(
        self,
        *,
        target: DenyTarget,
        target_id: str,
        scope: DenyScope,
        scope_id: str,
        mode: DenyMode,
        reason: str,
    ) -> DenyEntry:
        stmt = insert(t.denylist).values(
            target=target.value,
            target_id=target_id,
            scope=scope.value,
            scope_id=scope_id,
            mode=mode.value,
            reason=reason,
        )
        upsert = stmt.on_conflict_do_update(
            constraint="denylist_entry_key",
            set_={"mode": stmt.excluded.mode, "reason": stmt.excluded.reason},
        ).returning(*t.denylist.c)
        async with self._engine.begin() as conn:
            row = (await conn.execute(upsert)).one()
        return _deny(row._mapping)

    async def remove_deny(self, entry_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(sa.delete(t.denylist).where(t.denylist.c.id == entry_id))
        return bool(result.rowcount)

    async def list_deny(self) -> list[DenyEntry]:
        async with self._autocommit.connect() as conn:
            rows = (
                await conn.execute(sa.select(t.denylist).order_by(t.denylist.c.created_at))
            ).all()
        return [_deny(row._mapping) for row in rows]

    async def matching_deny(
        self, *, user_id: str, guild_id: str, channel_id: str, personality_slug: str
    ) -> list[DenyEntry]:
        """Entries that apply to this user (or their guild) here and toward this personality."""
        d = t.denylist.c
        scopes = [sa.and_(d.scope == DenyScope.BOT.value)]
        if guild_id:
            scopes.append(sa.and_(d.scope == DenyScope.GUILD.value, d.scope_id == guild_id))
        if channel_id:
            scopes.append(sa.and_(d.scope == DenyScope.CHANNEL.value, d.scope_id == channel_id))
        scopes.append(
            sa.and_(d.scope == DenyScope.PERSONALITY.value, d.scope_id == personality_slug)
        )
        targets = [sa.and_(d.target == DenyTarget.USER.value, d.target_id == user_id)]
        if guild_id:
            targets.append(sa.and_(d.target == DenyTarget.GUILD.value, d.target_id == guild_id))
        stmt = sa.select(t.denylist).where(sa.or_(*targets), sa.or_(*scopes))
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_deny(row._mapping) for row in rows]

    # ---- usage ----

    async def usage_totals(self, since: datetime, user_id: str | None) -> list[UsageTotal]:
        u = t.usage_log.c
        stmt = (
            sa.select(
                t.users.c.platform_user_id,
                u.provider,
                u.model,
                sa.func.count().label("requests"),
                sa.func.coalesce(sa.func.sum(u.input_tokens), 0).label("input_tokens"),
                sa.func.coalesce(sa.func.sum(u.output_tokens), 0).label("output_tokens"),
            )
            .join(t.users, t.users.c.id == u.user_id)
            .where(u.created_at >= since)
            .group_by(t.users.c.platform_user_id, u.provider, u.model)
            .order_by(t.users.c.platform_user_id, u.provider, u.model)
        )
        if user_id is not None:
            stmt = stmt.where(u.user_id == user_id)
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            UsageTotal(
                provider=row.provider,
                model=row.model,
                requests=int(row.requests),
                input_tokens=int(row.input_tokens),
                output_tokens=int(row.output_tokens),
                platform_user_id=row.platform_user_id,
            )
            for row in rows
        ]

    # ---- privacy ----

    async def export_user(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every `core` row about the user, as JSON-ready dicts per table."""
        queries = {
            "user": sa.select(t.users).where(t.users.c.id == user_id),
            "personas": sa.select(t.personas).where(t.personas.c.user_id == user_id),
            "llm_configs": sa.select(t.llm_configs).where(t.llm_configs.c.owner_user_id == user_id),
            "model_overrides": sa.select(t.model_overrides).where(
                t.model_overrides.c.user_id == user_id
            ),
            "settings": sa.select(t.settings).where(
                sa.or_(
                    sa.and_(t.settings.c.scope == "user", t.settings.c.scope_id == user_id),
                    sa.and_(
                        t.settings.c.scope == "user_personality",
                        t.settings.c.scope_id.startswith(f"{user_id}:"),
                    ),
                )
            ),
            "personalities_owned": sa.select(t.personalities).where(
                t.personalities.c.owner_user_id == user_id
            ),
            "messages": sa.select(
                t.jobs.c.id,
                t.jobs.c.created_at,
                t.jobs.c.guild_id,
                t.jobs.c.channel_id,
                t.jobs.c.personality_id,
                t.jobs.c.request_content,
                t.jobs.c.content.label("answer"),
                t.jobs.c.status,
            )
            .where(t.jobs.c.user_id == user_id)
            .order_by(t.jobs.c.created_at),
            "usage": sa.select(t.usage_log).where(t.usage_log.c.user_id == user_id),
        }
        out: dict[str, list[dict[str, Any]]] = {}
        async with self._engine.connect() as conn:
            for name, stmt in queries.items():
                rows = (await conn.execute(stmt)).all()
                out[name] = [{k: _plain(v) for k, v in row._mapping.items()} for row in rows]
        return out

    async def delete_user(self, user_id: str) -> int:
        """Deletes the user and (by cascade) everything of theirs in `core`; rows deleted."""
        counted = [
            t.personas,
            t.llm_configs,
            t.model_overrides,
            t.jobs,
            t.usage_log,
        ]
        owner_column = {t.llm_configs.name: t.llm_configs.c.owner_user_id}
        async with self._catalog_write() as conn:
            total = 0
            for table in counted:
                column = owner_column.get(table.name, table.c.get("user_id"))
                assert column is not None
                total += int(
                    await conn.scalar(
                        sa.select(sa.func.count()).select_from(table).where(column == user_id)
                    )
                    or 0
                )
            settings = await conn.execute(
                sa.delete(t.settings).where(
                    sa.or_(
                        sa.and_(t.settings.c.scope == "user", t.settings.c.scope_id == user_id),
                        sa.and_(
                            t.settings.c.scope == "user_personality",
                            t.settings.c.scope_id.startswith(f"{user_id}:"),
                        ),
                    )
                )
            )
            users = await conn.execute(sa.delete(t.users).where(t.users.c.id == user_id))
        return total + int(settings.rowcount) + int(users.rowcount)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | int | float | bool | list | dict) or value is None:
        return value
    return str(value)


def _deny(row: sa.RowMapping) -> DenyEntry:
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
