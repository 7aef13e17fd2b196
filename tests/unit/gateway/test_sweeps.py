"""The gateway's background sweeps are independent: a history sweep that keeps failing (memory
refusing an exchange, a bug) never stops orphaned jobs from being failed, and the reverse."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from tzurot.gateway.service import Gateway


async def _sweeps_until(broken: str, working: str) -> int:
    calls = {
        "fail_orphaned_jobs": 0,
        "store_pending_history": 0,
        "run_owed_follow_ups": 0,
        "store_pending_greetings": 0,
        "finish_unfinished_answers": 0,
        "drop_old_bot_events": 0,
    }
    enough = asyncio.Event()

    def sweep(name: str):  # type: ignore[no-untyped-def]
        async def run() -> int:
            calls[name] += 1
            if name == working and calls[name] >= 3:
                enough.set()
            if name == broken:
                raise RuntimeError("memory refused the exchange")
            return 0

        run.__name__ = name
        return run

    fake = SimpleNamespace(**{name: sweep(name) for name in calls})
    fake.event_retention = SimpleNamespace(drop_old_bot_events=fake.drop_old_bot_events)
    task = asyncio.create_task(Gateway.run_sweeps(fake, 0.001))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(enough.wait(), timeout=10)
    finally:
        task.cancel()
    assert calls[broken] >= 2  # the broken one is retried too
    return calls[working]


async def test_a_failing_history_sweep_does_not_stop_orphans_from_failing() -> None:
    assert await _sweeps_until("store_pending_history", "fail_orphaned_jobs") >= 3


async def test_a_failing_orphan_sweep_does_not_stop_late_history() -> None:
    assert await _sweeps_until("fail_orphaned_jobs", "store_pending_history") >= 3


async def test_a_failing_history_sweep_does_not_stop_unfinished_answers() -> None:
    assert await _sweeps_until("store_pending_history", "finish_unfinished_answers") >= 3


async def test_a_failing_history_sweep_does_not_stop_owed_group_follow_ups() -> None:
    assert await _sweeps_until("store_pending_history", "run_owed_follow_ups") >= 3


async def test_a_failing_follow_up_sweep_does_not_stop_late_greetings() -> None:
    assert await _sweeps_until("run_owed_follow_ups", "store_pending_greetings") >= 3


async def test_a_failing_history_sweep_does_not_stop_late_greetings() -> None:
    assert await _sweeps_until("store_pending_history", "store_pending_greetings") >= 3


async def test_a_failing_greeting_sweep_does_not_stop_late_history() -> None:
    assert await _sweeps_until("store_pending_greetings", "store_pending_history") >= 3


async def test_a_failing_retention_sweep_does_not_stop_unfinished_answers() -> None:
    assert await _sweeps_until("drop_old_bot_events", "finish_unfinished_answers") >= 3


async def test_a_failing_unfinished_sweep_does_not_stop_the_retention() -> None:
    assert await _sweeps_until("finish_unfinished_answers", "drop_old_bot_events") >= 3
