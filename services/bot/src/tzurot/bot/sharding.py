"""Starting without waste: IDENTIFY in Discord's `max_concurrency` buckets, and command sync
only when the command set changed, by one bot process.

Discord lets a bot IDENTIFY one shard per bucket (`shard_id % max_concurrency`) every 5
seconds. Every bot pod starts its shards at the slot its shard ids give it
(`shard_id // max_concurrency` windows after start), so pods started together never collide;
a later re-IDENTIFY (after a lost session) waits one window.

Commands: the set the bot would sync is hashed (ignoring what Discord adds: ids, versions,
empty defaults) and compared with the hash of what Discord returns; equal means no PUT.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

DISCORD_ADDED = {"id", "application_id", "version", "guild_id"}


def _normal(value: Any) -> Any:
    """Drops what Discord fills in (ids, version) and empty or false defaults."""
    if isinstance(value, Mapping):
        out = {k: _normal(v) for k, v in value.items() if k not in DISCORD_ADDED}
        return {k: v for k, v in out.items() if v not in (None, "", [], {}, False)}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def command_hash(commands: Iterable[Mapping[str, Any]]) -> str:
    """A hash of a command set, equal for what the bot sends and what Discord returns."""
    normal = sorted(
        (_normal(c) for c in commands), key=lambda c: (int(c.get("type", 1)), c.get("name", ""))
    )
    for command in normal:
        command.setdefault("type", 1)
    encoded = json.dumps(normal, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()


class IdentifySchedule:
    """When each shard of this process may IDENTIFY."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.max_concurrency = 1
        self._started = time.monotonic()
        self._done: set[int] = set()

    def delay(self, shard_id: int) -> float:
        if shard_id in self._done:
            return self.window  # a re-IDENTIFY: one window after whatever came before
        self._done.add(shard_id)
        slot = self._started + (shard_id // max(1, self.max_concurrency)) * self.window
        return max(0.0, slot - time.monotonic())

    async def wait(self, shard_id: int) -> None:
        pause = self.delay(shard_id)
        if pause > 0:
            await asyncio.sleep(pause)
