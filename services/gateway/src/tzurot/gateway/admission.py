"""The checks before a job: a valid request, the denylist, NSFW rules, rate limits and the
guests' share (a user without a key on a free model, unless its provider takes no key); and
what the job will use (the LLM config cascade, the settings cascade, the persona)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta

import structlog

from tzurot.gateway import settings as settings_cascade
from tzurot.gateway.domain import (
    ConfigSource,
    DenyMode,
    GenerateCommand,
    LlmConfig,
    Location,
    Personality,
    ResolvedConfig,
    User,
)
from tzurot.gateway.gateway_core import GatewayState, Prepared, require_id
from tzurot.gateway.ratelimit import Bucket
from tzurot.gateway.resolve import config_levels
from tzurot.gateway.settings import MAX_HISTORY_MESSAGES
from tzurot.gateway.store import TurnContext
from tzurot.gateway.store.jobs import TURN_KEY_PREFIX
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
)

log = structlog.get_logger(__name__)


@dataclass
class Charges:
    """What admitting a request took: rate tokens and a guest's share of the free models'
    budget. Given back (`Admission._give_back`) when the request is not run after all: refused
    after it was charged, or a duplicate of a request that runs (that one paid)."""

    buckets: list[Bucket] = field(default_factory=list)
    quota_keys: list[str] = field(default_factory=list)


class Admission(GatewayState):
    def _validate_generate(self, command: GenerateCommand, *, scheduled: bool = False) -> None:
        require_id("actor.user_id", command.actor.platform_user_id)
        require_id("idempotency_key", command.idempotency_key)
        if not scheduled and command.idempotency_key.startswith(TURN_KEY_PREFIX):
            # Scheduled turns' keys: their jobs are the channel's, with no user and no question.
            raise InvalidArgument(
                "idempotency_key", f"keys beginning {TURN_KEY_PREFIX!r} are scheduled turns'"
            )
        require_id("location.channel_id", command.location.conversation_id)
        if not command.personality.strip():
            raise InvalidArgument("personality", "name the personality to talk to")
        if not scheduled and not command.content.strip() and not command.attachments:
            raise InvalidArgument("content", "the message is empty")
        if len(command.content) > self._limits.max_message_chars:
            raise InvalidArgument(
                "content",
                f"the message is {len(command.content)} characters; "
                f"the limit is {self._limits.max_message_chars}",
            )

    async def effective_config(
        self, personality: Personality, user: User | None, channel_id: str = ""
    ) -> ResolvedConfig:
        """User toward the personality → user default → channel → personality → global."""
        return (await self.config_levels(personality, user, channel_id))[0]

    async def config_levels(
        self,
        personality: Personality,
        user: User | None,
        channel_id: str = "",
        *,
        chosen_ids: Mapping[ConfigSource, str] | None = None,
    ) -> list[ResolvedConfig]:
        """Every level of the cascade holding a config, highest precedence first.

        `chosen_ids`: the config ids chosen at each level, when the caller read them already
        (TurnContext); the configs themselves come from the catalog cache."""
        default = None
        if personality.default_llm_config_id:
            default = await self._store.get_llm_config(personality.default_llm_config_id)
        if chosen_ids is None:
            chosen = await self._admin_store.model_choices(
                user_id=user.id if user is not None else "",
                personality_id=personality.id,
                channel_id=channel_id,
            )
        else:
            chosen = {}
            for level, config_id in chosen_ids.items():
                config = await self._store.get_llm_config(config_id)
                if config is not None:  # deleted since: as if not chosen
                    chosen[level] = config
        return config_levels(
            chosen=chosen,
            personality_default=default,
            global_default=self._limits.default_config,
        )

    async def resolved_settings(
        self, user: User | None, personality: Personality | None, where: Location | None
    ) -> dict[str, settings_cascade.ResolvedSetting]:
        """The settings at `where` (None: no channel level); in a thread, the channel level is
        the thread's own over its parent channel's."""
        levels = await self._admin_store.setting_levels(
            user_id=user.id if user else "",
            personality_id=personality.id if personality else "",
            **settings_cascade.channel_ids(where),
        )
        return settings_cascade.resolve(
            levels, {MAX_HISTORY_MESSAGES: self._limits.max_history_messages}
        )

    async def _check_denylist(self, user: User, where: Location, personality: Personality) -> None:
        """Operators are never filtered; a mute is refused like a block, with its own reason."""
        if user.superuser:
            return
        entries = await self._admin_store.matching_deny(
            user_id=user.platform_user_id,
            guild_id=where.guild_id,
            channel_id=where.channel_id,
            personality_slug=personality.slug,
            thread_id=where.thread_id,
        )
        check_deny_modes(user, [e.mode for e in entries])

    async def _check_nsfw(self, user: User, personality: Personality, where: Location) -> User:
        """Age-restricted channels verify the user once; NSFW personalities need both."""
        if where.nsfw_channel and not user.nsfw_verified:
            user = await self._admin_store.update_user(user.id, nsfw_verified=True)
            log.info("user.nsfw_verified", user_id=user.id)
        if personality.nsfw:
            if where.guild_id and not where.nsfw_channel:
                raise PermissionDenied(
                    f"{personality.display_name} answers only in age-restricted channels",
                    reason="NSFW_CHANNEL_REQUIRED",
                )
            if not user.nsfw_verified:
                raise PermissionDenied(
                    f"{personality.display_name} is NSFW: use the bot once in an "
                    "age-restricted channel to verify your age",
                    reason="NSFW_VERIFICATION_REQUIRED",
                )
        return user

    async def _take_rate_tokens(self, user: User, where: Location, charges: Charges) -> None:
        if user.superuser:
            return
        buckets = []
        if self._limits.user_bucket is not None:
            buckets.append(Bucket(f"user:{user.id}", self._limits.user_bucket, "you"))
        if self._limits.channel_bucket is not None and where.channel_id:
            buckets.append(
                Bucket(f"channel:{where.channel_id}", self._limits.channel_bucket, "this channel")
            )
        if buckets:
            await self._limiter.take(buckets)
            charges.buckets.extend(buckets)

    async def _give_back(self, charges: Charges) -> None:
        """Returns what `charges` took; shielded, so a cancelled request gives it back too.
        A failure to is logged, not raised: the request's own outcome is what its caller
        must see."""
        buckets, quota_keys = list(charges.buckets), list(charges.quota_keys)
        charges.buckets.clear()
        charges.quota_keys.clear()
        try:
            if buckets:
                await asyncio.shield(self._limiter.give_back(buckets))
            for key in quota_keys:
                await asyncio.shield(self._quota.release(key))
        except Exception:
            log.warning("admission.charges_not_given_back", exc_info=True)

    async def _prepare(
        self,
        user: User,
        personality: Personality,
        where: Location,
        *,
        new: bool,
        context: TurnContext | None = None,
        charges: Charges,
    ) -> Prepared:
        """The config, settings and persona of a job (from `context` when it was read)."""
        config = (
            await self.config_levels(
                personality,
                user,
                where.conversation_id,
                chosen_ids=None if context is None else context.model_choices,
            )
        )[0]
        if self._limits.demo_all_free and not config.config.free_use:
            config = replace(config, config=replace(config.config, free_use=True))
        request_type = "chat"
        if new:
            request_type, config = await self._admit_payer(user, config, charges)
        if context is None:
            persona = await self._admin_store.effective_persona(user.id, personality.id)
            settings = await self.resolved_settings(user, personality, where)
        else:
            persona = context.persona
            settings = settings_cascade.resolve(
                context.setting_levels, {MAX_HISTORY_MESSAGES: self._limits.max_history_messages}
            )
        return Prepared(
            config=config,
            settings=settings,
            persona=persona,
            request_type=request_type,
            context=context,
            new_job=new,
        )

    async def _admit_payer(
        self, user: User, resolved: ResolvedConfig, charges: Charges
    ) -> tuple[str, ResolvedConfig]:
        """The job's kind, and the config inference is sent: "guest" (admitted within the
        guests' share, or refused) for a user without a key for a free config's provider,
        else "chat".

        A provider that takes no key (a local server, or one the operator declared keyless:
        inference's list, cached) makes nobody a guest: nobody's key pays for its answer, so
        no share is spent and none is refused. Its config then goes to inference as not free
        (`free_use` false): on a free config inference pays the helper models (an image's
        description, a transcription, its clean-up) with the operator's key for a user
        without her own, and only a guest's share counts those calls. So such a user's
        helper models need her own key, as for a config that is not free: without one
        inference leaves the attachment unread, with a note naming the helper's provider
        (none is needed when the model sees images itself, or a helper is keyless too). So
        too for a user holding a key stored for it (before such keys were refused, or before
        the operator declared it keyless): it pays for nothing. For her only inference's word
        counts (`Listed.said_keyless`), not the built-in names' guess while it never answered:
        an operator may have given a built-in local name a key.

        The list is asked for every free config: inference's ListProviders at most once a
        minute in this process, and its last answer while it cannot give one (wallet.py
        `InferenceProviders`)."""
        config = resolved.config
        if not config.free_use:
            return "chat", resolved
        listed = await self.providers.listed()
        not_free = replace(resolved, config=replace(config, free_use=False))
        if listed.said_keyless(config.provider):  # inference's word, not the built-in guess
            return "chat", not_free
        keys = await self._keyvault.list_keys(user.id)
        if any(k.provider == config.provider for k in keys):
            return "chat", resolved
        if listed.takes_no_key(config.provider):  # may be the guess: she holds no key anyway
            return "chat", not_free
        await self._admit_guest(user, config, charges)
        return "guest", resolved

    async def _admit_guest(self, user: User, config: LlmConfig, charges: Charges) -> None:
        """A user without a key on a free model: within the guests' fair share, or refused."""
        limits = self._limits
        if not limits.guest_mode:
            raise FailedPrecondition(
                f"no API key for {config.provider}; add one with /wallet set {config.provider}",
                reason="NO_API_KEY",
            )
        if not user.superuser and limits.guest_user_bucket is not None:
            bucket = Bucket(f"guest:{user.id}", limits.guest_user_bucket, "you")
            await self._limiter.take([bucket])
            charges.buckets.append(bucket)
        today = f"guest:{datetime.now(UTC).date().isoformat()}"
        if await self._quota.use(today, limits.guest_daily_budget):
            charges.quota_keys.append(today)
        else:
            raise ResourceExhausted(
                "the free models' daily budget is spent; add your own key with /wallet set "
                f"{config.provider}, or try again tomorrow",
                retry_after_seconds=_seconds_to_midnight(),
                reason="GUEST_BUDGET_EXHAUSTED",
            )


def check_deny_modes(user: User, modes: Sequence[DenyMode]) -> None:
    """The denylist's verdict on the entries that apply: operators are never filtered; a
    mute is refused like a block, with its own reason."""
    if user.superuser:
        return
    if DenyMode.BLOCK in modes:
        raise PermissionDenied("you may not use this bot here", reason="DENYLISTED")
    if modes:
        raise PermissionDenied("muted here", reason="MUTED")


def _seconds_to_midnight() -> float:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC)
    return (midnight - now).total_seconds()
