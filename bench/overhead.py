"""Figures 1 and 3: mesh overhead per message against the in-process floor; first token.

Figure 1: whole turns (Generate + ConfirmDelivery: gateway → inference → memory and keyvault
→ the instant fake provider → back, and the exchange stored) with 50 conversations at once,
through the mesh and through the floor (bench/floor.py), interleaved in rounds so drift on
a noisy machine hits both. Goal on 2 cores: ≤ 15 ms p50, ≤ 40 ms p99.

Figure 3: provider starts answering → first chunk at gateway's client. Goal: ≤ 30 ms.

10k memories per personality are seeded (through memory's AddMemory) only once memory
answers QueryMemories; until then the figure says it ran without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import grpc

from bench.env import FLOOR, MESH, BenchEnv, bench_env
from bench.load import Chat, Timing, conversations
from bench.results import Figure, summarise
from tzurot.testing.e2e import Harness
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

CONVERSATIONS = 50


def run(quick: bool) -> list[Figure]:
    rounds, turns_each, memories = (1, 2, 0) if quick else (3, 6, 10_000)
    return asyncio.run(_run(rounds, turns_each, memories))


async def _run(rounds: int, turns_each: int, memories: int) -> list[Figure]:
    async with bench_env(CONVERSATIONS) as env:
        memory_note = await seed_memories(env.harness, memories)
        sides: dict[str, Chat] = {MESH: env.grpc, FLOOR: env.floor}
        for side, chat in sides.items():  # warm connections, caches, statement caches
            await conversations(chat, env.clock, count=CONVERSATIONS, turns_each=1, prefix=side)
        single = await _single(env, 20 * rounds)
        loaded: dict[str, list[Timing]] = {MESH: [], FLOOR: []}
        for _ in range(rounds):
            for side, chat in sides.items():
                loaded[side] += await conversations(
                    chat, env.clock, count=CONVERSATIONS, turns_each=turns_each, prefix=side
                )
    return [*single, *_figures(loaded, f"{CONVERSATIONS} conversations", memory_note)]


async def _single(env: BenchEnv, turns: int) -> list[Figure]:
    """One conversation alone: the latency a user sees on an idle mesh."""
    timings: dict[str, list[Timing]] = {MESH: [], FLOOR: []}
    for _ in range(turns):
        for side, chat in ((MESH, env.grpc), (FLOOR, env.floor)):
            timings[side] += await conversations(
                chat, env.clock, count=1, turns_each=1, prefix=side
            )
    return _figures(timings, "1 conversation", "")


def _figures(timings: dict[str, list[Timing]], load: str, memory_note: str) -> list[Figure]:
    mesh = summarise(f"fig1 turn, mesh, {load}", [t.whole_ms for t in timings[MESH]])
    floor = summarise(f"fig1 turn, floor, {load}", [t.whole_ms for t in timings[FLOOR]])
    extra: dict[str, object] = {
        "overhead_p50_ms": round(mesh.p50 - floor.p50, 1),
        "overhead_p99_ms": round(mesh.p99 - floor.p99, 1),
        "ratio_p50": round(mesh.p50 / floor.p50, 2),
        "ratio_p99": round(mesh.p99 / floor.p99, 2),
    }
    if memory_note:
        extra["memories"] = memory_note
    if load != "1 conversation":
        extra["goal"] = "overhead <= 15 ms p50, <= 40 ms p99"
    first = {
        side: [t.provider_to_client_ms for t in timings[side] if t.provider_to_client_ms]
        for side in (MESH, FLOOR)
    }
    token = summarise(f"fig3 provider->client first chunk, mesh, {load}", first[MESH])
    token_floor = summarise(f"fig3 provider->client first chunk, floor, {load}", first[FLOOR])
    return [
        _with(mesh, extra),
        floor,
        _with(
            token, {"overhead_p50_ms": round(token.p50 - token_floor.p50, 1), "goal": "<= 30 ms"}
        ),
        token_floor,
    ]


def _with(figure: Figure, extra: Mapping[str, object]) -> Figure:
    return Figure(**{**figure.__dict__, "extra": {**figure.extra, **extra}})


async def seed_memories(h: Harness, per_personality: int) -> str:
    """Seeds memories for Echo through AddMemory; a note saying what was done."""
    if per_personality <= 0:
        return "none seeded (quick mode)"
    channel = await h.mesh.channel("gateway", "memory")
    stub = mem_grpc.MemoryServiceStub(channel)
    personality = await h.cli.GetPersonality(gw.GetPersonalityRequest(personality="Echo"))
    pid = personality.personality.id
    try:
        await stub.QueryMemories(
            mem.QueryMemoriesRequest(personality_id=pid, query="probe", limit=1)
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            return "skipped: QueryMemories is UNIMPLEMENTED"
        raise
    gate = asyncio.Semaphore(16)

    async def add(n: int) -> None:
        async with gate:
            await stub.AddMemory(
                mem.AddMemoryRequest(
                    memory=common.Memory(
                        personality_id=pid, text=f"bench memory {n}: the colour {n % 97} matters"
                    )
                )
            )

    await asyncio.gather(*(add(n) for n in range(per_personality)))
    return f"{per_personality} per personality"
