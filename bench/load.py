"""Load drivers: one turn as the bot does it, many conversations at once, a fixed arrival rate.

A turn is Generate (streamed to the end) plus ConfirmDelivery. Each timing also carries when
the first chunk reached the client, and how long after the fake provider started answering
that was (the provider stamps each request it answers; see `ProviderClock`).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

_MARK = re.compile(r"\[turn:([0-9a-f]{32})\]")
ANSWER = "a short instant answer"
"""Each turn's answer is this and the turn's mark: a real model rarely repeats itself, and
one answer for every turn made inference's repeat guard ask twice more (3 provider calls a
turn, issue 16)."""


def turn_mark(body: dict[str, Any]) -> str | None:
    """The mark of the turn a chat request answers (its latest marked message), if any."""
    for message in reversed(body.get("messages", [])):
        found = _MARK.search(str(message.get("content", "")))
        if found:
            return found.group(1)
    return None


def marked_answer(body: dict[str, Any]) -> str:
    """The fake provider's answer to a turn: `ANSWER` and the turn's mark."""
    return f"{ANSWER} {turn_mark(body) or uuid.uuid4().hex}"


class ProviderClock:
    """The fake provider's `reply`: stamps the moment it starts answering each marked turn."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def __call__(self, body: dict[str, Any]) -> str:
        mark = turn_mark(body)
        if mark:
            self.started[mark] = time.perf_counter()
        return marked_answer(body)


@dataclass(frozen=True)
class Timing:
    whole_ms: float
    first_chunk_ms: float
    provider_to_client_ms: float | None
    """First chunk at the client minus the provider starting its answer."""


class Chat(Protocol):
    """A client of gateway's Generate and ConfirmDelivery (over gRPC, or the in-process floor)."""

    def generate(self, request: gw.GenerateRequest) -> AsyncIterator[gw.GenerateResponse]: ...

    async def confirm(self, job_id: str, message_ids: Sequence[str]) -> None: ...


@dataclass
class GrpcChat:
    stub: gw_grpc.GatewayServiceAsyncStub

    async def generate(self, request: gw.GenerateRequest) -> AsyncIterator[gw.GenerateResponse]:
        async for event in self.stub.Generate(request):
            yield event

    async def confirm(self, job_id: str, message_ids: Sequence[str]) -> None:
        await self.stub.ConfirmDelivery(
            gw.ConfirmDeliveryRequest(job_id=job_id, message_ids=list(message_ids))
        )


def turn_request(
    user: str, channel: str, personality: str = "Echo"
) -> tuple[str, gw.GenerateRequest]:
    mark = uuid.uuid4().hex
    request = gw.GenerateRequest(
        actor=common.Actor(user_id=f"discord:{user}", display_name=user),
        location=common.Location(guild_id="bench-guild", channel_id=channel),
        personality=personality,
        content=f"hello there [turn:{mark}]",
        idempotency_key=mark,
        message_ids=[mark],
    )
    return mark, request


async def one_turn(
    chat: Chat, clock: ProviderClock, user: str, channel: str, personality: str = "Echo"
) -> Timing:
    mark, request = turn_request(user, channel, personality)
    started = time.perf_counter()
    first_chunk = 0.0
    job_id = ""
    async for event in chat.generate(request):
        if event.HasField("accepted"):
            job_id = event.accepted.job_id
        elif event.HasField("chunk") and not first_chunk:
            first_chunk = time.perf_counter()
    await chat.confirm(job_id, [f"reply-{mark}"])
    done = time.perf_counter()
    provider_started = clock.started.pop(mark, None)
    return Timing(
        whole_ms=(done - started) * 1000,
        first_chunk_ms=(first_chunk - started) * 1000,
        provider_to_client_ms=None
        if provider_started is None
        else (first_chunk - provider_started) * 1000,
    )


def user_of(prefix: str, n: int) -> str:
    """Users are per side (`mesh`, `floor`): each side stores keys under its own master key."""
    return f"{prefix}-user-{n}"


async def conversations(
    chat: Chat,
    clock: ProviderClock,
    *,
    count: int,
    turns_each: int,
    prefix: str,
    personality: str = "Echo",
) -> list[Timing]:
    """`count` conversations at once, each its own user and channel, turns one after another."""

    async def converse(n: int) -> list[Timing]:
        user, channel = user_of(prefix, n), f"{prefix}-chan-{n}"
        return [await one_turn(chat, clock, user, channel, personality) for _ in range(turns_each)]

    results = await asyncio.gather(*(converse(n) for n in range(count)))
    return [timing for timings in results for timing in timings]


@dataclass
class RateStep:
    target_per_s: float
    offered_per_s: float
    """Turns started per second over the step (the driver keeping its schedule)."""
    completed_per_s: float
    """Measured turns finished per second, from the first measured start to the last end."""
    timings: list[Timing] = field(default_factory=list)
    """The measured turns (those scheduled after the warm-up)."""
    errors: int = 0
    late_starts_ms: float = 0.0
    """The latest a turn started after its scheduled time (the driver's own lag)."""


async def at_rate(
    chat: Chat,
    clock: ProviderClock,
    *,
    per_second: float,
    seconds: float,
    users: int,
    prefix: str,
    warmup_seconds: float = 0.0,
) -> RateStep:
    """Open loop: starts a turn every 1/rate seconds whatever the latency, for
    `warmup_seconds + seconds`; only turns scheduled after the warm-up are measured.

    Arrivals follow the schedule (n / rate after the start), not the previous turn's end: a
    turn that is late to start (the loop busy) starts as soon as it can, and its latency is
    counted from its scheduled time, so a lagging driver cannot hide queueing (no
    coordinated omission)."""
    warm = round(per_second * warmup_seconds)
    total = warm + max(1, round(per_second * seconds))
    loop = asyncio.get_running_loop()
    begin = loop.time()
    timings: list[Timing] = []
    errors = 0
    late = 0.0
    ends: list[float] = []

    async def run(n: int, scheduled: float) -> None:
        nonlocal errors
        try:
            user, channel = user_of(prefix, n % users), f"{prefix}-rate-{n % users}"
            timing = await one_turn(chat, clock, user, channel)
        except Exception:
            if n >= warm:
                errors += 1
            return
        if n >= warm:
            lag_ms = (time.perf_counter() - timing.whole_ms / 1000 - scheduled) * 1000
            timings.append(
                Timing(
                    whole_ms=timing.whole_ms + max(0.0, lag_ms),
                    first_chunk_ms=timing.first_chunk_ms + max(0.0, lag_ms),
                    provider_to_client_ms=timing.provider_to_client_ms,
                )
            )
            ends.append(loop.time())

    tasks: list[asyncio.Task[None]] = []
    offset = time.perf_counter() - loop.time()  # loop clock -> perf_counter
    for n in range(total):
        due = begin + n / per_second
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        late = max(late, loop.time() - due) if n >= warm else late
        tasks.append(asyncio.create_task(run(n, due + offset)))
    started_all = loop.time()
    await asyncio.gather(*tasks)
    measured_start = begin + warm / per_second
    measured = total - warm
    offered = measured / max(started_all - measured_start, measured / per_second)
    completed = len(timings) / max((max(ends) if ends else loop.time()) - measured_start, 1e-9)
    return RateStep(per_second, offered, completed, timings, errors, late_starts_ms=late * 1000)
