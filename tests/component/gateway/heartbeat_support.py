"""What a run's heartbeats found, for tests whose job is taken from the run mid-answer.

Such a run learns it at its next heartbeat (a quarter of the lease: 0.1 s in these tests).
A test that waits a fixed "past a heartbeat" assumes that beat came meanwhile; on a loaded
machine it sometimes came later, and the run streamed on. These tests wait for the beat.
"""

from __future__ import annotations

import pytest

from tzurot.gateway.store import GatewayStore
from tzurot.testing.waits import until


def heartbeats(store: GatewayStore, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each heartbeat's answer from now on (False: the job was no longer the run's)."""
    beats: list[bool] = []
    heartbeat = store.heartbeat

    async def recorded(job_id: str, attempt: int) -> bool:
        beats.append(await heartbeat(job_id, attempt))
        return beats[-1]

    monkeypatch.setattr(store, "heartbeat", recorded)
    return beats


async def lease_lost(beats: list[bool]) -> None:
    """Returns once a heartbeat found the job no longer the run's."""
    await until(lambda: False in beats, "a heartbeat found the job no longer the run's")
