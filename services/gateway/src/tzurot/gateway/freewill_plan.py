"""When a personality speaks up on its own (free will): pure decisions over a clock value.

The scheduler (freewill.py) looks at each opted-in channel when its seeded `next_check_at`
comes, and asks `decide` whether to speak and how:

- never in the channel's quiet hours (local to the guild's time zone), never beyond the
  channel's daily budget (a local day), never sooner than `min_gap` after the last one;
- a **check-in** when no human has spoken for `quiet_after` and the personality has not
  already checked in since the last human message (one per quiet spell, so a dead channel
  is not talked at);
- else, sometimes, a **reaction** to a human message of the last `react_window`;
- else, rarely, a **reflection** drawn from the personality's memories.

A queued turn is checked again when it runs (`stale`): a reaction only within the react
window of when it was queued, a check-in or reflection within `turn_max_age`, and a check-in
not once a human spoke after it was queued (the quiet spell it was for is over).

Every random draw comes from a generator seeded by (seed, channel, time of the check), so a
test with a fixed clock and seed knows exactly what happens.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Action(enum.StrEnum):
    CHECK_IN = "check_in"
    REACT = "react"
    REFLECT = "reflect"


@dataclass(frozen=True)
class FreeWillPolicy:
    daily_budget: int = 3
    quiet_after: timedelta = timedelta(hours=2)
    min_gap: timedelta = timedelta(hours=1)
    react_window: timedelta = timedelta(minutes=15)
    react_chance: float = 0.25
    reflect_chance: float = 0.05
    # Seconds between two looks at a channel: drawn uniformly in this range.
    check_every: tuple[float, float] = (600.0, 1800.0)
    # A queued check-in or reflection not run within this long is dropped (a reaction: past
    # `react_window`).
    turn_max_age: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class ChannelState:
    timezone: str
    quiet_start_hour: int  # local hour the quiet window starts (inclusive)
    quiet_end_hour: int  # local hour it ends (exclusive); equal hours: no quiet window
    last_human_at: datetime | None
    last_freewill_at: datetime | None
    used_today: int


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_day(now: datetime, timezone: str) -> date:
    """The budget's day: the calendar day in the guild's time zone."""
    return now.astimezone(zone(timezone)).date()


def in_quiet_hours(now: datetime, timezone: str, start_hour: int, end_hour: int) -> bool:
    """Whether `now` falls in [start, end) local hours; a window may wrap midnight (23-8)."""
    if start_hour == end_hour:
        return False
    hour = now.astimezone(zone(timezone)).hour
    if start_hour < end_hour:
        return start_hour <= hour < end_hour
    return hour >= start_hour or hour < end_hour


def decide(
    now: datetime, state: ChannelState, policy: FreeWillPolicy, rng: random.Random
) -> Action | None:
    """What to do at this check, or None (see the module docstring)."""
    if not _may_speak(now, state, policy):
        return None
    roll = rng.random()
    human = state.last_human_at
    if human is None:
        return None  # a channel nobody ever talked in is not talked at
    if now - human >= policy.quiet_after:
        fresh_spell = state.last_freewill_at is None or state.last_freewill_at < human
        return Action.CHECK_IN if fresh_spell else None
    if now - human <= policy.react_window and roll < policy.react_chance:
        return Action.REACT
    if roll < policy.react_chance + policy.reflect_chance:
        return Action.REFLECT
    return None


def _may_speak(now: datetime, state: ChannelState, policy: FreeWillPolicy) -> bool:
    """Outside quiet hours, within the day's budget, and not too soon after the last one."""
    if in_quiet_hours(now, state.timezone, state.quiet_start_hour, state.quiet_end_hour):
        return False
    if state.used_today >= policy.daily_budget:
        return False
    last = state.last_freewill_at
    return last is None or now - last >= policy.min_gap


def stale(
    action: str,
    queued_at: datetime,
    now: datetime,
    policy: FreeWillPolicy,
    last_human_at: datetime | None = None,
) -> bool:
    """Whether a turn queued at `queued_at` for `action` is too late to run at `now`."""
    limit = policy.react_window if action == Action.REACT else policy.turn_max_age
    if now - queued_at > limit:
        return True
    spoke_since = last_human_at is not None and last_human_at > queued_at
    return action == Action.CHECK_IN and spoke_since


def pick_speaker(personality_ids: Sequence[str], rng: random.Random) -> str:
    """Which opted-in personality speaks (the list in a stable order)."""
    ordered = sorted(personality_ids)
    return ordered[rng.randrange(len(ordered))]


def next_check(now: datetime, policy: FreeWillPolicy, rng: random.Random) -> datetime:
    low, high = policy.check_every
    return now + timedelta(seconds=rng.uniform(low, max(low, high)))


def directive(action: Action, name: str, memory_text: str = "") -> str:
    """The instruction inference gets in place of a user's message."""
    if action is Action.CHECK_IN:
        return (
            f"The channel has been quiet for a while. As {name}, check in with the people "
            "here on your own initiative: a short, natural message in character, picking up "
            "on the conversation above if there is one. Do not mention being prompted."
        )
    if action is Action.REACT:
        return (
            f"As {name}, react briefly and naturally to the most recent message above, on your "
            "own initiative. Do not mention being prompted."
        )
    remembered = f' You remember: "{memory_text}"' if memory_text else ""
    return (
        f"As {name}, share a short spontaneous reflection with the channel, drawn from your "
        f"memories and the conversation above.{remembered} Do not mention being prompted."
    )
