"""Free will: personalities speaking up on their own in channels that opted in.

Each opted-in channel has a `next_check_at`, drawn at random (seeded) after every look. Every
gateway replica runs `tick` now and then: it claims the channels due with `FOR UPDATE SKIP
LOCKED` (so two replicas never look at one channel at once), asks freewill_plan.decide what
to do, and queues at most one turn per look on the bot event outbox, under a dedup key per
(channel, local day, n) with n never above the daily budget: even a replica with a stale view
cannot queue more than the budget. The turn itself runs through Generate like any answer
(groups.resolve_turn), paid by the user who enabled that personality here; when that user
has no working key for the personality's provider (none, or one the provider refused; and the
operator does not allow free models for free will), the personality is switched off here with
reason NO_API_KEY. A provider that takes no key (a local server, or one the operator declared
keyless: inference's list, `providers`, its last answer while it cannot give one) needs none
of the payer; while nobody can say whether one does (inference never answered, and it is no
built-in provider), a payer without a key is not switched off (that look queues nothing),
and `/freewill on` is UNAVAILABLE. A turn the bot drops gives
its slot of the budget back, and one dropped for a lasting reason (the key refused or out of
credit, the channel gone) switches free will off with that reason (freewill_drops.py).

Free will is for personalities activated in the channel: `/freewill on` refuses one that is
not (NOT_ACTIVATED), deactivating one switches its free will off there (DEACTIVATED,
store/channels.py), and a queued turn is checked again when it runs (`turn_refusal`, asked
by groups.resolve_turn): still on, outside the quiet hours, not stale.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.clock import Clock
from tzurot.gateway.domain import LlmConfig, Location, Personality, ResolvedConfig, User
from tzurot.gateway.freewill_drops import free_slot, slot_key
from tzurot.gateway.freewill_plan import (
    ChannelState,
    FreeWillPolicy,
    decide,
    directive,
    in_quiet_hours,
    local_day,
    next_check,
    pick_speaker,
    stale,
)
from tzurot.gateway.group_store import BotEventRow, GroupStore, location_values
from tzurot.gateway.ports import KeyVault
from tzurot.gateway.provider_list import KNOWN_PROVIDERS, FixedProviders, Listed, ProviderNames
from tzurot.gateway.speakers import seeded_rng
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable

log = structlog.get_logger(__name__)

_HOURS = re.compile(r"^\s*(\d{1,2})\s*-\s*(\d{1,2})\s*$")
MAX_DAILY_BUDGET = 48


@dataclass(frozen=True)
class FreeWillStatus:
    location: Location
    personality: Personality
    enabled: bool
    payer_user_id: str  # the platform user id (a Discord snowflake)
    disabled_reason: str
    timezone: str
    quiet_hours: str
    daily_budget: int
    used_today: int


def parse_quiet_hours(text: str) -> tuple[int, int]:
    """ "23-8" -> (23, 8): local hours, the end excluded; "0-0" means no quiet hours."""
    found = _HOURS.match(text)
    if not found or not all(0 <= int(h) <= 23 for h in found.groups()):
        raise InvalidArgument("quiet_hours", 'quiet hours are two hours 0-23, like "23-8"')
    return int(found[1]), int(found[2])


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument("timezone", f"{name!r} is not an IANA time zone") from None
    return name


class FreeWill:
    def __init__(
        self,
        store: GroupStore,
        clock: Clock,
        keyvault: KeyVault,
        config_of: Callable[[Personality, User, str], Awaitable[ResolvedConfig]],
        personality_of: Callable[[str], Awaitable[Personality]],
        *,
        policy: FreeWillPolicy | None = None,
        seed: str = "",
        allow_free_use: bool = False,
        providers: ProviderNames | None = None,
    ) -> None:
        """`providers`: inference's (the wallet's cached list), which say which providers
        take no key; without them only the built-in local speech servers do."""
        self._store = store
        self._engine = store.engine
        self._clock = clock
        self._keyvault = keyvault
        self._config_of = config_of
        self._personality_of = personality_of
        self._policy = policy or FreeWillPolicy()
        self._seed = seed or secrets.token_hex(8)
        self._allow_free_use = allow_free_use
        self._providers = providers or FixedProviders(KNOWN_PROVIDERS)
        self.wake: Callable[[], None] = lambda: None

    # ---- /freewill on|off|status ----

    async def set(
        self,
        user: User,
        where: Location,
        personality: Personality,
        *,
        enabled: bool,
        timezone: str = "",
        quiet_hours: str = "",
        daily_budget: int = 0,
    ) -> FreeWillStatus:
        conversation = where.conversation_id
        if not conversation.strip():
            raise InvalidArgument("location.channel_id", "location.channel_id is required")
        if not enabled:
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    sa.update(g.freewill_personalities)
                    .where(
                        g.freewill_personalities.c.conversation_id == conversation,
                        g.freewill_personalities.c.personality_id == personality.id,
                    )
                    .values(enabled=False, disabled_reason="", updated_at=sa.func.now())
                )
            if not result.rowcount:
                raise NotFound(
                    f"free will is not on for {personality.display_name} here",
                    reason="FREEWILL_NOT_ON",
                )
            return await self._status(where, personality)
        channel: dict[str, Any] = {}
        if quiet_hours:
            channel["quiet_start_hour"], channel["quiet_end_hour"] = parse_quiet_hours(quiet_hours)
        if daily_budget:
            if not 1 <= daily_budget <= MAX_DAILY_BUDGET:
                raise InvalidArgument(
                    "daily_budget", f"the daily budget is 1 to {MAX_DAILY_BUDGET} messages"
                )
            channel["daily_budget"] = daily_budget
        if timezone:
            check_timezone(timezone)
        active = await self._store.members(where.channel_id)
        if all(m.activation.personality.id != personality.id for m in active):
            raise FailedPrecondition(
                f"{personality.display_name} is not activated in this channel; free will is "
                "for the personalities activated here (/channel activate)",
                reason="NOT_ACTIVATED",
            )
        await self._require_payable(user, personality, conversation)
        now = self._clock.now()
        first = next_check(now, self._policy, seeded_rng(self._seed, conversation, now.isoformat()))
        async with self._engine.begin() as conn:
            stmt = insert(g.freewill_channels).values(
                conversation_id=conversation,
                next_check_at=first,
                **location_values(where),
                **channel,
            )
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[g.freewill_channels.c.conversation_id],
                    set_={**location_values(where), **channel},
                )
            )
            person = insert(g.freewill_personalities).values(
                conversation_id=conversation,
                personality_id=personality.id,
                payer_user_id=user.id,
                enabled=True,
            )
            await conn.execute(
                person.on_conflict_do_update(
                    index_elements=[
                        g.freewill_personalities.c.conversation_id,
                        g.freewill_personalities.c.personality_id,
                    ],
                    set_={
                        "enabled": True,
                        "payer_user_id": user.id,
                        "disabled_reason": "",
                        "updated_at": sa.func.now(),
                    },
                )
            )
            if timezone and where.guild_id:
                zone = insert(g.guild_settings).values(guild_id=where.guild_id, timezone=timezone)
                await conn.execute(
                    zone.on_conflict_do_update(
                        index_elements=[g.guild_settings.c.guild_id], set_={"timezone": timezone}
                    )
                )
        log.info("freewill.enabled", conversation=conversation, personality=personality.slug)
        return await self._status(where, personality)

    async def statuses(self, where: Location) -> list[FreeWillStatus]:
        fp = g.freewill_personalities.c
        async with self._engine.connect() as conn:
            ids = (
                await conn.scalars(
                    sa.select(fp.personality_id)
                    .where(fp.conversation_id == where.conversation_id)
                    .order_by(fp.updated_at)
                )
            ).all()
        return [await self._status(where, await self._personality_of(str(i))) for i in ids]

    async def turn_refusal(self, event: BotEventRow) -> str:
        """Why a queued free-will turn must not run now, or '' when it may: free will was
        switched off for its personality here since (FREEWILL_OFF), it is the quiet hours
        (QUIET_HOURS), or it waited too long (STALE: freewill_plan.stale)."""
        fc, fp, cs = g.freewill_channels.c, g.freewill_personalities.c, g.channel_state.c
        stmt = (
            sa.select(
                fp.enabled,
                fc.quiet_start_hour,
                fc.quiet_end_hour,
                g.guild_settings.c.timezone,
                cs.last_human_at,
            )
            .join(g.freewill_channels, fc.conversation_id == fp.conversation_id)
            .outerjoin(g.guild_settings, g.guild_settings.c.guild_id == fc.guild_id)
            .outerjoin(g.channel_state, cs.conversation_id == fp.conversation_id)
            .where(
                fp.conversation_id == event.location.conversation_id,
                fp.personality_id == event.personality_id,
            )
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        if row is None or not row.enabled:
            return "FREEWILL_OFF"
        now = self._clock.now()
        if in_quiet_hours(now, row.timezone or "UTC", row.quiet_start_hour, row.quiet_end_hour):
            return "QUIET_HOURS"
        if stale(event.reason, event.available_at, now, self._policy, row.last_human_at):
            return "STALE"
        return ""

    async def _status(self, where: Location, personality: Personality) -> FreeWillStatus:
        fc, fp = g.freewill_channels.c, g.freewill_personalities.c
        stmt = (
            sa.select(
                *fc,
                fp.enabled,
                t.users.c.platform_user_id,
                fp.disabled_reason,
                g.guild_settings.c.timezone,
            )
            .join(g.freewill_personalities, fp.conversation_id == fc.conversation_id)
            .join(t.users, t.users.c.id == fp.payer_user_id)
            .outerjoin(g.guild_settings, g.guild_settings.c.guild_id == fc.guild_id)
            .where(fc.conversation_id == where.conversation_id, fp.personality_id == personality.id)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).one()
        m = row._mapping
        zone = m["timezone"] or "UTC"
        return FreeWillStatus(
            location=where,
            personality=personality,
            enabled=m["enabled"],
            payer_user_id=m["platform_user_id"],
            disabled_reason=m["disabled_reason"],
            timezone=zone,
            quiet_hours=f"{m['quiet_start_hour']}-{m['quiet_end_hour']}",
            daily_budget=m["daily_budget"],
            used_today=_used(m, local_day(self._clock.now(), zone)),
        )

    async def _model_of(self, user: User, personality: Personality, conversation: str) -> LlmConfig:
        """The config the personality answers with there when `user` pays (the channel's
        model counts)."""
        return (await self._config_of(personality, user, conversation)).config

    async def _payable(
        self, user: User, config: LlmConfig, listed: Listed | None = None
    ) -> bool | None:
        """The payer has a working key for `config`'s provider (a key its provider refused in
        use is no key), or `config` is free to use, or its provider takes no key (`listed`,
        else inference's cached list: its last answer while it cannot give one). None: none
        of these, and nobody can say whether it takes a key (inference never answered, and it
        is no built-in provider: `Listed.keyless_of`)."""
        keys = await self._keyvault.list_keys(user.id)
        if any(k.provider == config.provider and k.active for k in keys):
            return True
        if config.free_use and self._allow_free_use:
            return True
        if listed is None:
            listed = await self._providers.listed()
        return listed.keyless_of(config.provider)

    async def _require_payable(
        self, user: User, personality: Personality, conversation: str
    ) -> None:
        config = await self._model_of(user, personality, conversation)
        payable = await self._payable(user, config)
        if payable is None:
            raise Unavailable(
                f"inference cannot say right now whether {config.provider} takes a key; "
                "try again in a minute"
            )
        if not payable:
            raise FailedPrecondition(
                f"free will is paid with your key, and you have no working one for "
                f"{config.provider}; add one with /wallet set {config.provider}",
                reason="NO_API_KEY",
            )

    # ---- the scheduler ----

    async def run(self, every_seconds: float) -> None:
        """Looks at due channels every `every_seconds` until cancelled."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.warning("freewill.tick_failed", exc_info=True)
            await asyncio.sleep(every_seconds)

    async def tick(self, limit: int = 20) -> int:
        """One look at every channel due now; returns how many turns were queued. Inference's
        list of providers (a payer may need no key) is read before the channels are locked:
        never asked while their rows are held."""
        now = self._clock.now()
        fc = g.freewill_channels.c
        queued = 0
        async with self._engine.connect() as conn:
            due_now = await conn.scalar(
                sa.select(fc.conversation_id).where(fc.next_check_at <= now).limit(1)
            )
        if due_now is None:
            return 0
        listed = await self._providers.listed()
        async with self._engine.begin() as conn:
            due = (
                await conn.execute(
                    sa.select(g.freewill_channels, g.guild_settings.c.timezone)
                    .outerjoin(g.guild_settings, g.guild_settings.c.guild_id == fc.guild_id)
                    .where(fc.next_check_at <= now)
                    .order_by(fc.next_check_at)
                    .limit(limit)
                    .with_for_update(of=g.freewill_channels, skip_locked=True)
                )
            ).all()
            for row in due:
                queued += await self._look(conn, row._mapping, now, listed)
        if queued:
            self.wake()
        return queued

    async def _look(self, conn: AsyncConnection, m: sa.RowMapping, now: Any, listed: Listed) -> int:
        conversation = m["conversation_id"]
        zone = m["timezone"] or "UTC"
        rng = seeded_rng(self._seed, conversation, now.isoformat())
        policy = replace(self._policy, daily_budget=m["daily_budget"])
        updates: dict[str, Any] = {"next_check_at": next_check(now, policy, rng)}
        queued = 0
        fp = g.freewill_personalities.c
        enabled = [
            str(i)
            for i in (
                await conn.scalars(
                    sa.select(fp.personality_id).where(
                        fp.conversation_id == conversation, fp.enabled.is_(True)
                    )
                )
            ).all()
        ]
        today = local_day(now, zone)
        used = _used(m, today)
        state = ChannelState(
            timezone=zone,
            quiet_start_hour=m["quiet_start_hour"],
            quiet_end_hour=m["quiet_end_hour"],
            last_human_at=await conn.scalar(
                sa.select(g.channel_state.c.last_human_at).where(
                    g.channel_state.c.conversation_id == conversation
                )
            ),
            last_freewill_at=m["last_freewill_at"],
            used_today=used,
        )
        action = decide(now, state, policy, rng) if enabled else None
        if action is not None:
            chosen = pick_speaker(enabled, rng)
            payer_id = await conn.scalar(
                sa.select(fp.payer_user_id).where(
                    fp.conversation_id == conversation, fp.personality_id == chosen
                )
            )
            payer = await self._store.user_by_id(str(payer_id))
            personality = await self._personality_of(chosen)
            payable = payer is not None and await self._payable(
                payer, await self._model_of(payer, personality, conversation), listed
            )
            if payable is None:  # an outage switches nothing off: the next look asks again
                log.info("freewill.payer_unknown", conversation=conversation, personality=chosen)
            elif payer is None or not payable:
                await conn.execute(
                    sa.update(g.freewill_personalities)
                    .where(fp.conversation_id == conversation, fp.personality_id == chosen)
                    .values(enabled=False, disabled_reason="NO_API_KEY")
                )
                log.info("freewill.disabled_no_key", conversation=conversation, personality=chosen)
            elif (
                slot := await free_slot(conn, conversation, today, policy.daily_budget)
            ) is not None:
                where = Location(m["guild_id"], m["channel_id"], m["thread_id"], m["nsfw_channel"])
                added = await self._store.add_event(
                    {
                        **location_values(where),
                        "kind": "turn",
                        # The day's lowest free slot (a dropped turn's is free again).
                        "dedup_key": slot_key(conversation, today, slot),
                        "personality_id": chosen,
                        "payer_user_id": payer.id,
                        "reason": action.value,
                        "directive": directive(action, personality.display_name),
                        "available_at": now,
                    },
                    conn,
                )
                if added:
                    queued = 1
                    updates.update(used_day=today, used_count=used + 1, last_freewill_at=now)
                    log.info(
                        "freewill.turn_queued",
                        conversation=conversation,
                        personality=personality.slug,
                        action=action.value,
                    )
        await conn.execute(
            sa.update(g.freewill_channels)
            .where(g.freewill_channels.c.conversation_id == conversation)
            .values(**updates)
        )
        return queued


def _used(m: sa.RowMapping, today: date) -> int:
    return int(m["used_count"]) if m["used_day"] == today else 0
