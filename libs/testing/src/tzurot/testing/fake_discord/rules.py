"""Discord's limits and validation rules, as the fake enforces them."""

from __future__ import annotations

DISCORD_EPOCH_MS = 1_420_070_400_000
API_PREFIX = "/api/v10"
MAX_WEBHOOKS_PER_CHANNEL = 15
ALL_PERMISSIONS = str((1 << 50) - 1)
TEXT, THREAD, FORUM = 0, 11, 15


def valid_username(name: str) -> bool:
    """Discord's rules for webhook usernames."""
    lowered = name.lower()
    return 1 <= len(name) <= 80 and "clyde" not in lowered and "discord" not in lowered
