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
    gateway_addr: str = "127.0.0.1:50051"
    generate_timeout_seconds: float = Field(default=600.0, gt=0)

    # Sharding: this process runs shard `shard_id` of `shard_count`. In Kubernetes the bot is a
    # StatefulSet and `pod_name` (e.g. "tzurot-bot-2") gives the ordinal when shard_id is unset.
    shard_count: int | None = Field(default=None, ge=1)
    shard_id: int | None = Field(default=None, ge=0)
    pod_name: str | None = None

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

    pluralkit_enabled: bool = True
    pluralkit_api_base: str = "https://api.pluralkit.me/v2"
    # PluralKit records a proxied message just after posting it: look again after this delay.
    pluralkit_retry_delay_seconds: float = Field(default=1.0, ge=0)
    # With autoproxy, PluralKit deletes the user's message and reposts it through a webhook.
    # A positive grace makes the bot wait that long and skip messages deleted meanwhile, so only
    # the repost is answered (costs that much latency on every message).
    pluralkit_grace_seconds: float = Field(default=0.0, ge=0)

    webhook_name: str = "Tzurot"
    # How long discord.py waits for more GUILD_CREATEs before it calls the bot ready.
    guild_ready_timeout_seconds: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _shard_from_ordinal(self) -> BotSettings:
        if self.shard_id is None and self.shard_count is not None and self.pod_name:
            match = _ORDINAL.search(self.pod_name)
            if match:
                self.shard_id = int(match.group(1))
        if self.shard_count is not None and self.shard_id is None:
            self.shard_id = 0
        if self.shard_id is not None and self.shard_count is None:
            raise ValueError("shard_id needs shard_count")
        if (
            self.shard_id is not None
            and self.shard_count is not None
            and (self.shard_id >= self.shard_count)
        ):
            raise ValueError(
                f"shard_id {self.shard_id} is out of range for shard_count {self.shard_count}"
            )
        return self
