"""Bot settings (env `TZUROT_*`)."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, model_validator

from tzurot.runtime.config import ServiceSettings

_ORDINAL = re.compile(r"-(\d+)$")


class BotSettings(ServiceSettings):
    """The Discord token, where Discord and the gateway are, sharding and per-message limits."""

    discord_token: SecretStr | None = None
    # Discord's REST base; the gateway URL comes from its `/gateway/bot` answer.
    discord_api_base: str = "https://discord.com/api/v10"
    gateway_addr: str = "127.0.0.1:15051"
    generate_timeout_seconds: float = Field(default=600.0, gt=0)
    # An answer cut short by a restart in the mesh (a rollout stopping the gateway, a service
    # that died) is asked for again this many times, 1, 2, 4 s apart, before the user is told
    # to try again; each generation that reached the model costs the user's key again.
    generate_restart_retries: int = Field(default=2, ge=0, le=5)

    # Sharding, laid out like the StatefulSet: `shard_count` S shards in all, `shard_groups` N
    # bot processes (the replicas), and this one is group `shard_index` i (the pod ordinal;
    # taken from `pod_name`, e.g. "bot-2", when unset). Group i runs shards i, i+N, … < S.
    # N defaults to S (one shard per process). Unset shard_count: one process, every shard
    # Discord recommends.
    shard_count: int | None = Field(default=None, ge=1)
    shard_index: int | None = Field(default=None, ge=0)
    shard_groups: int | None = Field(default=None, ge=1)
    pod_name: str | None = None
    # Discord lets a bot IDENTIFY one shard per `max_concurrency` bucket every 5 s: each
    # shard starts at its slot, `shard_id // max_concurrency` windows of this long after start.
    identify_delay_seconds: float = Field(default=5.0, ge=0)
    # Who syncs slash commands: unset means the first bot process (shard index 0) only.
    sync_commands: bool | None = None

    # Slash commands are synced to this guild only (development) or globally when unset.
    dev_guild_id: int | None = None

    max_personalities_per_message: int = Field(default=5, ge=1, le=5)
    max_reference_depth: int = Field(default=3, ge=0)
    max_referenced_messages: int = Field(default=10, ge=0)
    max_channel_mentions: int = Field(default=5, ge=0)
    max_role_mentions: int = Field(default=5, ge=0)
    max_image_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_audio_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    # Streaming: the posted message is edited at most this often while chunks arrive.
    stream_edit_interval_seconds: float = Field(default=1.5, ge=0)
    personality_cache_seconds: float = Field(default=30.0, ge=0)
    seen_messages_capacity: int = Field(default=10_000, ge=1)
    # A blocked user is told so at most once per this many seconds (a muted one never).
    deny_notice_cooldown_seconds: float = Field(default=600.0, ge=0)
    # While the gateway is away, a channel is told "The gateway is restarting" at most once
    # per this many seconds (an outage meets every message: at least a minute apart).
    gateway_away_notice_seconds: float = Field(default=600.0, ge=60)

    pluralkit_enabled: bool = True
    pluralkit_api_base: str = "https://api.pluralkit.me/v2"
    # PluralKit records a proxied message just after posting it: look again after this delay.
    pluralkit_retry_delay_seconds: float = Field(default=1.0, ge=0)
    # PluralKit reposts a proxied message, then deletes the original ~1 s later: a human
    # message that addresses a personality waits this long for a repost (answered instead).
    pluralkit_hold_seconds: float = Field(default=1.5, ge=0)

    webhook_name: str = "Tzurot"
    # After Discord answers 403 in a channel, no answer is generated there for this long.
    forbidden_channel_seconds: float = Field(default=600.0, ge=0)
    # Answers may ping the user they answer (only if the model writes their mention); nobody
    # else, never @everyone/@here or roles.
    ping_answered_user: bool = False
    # How long discord.py waits for more GUILD_CREATEs before it calls the bot ready.
    guild_ready_timeout_seconds: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _shard_group(self) -> BotSettings:
        if self.shard_count is None:
            if self.shard_index is not None or self.shard_groups is not None:
                raise ValueError("shard_index and shard_groups need shard_count")
            return self
        if self.shard_index is None and self.pod_name:
            match = _ORDINAL.search(self.pod_name)
            if match:
                self.shard_index = int(match.group(1))
        groups = self.shard_groups or self.shard_count
        index = self.shard_index or 0
        if groups > self.shard_count:
            raise ValueError(
                f"shard_groups {groups} is more than shard_count {self.shard_count}: "
                "some bot processes would have no shard"
            )
        if index >= groups:
            raise ValueError(f"shard_index {index} is out of range for {groups} shard groups")
        return self

    @property
    def syncs_commands(self) -> bool:
        if self.sync_commands is not None:
            return self.sync_commands
        return (self.shard_index or 0) == 0

    @property
    def shard_ids(self) -> list[int] | None:
        """The shards this process runs; None for all of them (unsharded)."""
        if self.shard_count is None:
            return None
        groups = self.shard_groups or self.shard_count
        return list(range(self.shard_index or 0, self.shard_count, groups))
