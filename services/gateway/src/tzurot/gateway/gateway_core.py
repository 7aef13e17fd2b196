"""What the gateway's use-case modules share: its limits, its collaborators, and the two
lookups every part needs (the actor's user, a job by id).

`Gateway` (service.py) is assembled from one mixin per capability over this state:
admission.py (the checks before a job), personality_access.py (which personality a name
means for a user), job_claims.py (a message's job claimed and charged), reply_requests.py
(what inference is asked), usage_keeping.py (a run's usage rows), job_outcomes.py (a run's
writes on its job), delivery_flow.py (delivery, job status, Inspect), event_acks.py (the
bot's acknowledgements, a greeting's history); service.py runs jobs.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tzurot.gateway import settings as settings_cascade
from tzurot.gateway.clock import Clock
from tzurot.gateway.domain import (
    Actor,
    Job,
    LlmConfig,
    Persona,
    Personality,
    ResolvedConfig,
    User,
)
from tzurot.gateway.events import BotEvents
from tzurot.gateway.group_store import GroupStore
from tzurot.gateway.groups import Groups
from tzurot.gateway.key_uses import KeyUses
from tzurot.gateway.ports import ExchangeTurns, History, Inference, KeyVault
from tzurot.gateway.provider_list import ProviderNames
from tzurot.gateway.ratelimit import BucketPolicy, QuotaCounter, RateLimiter
from tzurot.gateway.store import AdminStore, GatewayStore, TurnContext
from tzurot.gateway.store.previews import USER_DATA_DELETING
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime.errors import InvalidArgument, NotFound, PermissionDenied, quoted

MAX_ID_CHARS = 200


@dataclass(frozen=True)
class GatewayLimits:
    max_message_chars: int
    max_history_messages: int
    duplicate_wait_seconds: float
    default_config: LlmConfig
    # A running job whose heartbeat is older than this was abandoned (its gateway died); its
    # runner renews the heartbeat every quarter of it.
    job_lease_seconds: float = 20.0
    # A job still showing a preview this long after it ended lost its bot (unfinished.py).
    unfinished_after_seconds: float = 30.0
    # One that ended longer ago than this is left as it is (unfinished.py).
    unfinished_max_age_seconds: float = 6 * 3600.0
    # Acknowledged bot events are deleted this long after, but for those still needed
    # (outbox_retention.py).
    bot_events_retention_seconds: float = 7 * 86_400.0
    # Platform user ids made superusers on sight (TZUROT_SUPERUSERS).
    superusers: frozenset[str] = frozenset()
    # Token buckets per user and per channel; None disables one. Superusers are exempt.
    user_bucket: BucketPolicy | None = None
    channel_bucket: BucketPolicy | None = None
    # Guest mode: users without a key on `free_use` configs, within a fair share.
    guest_mode: bool = True
    guest_daily_budget: int = 500
    guest_user_bucket: BucketPolicy | None = None
    # `tzurot up --demo`: every config counts as free_use (TZUROT_DEMO_ALL_FREE).
    demo_all_free: bool = False
    # Group channels: the seed of speaker selection ("" draws one per process).
    group_seed: str = ""
    # The bot event stream: how often a quiet stream looks for new events, and how long a
    # subscriber holds an unacknowledged event before it is sent again.
    events_poll_seconds: float = 1.0
    event_lease_seconds: float = 60.0
    # Memory consolidation every this many delivered exchanges (0: only the CronJob).
    consolidate_every: int = 0
    # Key uses (keyvault's "last used") are sent in a batch this often.
    key_use_flush_seconds: float = 10.0
    # Delivered exchanges wait in memory for fact extraction (gateway's FactExtraction).
    extract_facts: bool = False


@dataclass(frozen=True)
class Prepared:
    """Everything resolved for one generation before its job is claimed."""

    config: ResolvedConfig
    settings: dict[str, settings_cascade.ResolvedSetting]
    persona: Persona | None
    request_type: str
    # The turn's reads (store/turn.py): lore, the group, the voice come from here.
    context: TurnContext | None = None
    # The key had no job: its kind (`request_type`) was decided, and a guest charged, at
    # admission. Else only a job claimed again is, when claimed (Gateway._charge_claimed).
    new_job: bool = True


class GatewayState:
    """The gateway's collaborators (set by `Gateway.__init__`), shared by its mixins."""

    _store: GatewayStore
    _admin_store: AdminStore
    _voices: VoiceStore
    _voice_rng: random.Random
    _limiter: RateLimiter
    _quota: QuotaCounter
    _inference: Inference
    _memory: History
    # Memory's turns by message: a 🔄's answer takes the exchange it replaces out of history
    # (replacement.py). None: replacing is left to the client (JobAccepted.replacing false).
    _turns: ExchangeTurns | None
    _keyvault: KeyVault
    _limits: GatewayLimits
    _background: set[asyncio.Task[None]]
    _history_pending: bool
    _greetings_pending: bool
    clock: Clock
    group_store: GroupStore
    events: BotEvents
    groups: Groups
    key_uses: KeyUses
    # Inference's providers (the wallet's cached list): which take no key (admission.py).
    providers: ProviderNames
    facts_waiting: Callable[[], None]

    async def user(self, actor: Actor, *, refuse_if_deleting: bool = True) -> User:
        """The actor's user, created on first sight; superuser when the operator listed them.

        Every use-case acting for a human comes through here: no actor, no user; and none
        for a user whose data deletion is under way (`refuse_deleting`), unless the caller
        only looks up who a message addresses (`refuse_if_deleting` False: then Generate
        refuses the message itself, in words the bot shows in the channel).
        """
        require_id("actor.user_id", actor.platform_user_id)
        user = await self._store.upsert_user(
            actor, superuser=actor.platform_user_id in self._limits.superusers
        )
        if refuse_if_deleting:
            refuse_deleting(user)
        return user

    @asynccontextmanager
    async def key_write(self, user_id: str) -> AsyncIterator[None]:
        """Held while one of the user's keys is written to keyvault (wallet.py): refused
        (`user_data_deleting`) once her data deletion is recorded or done, and none can be
        recorded until the block ends, so her deletion, which removes her keys after its
        mark, finds the key written (store/deletions.py `KeyWriteFence`)."""
        async with self._store.key_write(user_id) as stays:
            if not stays:
                raise user_data_deleting()
            yield

    async def _job(self, job_id: str) -> Job:
        require_job_id(job_id)
        job = await self._store.get_job(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", reason="JOB_NOT_FOUND")
        return job

    async def _store_personality(self, personality_id: str) -> Personality:
        personality = await self._store.get_personality(personality_id)
        if personality is None:
            raise NotFound(
                f"personality {personality_id} no longer exists", reason="PERSONALITY_NOT_FOUND"
            )
        return personality


def refuse_deleting(user: User) -> None:
    """PERMISSION_DENIED `USER_DATA_DELETING` while the user's data deletion is under way
    (admin/deletions.py): memory may have forgotten them already and would keep nothing, so
    nothing is answered, rather than answered and silently not kept. PERMISSION_DENIED, as
    the denylist's refusal: the bot shows its message, in a channel as to a command."""
    if user.deleting:
        raise user_data_deleting()


def user_data_deleting() -> PermissionDenied:
    """The refusal of a user whose data deletion is under way (`refuse_deleting`)."""
    return PermissionDenied(
        "your data is being deleted, as you asked; until that has finished (usually within "
        "minutes, up to a day while ElevenLabs cannot be reached to delete cloned voices) "
        "nothing you send is answered or kept",
        reason=USER_DATA_DELETING,
    )


def require_job_id(job_id: str) -> None:
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise InvalidArgument("job_id", f"{quoted(job_id)} is not a job id") from None


def require_id(field: str, value: str) -> None:
    if not value.strip():
        raise InvalidArgument(field, f"{field} is required")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(field, f"{field} is longer than {MAX_ID_CHARS} characters")
