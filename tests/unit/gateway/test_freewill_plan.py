"""Free-will decisions: quiet hours in the guild's zone, budgets, gaps, one check-in per spell."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tzurot.gateway.freewill_plan import (
    Action,
    ChannelState,
    FreeWillPolicy,
    decide,
    in_quiet_hours,
    local_day,
    next_check,
    stale,
)
from tzurot.gateway.speakers import seeded_rng

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
POLICY = FreeWillPolicy(daily_budget=2, react_chance=0.0, reflect_chance=0.0)


def state(**changes: object) -> ChannelState:
    base: dict[str, object] = {
        "timezone": "UTC",
        "quiet_start_hour": 23,
        "quiet_end_hour": 8,
        "last_human_at": NOON - timedelta(hours=3),
        "last_freewill_at": None,
        "used_today": 0,
    }
    base.update(changes)
    return ChannelState(**base)  # type: ignore[arg-type]  # the test builds it from a dict


def test_a_quiet_channel_gets_a_check_in() -> None:
    assert decide(NOON, state(), POLICY, seeded_rng(1)) is Action.CHECK_IN


def test_not_before_the_channel_has_been_quiet_long_enough() -> None:
    recent = state(last_human_at=NOON - timedelta(minutes=30))
    assert decide(NOON, recent, POLICY, seeded_rng(1)) is None


def test_one_check_in_per_quiet_spell() -> None:
    done = state(last_freewill_at=NOON - timedelta(hours=1, minutes=30))
    assert decide(NOON, done, POLICY, seeded_rng(1)) is None


def test_never_beyond_the_daily_budget() -> None:
    assert decide(NOON, state(used_today=2), POLICY, seeded_rng(1)) is None


def test_never_sooner_than_the_minimum_gap() -> None:
    soon = state(
        last_human_at=NOON - timedelta(hours=3),
        last_freewill_at=NOON - timedelta(minutes=10),
    )
    assert decide(NOON, soon, POLICY, seeded_rng(1)) is None


def test_quiet_hours_are_local_to_the_guild() -> None:
    # 12:00 UTC is 23:00 in Auckland (UTC+13 in December): inside 23-8 there.
    assert in_quiet_hours(NOON, "Pacific/Auckland", 23, 8)
    assert not in_quiet_hours(NOON, "UTC", 23, 8)
    assert decide(NOON, state(timezone="Pacific/Auckland"), POLICY, seeded_rng(1)) is None


def test_quiet_windows_may_or_may_not_wrap_midnight() -> None:
    assert in_quiet_hours(NOON.replace(hour=2), "UTC", 23, 8)
    assert not in_quiet_hours(NOON.replace(hour=9), "UTC", 23, 8)
    assert in_quiet_hours(NOON.replace(hour=13), "UTC", 12, 14)
    assert not in_quiet_hours(NOON, "UTC", 5, 5)


def test_the_budget_day_is_the_local_day() -> None:
    assert local_day(NOON, "Pacific/Auckland") == date(2026, 12, 3)
    assert local_day(NOON, "no/such zone") == date(2026, 12, 2)


def test_reactions_to_recent_messages_come_with_their_chance() -> None:
    policy = FreeWillPolicy(react_chance=1.0, reflect_chance=0.0)
    recent = state(last_human_at=NOON - timedelta(minutes=5))
    assert decide(NOON, recent, policy, seeded_rng(1)) is Action.REACT


def test_reflections_come_rarely_and_only_in_a_channel_that_has_talked() -> None:
    policy = FreeWillPolicy(react_chance=0.0, reflect_chance=1.0)
    middling = state(last_human_at=NOON - timedelta(hours=1))
    assert decide(NOON, middling, policy, seeded_rng(1)) is Action.REFLECT
    assert decide(NOON, state(last_human_at=None), policy, seeded_rng(1)) is None


def test_the_schedule_is_random_within_its_range_and_seeded() -> None:
    policy = FreeWillPolicy(check_every=(60.0, 120.0))
    times = {next_check(NOON, policy, seeded_rng("s", n)) for n in range(30)}
    assert len(times) > 20
    assert all(NOON + timedelta(seconds=60) <= t <= NOON + timedelta(seconds=120) for t in times)
    assert next_check(NOON, policy, seeded_rng("s", 1)) == next_check(
        NOON, policy, seeded_rng("s", 1)
    )


def test_a_queued_turn_goes_stale_by_its_kind() -> None:
    """A reaction within the react window only; a check-in or reflection within
    turn_max_age; a check-in not once a human spoke after it was queued."""
    policy = FreeWillPolicy(react_window=timedelta(minutes=15), turn_max_age=timedelta(hours=1))
    late = NOON + timedelta(minutes=20)
    assert stale(Action.REACT, NOON, late, policy)
    assert not stale(Action.REACT, NOON, NOON + timedelta(minutes=15), policy)
    assert not stale(Action.CHECK_IN, NOON, late, policy)
    assert not stale(Action.REFLECT, NOON, late, policy)
    assert stale(Action.REFLECT, NOON, NOON + timedelta(minutes=61), policy)
    spoke = NOON + timedelta(minutes=1)
    assert stale(Action.CHECK_IN, NOON, late, policy, last_human_at=spoke)
    assert not stale(Action.REFLECT, NOON, late, policy, last_human_at=spoke)
    assert not stale(Action.CHECK_IN, NOON, late, policy, last_human_at=NOON)
