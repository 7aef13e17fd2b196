"""Gateway's Postgres store (schema `core`), one module per capability.

`GatewayStore` is what the conversation path reads and writes (users, personalities, configs,
jobs); `AdminStore` is the admin API's SQL. Both are made of the capability parts:

- users.py: users and personas
- personalities.py: personalities and aliases (lookups, imports, admin writes)
- personality_related.py: rows of other tables that go with a personality (references deleted
  with it, its talkativeness)
- configs.py: LLM configs, model overrides, stored settings levels
- models.py: the chosen levels of the LLM config cascade (user toward a personality, user, channel)
- personal_aliases.py: aliases only their user uses
- channels.py: channel activations and the denylist (moderation)
- jobs.py: jobs and their usage rows (JobQueries of job_claims, job_outcomes, job_deliveries,
  job_reads; their SQL in job_claim_sql and job_finish_sql)
- retries.py: failed jobs the gateway runs again by itself, and what GetJobStatus says of them
- previews.py: the messages an answer is streamed as, and the answers whose bot died
- in_flight.py: a deleted personality's answers in flight
- lost_jobs.py: what is left of a job its run lost (taken over, or deleted with what it was of)
- attachment_reads.py: what helper models read for a job's attachments, and their usage rows
- usage.py: usage totals
- usage_rows.py: a reply's paid calls reported apart from its answer (skills', a failed reply's)
- privacy.py: a user's export and deletion
- deletions.py: deletions under way (the mark on the row, the lease the sweep takes; the
  fence between a user's key writes and her deletion's mark)
- avatars.py: avatar images
- rows.py: rows as domain objects
- lorebooks.py: lorebooks, their attachments, lore state, card assets
- turn.py: everything a Generate reads before its job, in one statement
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import autocommit
from tzurot.gateway.cache import CATALOG_TTL_SECONDS, TtlCache
from tzurot.gateway.domain import LlmConfig, Personality
from tzurot.gateway.run_limit import DEFAULT_MAX_RUNS
from tzurot.gateway.store.attachment_reads import AttachmentReadQueries
from tzurot.gateway.store.avatars import AvatarQueries
from tzurot.gateway.store.channels import ChannelQueries, ModerationQueries
from tzurot.gateway.store.configs import ConfigReads, ConfigWrites, SettingQueries
from tzurot.gateway.store.deletions import DeletionQueries, KeyWriteFence
from tzurot.gateway.store.jobs import CONTEXT_COLUMNS, RETRYABLE_CODES, JobQueries, NewJob
from tzurot.gateway.store.lorebooks import LorebookWrites, LoreReads
from tzurot.gateway.store.lost_jobs import JobLoss, LostJobQueries
from tzurot.gateway.store.models import ModelChoices
from tzurot.gateway.store.personal_aliases import PersonalAliases
from tzurot.gateway.store.personalities import PersonalityReads, PersonalityWrites
from tzurot.gateway.store.previews import PreviewQueries
from tzurot.gateway.store.privacy import PrivacyQueries
from tzurot.gateway.store.retries import RetryQueries
from tzurot.gateway.store.rows import (
    LIVE_PERSONALITY,
    PERSONALITY_COLUMNS,
    llm_config_from_row,
    personality_from_row,
    user_from_row,
)
from tzurot.gateway.store.turn import ChannelRound, TurnContext, TurnReads
from tzurot.gateway.store.usage import UsageQueries
from tzurot.gateway.store.usage_rows import UsageRowQueries
from tzurot.gateway.store.users import UserReads, UserWrites

__all__ = [
    "CONTEXT_COLUMNS",
    "LIVE_PERSONALITY",
    "PERSONALITY_COLUMNS",
    "RETRYABLE_CODES",
    "AdminStore",
    "ChannelRound",
    "GatewayStore",
    "JobLoss",
    "NewJob",
    "TurnContext",
    "llm_config_from_row",
    "personality_from_row",
    "user_from_row",
]


class GatewayStore(
    UserReads,
    PersonalityReads,
    ConfigReads,
    JobQueries,
    RetryQueries,
    AttachmentReadQueries,
    PreviewQueries,
    LostJobQueries,
    UsageRowQueries,
    LoreReads,
    TurnReads,
    KeyWriteFence,
):
    """The conversation path's SQL. Methods are small transactions; none holds a connection."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        catalog_ttl: float = CATALOG_TTL_SECONDS,
        max_runs: int = DEFAULT_MAX_RUNS,
    ) -> None:
        """`max_runs`: the runs of one job at most, whatever runs it again (run_limit.py)."""
        self._engine = engine
        self._autocommit = autocommit(engine)  # single statements: no BEGIN/COMMIT round trips
        self._max_runs = max_runs
        # Personalities (by name and id) and LLM configs (by id). Every write to them in this
        # process clears it (AdminStore shares it); other replicas' writes show within the TTL.
        self.catalog: TtlCache[Personality | LlmConfig] = TtlCache(catalog_ttl)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def max_runs(self) -> int:
        """The runs of one job at most (run_limit.py)."""
        return self._max_runs


class AdminStore(
    UserWrites,
    PersonalityWrites,
    ConfigWrites,
    ModelChoices,
    PersonalAliases,
    SettingQueries,
    ChannelQueries,
    ModerationQueries,
    UsageQueries,
    PrivacyQueries,
    DeletionQueries,
    AvatarQueries,
    LorebookWrites,
):
    """The admin API's SQL: users, personas, personalities, aliases, configs, overrides,
    settings, channel activations, the denylist, usage totals and user data."""

    def __init__(self, engine: AsyncEngine, catalog: TtlCache[Any] | None = None) -> None:
        self._engine = engine
        self._autocommit = autocommit(engine)  # single statements: no BEGIN/COMMIT round trips
        self._catalog = catalog  # GatewayStore.catalog: cleared by writes to what it caches
