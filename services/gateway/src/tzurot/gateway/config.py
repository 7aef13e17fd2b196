"""Gateway settings (env `TZUROT_*`)."""

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator

from tzurot.runtime.config import ServiceSettings

DAY_SECONDS = 86_400.0
UNFINISHED_RETENTION_MARGIN_SECONDS = 3600.0
"""How much longer than `unfinished_max_age_seconds` bot events are kept at least."""


class GatewaySettings(ServiceSettings):
    """Where gateway listens, its database, the services it calls and its limits."""

    listen: str = "127.0.0.1:15051"
    database_url: SecretStr
    inference_addr: str = "127.0.0.1:15052"
    memory_addr: str = "127.0.0.1:15053"
    keyvault_addr: str = "127.0.0.1:15054"
    default_provider: str = "openrouter"
    default_model: str = "openai/gpt-4o-mini"
    max_message_chars: int = Field(default=16_000, gt=0)
    max_history_messages: int = Field(default=50, gt=0, le=100)
    # Attempts at inference's free calls (ListSkills) on UNAVAILABLE (gRPC's native retry);
    # paid calls are never re-sent by policy (app.INFERENCE_RETRIED).
    inference_max_attempts: int = Field(default=3, ge=1, le=5)
    # Deadline for one whole generation (the provider's own timeouts are inside it).
    generate_deadline_seconds: float = Field(default=480.0, gt=0)
    # How long a duplicate request waits for the original job to finish (or for its lease to
    # run out, when its gateway died) before it answers "in progress" (JOB_IN_PROGRESS).
    duplicate_wait_seconds: float = Field(default=25.0, gt=0)
    # Identities allowed to call gateway (mTLS certificate names); `edge` is the Envoy edge,
    # which itself admits only clients presenting a `cli` certificate.
    # `gateway` is the pod's own identity: operators run `tzurot admin` inside the gateway pod.
    allowed_callers: frozenset[str] = frozenset({"bot", "cli", "edge", "gateway"})
    # Identities that may call without an actor, acting as the operator (superuser): the CLI,
    # and operators reaching gateway through the edge (cli certificates only).
    operator_identities: frozenset[str] = frozenset({"cli", "edge", "gateway"})
    # Where the Envoy edge's public listener is reachable from the internet (Discord fetches
    # avatars from there): avatar URLs are {public_url}/avatars/{slug}.{ext}.
    public_url: str = ""
    # Voice: the most characters of one answer spoken, whatever a user's own limit says.
    voice_max_characters: int = Field(default=2000, ge=1, le=10_000)
    # Platform user ids (Discord snowflakes, "cli:<name>") made superusers on sight.
    superusers: frozenset[str] = frozenset()
    # The bot owner's platform id: imported shapes.inc personalities belong to them (else
    # to the first superuser).
    bot_owner_id: str = ""
    # A running job whose heartbeat is older than this is taken over by a duplicate request
    # (its gateway was killed); the heartbeat is renewed every quarter of it. On SIGTERM a
    # gateway releases its jobs at once (failed UNAVAILABLE, retryable).
    job_lease_seconds: float = Field(default=20.0, gt=0)
    # The runs of one job at most, whatever runs it again (the bot's retries after a restart,
    # a resend taking it over, the unfinished-answer sweep, an operator's retry): each costs
    # the user's key again, and a message that kills inference kills a replica a run. Then it
    # fails for good, FAILED_PRECONDITION JOB_RUN_LIMIT (run_limit.py).
    job_max_runs: int = Field(default=3, ge=1, le=20)
    # An answer still shown as a preview (never confirmed) this long after its job ended lost
    # its bot: the restarted bot finishes it (tzurot.gateway.unfinished).
    unfinished_after_seconds: float = Field(default=30.0, gt=0)
    # One that ended longer ago than this is left as it is: the conversation has moved on
    # (and a backlog, after a long outage of the sweep, is not regenerated on users' keys).
    unfinished_max_age_seconds: float = Field(default=6 * 3600.0, gt=0)
    # Acknowledged bot events are deleted this long after their acknowledgement
    # (outbox_retention.py), but for the rows still needed: release notes (for good), an
    # `unfinished` hand-over while its job is undelivered, a greeting while its personality is
    # activated there or its history pending. At least three days (a free-will turn's dedup
    # key names a local day, and a guild's timezone moved from UTC+14 to UTC-12 has that day
    # come again 26 hours later: one local day spans 50 hours), and longer than
    # unfinished_max_age_seconds by UNFINISHED_RETENTION_MARGIN_SECONDS: a shown hand-over's
    # tombstone outlives every sweep that could still read its job.
    bot_events_retention_days: float = Field(default=7.0, ge=3.0)
    # How often an exchange delivered while memory was away is offered to memory again, and
    # jobs orphaned by a killed gateway (lease expired) are marked failed-retryable.
    sweep_seconds: float = Field(default=2.0, gt=0)
    # A user's data deletion or a personality's deletion is held this long by the request
    # that started it (then by a sweep); one whose gateway died is finished by any replica's
    # sweep once it runs out (admin/deletions.py). One that failed is handed over at once.
    deletion_lease_seconds: float = Field(default=120.0, gt=0)
    # Token buckets (capacity, refill per minute); 0 capacity disables one. Superusers exempt.
    rate_user_capacity: int = Field(default=10, ge=0)
    rate_user_per_minute: float = Field(default=6.0, gt=0)
    rate_channel_capacity: int = Field(default=30, ge=0)
    rate_channel_per_minute: float = Field(default=20.0, gt=0)
    # Guest mode: users without a key may use `free_use` configs within a fair share.
    guest_mode: bool = True
    # `tzurot up --demo` only: every config counts as `free_use`, so every personality
    # answers a keyless user on the (fake) system key. Never set it in production.
    demo_all_free: bool = False
    guest_daily_budget: int = Field(default=500, ge=0)
    guest_user_per_day: int = Field(default=20, ge=0)
    # Group channels: the seed of speaker selection; empty draws one per process (set it to
    # make the choices reproducible).
    group_seed: str = ""
    # The bot event stream: a quiet stream looks for events this often; an event the bot
    # never acknowledged is sent again after the lease.
    events_poll_seconds: float = Field(default=1.0, gt=0)
    event_lease_seconds: float = Field(default=60.0, gt=0)
    # Free will: how often each replica looks at due channels (0 turns the loop off), how
    # long a channel is quiet before a check-in, the least gap between two spontaneous
    # messages, the range of the random delay between looks at a channel, and whether the
    # operator's key may pay for free will on `free_use` models.
    freewill_tick_seconds: float = Field(default=30.0, ge=0)
    freewill_quiet_after_minutes: float = Field(default=120.0, gt=0)
    freewill_min_gap_minutes: float = Field(default=60.0, ge=0)
    freewill_check_min_seconds: float = Field(default=600.0, gt=0)
    freewill_check_max_seconds: float = Field(default=1800.0, gt=0)
    freewill_free_use: bool = False
    # Memory consolidation after every this many delivered exchanges (0: only the CronJob).
    consolidate_every_exchanges: int = Field(default=500, ge=0)
    # Wallet: stored keys' uses go to keyvault (last used) in one batch this often.
    key_use_flush_seconds: float = Field(default=10.0, gt=0)
    # Facts: after delivery, an LLM call (the user's effective config: their key, or a
    # free-use config) extracts durable facts from exchanges, batched, off the request path.
    # Off: long-term memory stays extractive (one memory per turn).
    facts_enabled: bool = False
    facts_poll_seconds: float = Field(default=30.0, gt=0)
    facts_batch: int = Field(default=32, ge=1, le=256)
    # Release notes: the changelog (default: CHANGELOG.md of the working directory or the
    # source checkout) and where its full text is read.
    changelog_path: Path | None = None
    changelog_url: str = "https://github.com/lbds137/tzurot/blob/main/CHANGELOG.md"

    @model_validator(mode="after")
    def _unfinished_reach(self) -> Self:
        """The sweep hands over answers that ended between the two: a reach no longer than
        the wait would hand over none."""
        if self.unfinished_max_age_seconds <= self.unfinished_after_seconds:
            raise ValueError(
                "unfinished_max_age_seconds must be longer than unfinished_after_seconds"
            )
        return self

    @model_validator(mode="after")
    def _tombstones_outlive_the_sweep(self) -> Self:
        """A shown hand-over's row (its dedup key) is kept while its job may still be swept."""
        if (
            self.bot_events_retention_days * DAY_SECONDS
            < self.unfinished_max_age_seconds + UNFINISHED_RETENTION_MARGIN_SECONDS
        ):
            raise ValueError(
                "bot_events_retention_days must be longer than unfinished_max_age_seconds "
                f"by {UNFINISHED_RETENTION_MARGIN_SECONDS:.0f} s at least"
            )
        return self
