"""`python -m bench.migration_0013 [--memories N ...]`: migration 0013 on a big database.

0013 remakes every memory's context in one UPDATE over `memory.memories` (docs/OPERATIONS.md,
"Upgrading"). For each size, a new database at 0012 is loaded server-side (generate_series,
secondary indexes dropped and rebuilt after) with conversations as formation leaves them:
- N jobs of 3 turns (a user's message, two assistant replies) across N / 50 channels of 5
  users each (one job in 11 is the channel's own, user ''), two personalities taking turns
  in each channel, three jobs a minute per channel with one time each (ties, which the
  migration breaks by job_id and position), an image described on one turn in 10: 3N turns,
  less the oldest 5 % (gone by retention: their memories' contexts are cleared);
- one memory per turn of one job in 3 (N memories), formed from that turn (its id in
  source_turn_ids, its created_at, its scope), with a random 384-d embedding and a context
  none of which is right (the worst case: every row is rewritten);
then `upgrade 0013` is timed, through the repo's runner (`tzurot.db.migrate.upgrade`, as the
migration Job runs it). Meanwhile a probe on another connection samples the locks the
migration's backend holds on `memory.memories` and its indexes, and every 0.5 s does what
formation does: INSERT a memory (rolled back), and UPDATE a memory (as a merge does) that the
migration may already have rewritten, timing how long each waits.

The figures are the wall time of the upgrade, its rows per second, the probe's waits, and the
relation locks seen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from tzurot.cli.localdb import create_database, local_postgres
from tzurot.db.heads import libpq_url
from tzurot.db.migrate import upgrade
from tzurot.memory.migrations import SCRIPT_LOCATION
from tzurot.memory.tables import SCHEMA

BULK_MEMORY = "1GB"
JOBS_PER_CHANNEL = 50
PROBE_PAUSE = 0.5

_TURNS = """
INSERT INTO memory.turns (job_id, position, channel_id, personality_id, user_id, role,
  author_id, author_name, content, attachments, created_at)
SELECT 'job-' || j, pos, 'ch-' || (j % $2), 'p' || (j % $2 % 10 + j / $2 % 2), u,
  CASE WHEN pos = 0 THEN 'user' ELSE 'assistant' END,
  CASE WHEN pos = 0 THEN u ELSE '' END,
  CASE WHEN pos = 0 THEN 'User ' || u ELSE '' END,
  CASE WHEN pos = 0 THEN 'I was telling you about the thing number ' || j
       || ', the one with the red door by the old mill, do you remember it?'
       ELSE 'Yes, I remember thing ' || j || ' well: the red door, the mill, the river'
       || ' behind it, and the baker who opens at dawn (' || pos || ').' END,
  CASE WHEN (j + pos) % 10 = 0
       THEN jsonb_build_array(jsonb_build_object('url', 'https://cdn/' || j || '.png',
            'description', ' a photo of a red door ' || j || ' '))
       ELSE '[]'::jsonb END,
  timestamptz '2026-01-01' + (j / $2 / 3) * interval '1 minute' + pos * interval '1 second'
FROM generate_series(0, $1 - 1) AS j
CROSS JOIN LATERAL (SELECT CASE WHEN j / $2 % 11 = 0 THEN ''
  ELSE 'u' || (j % $2 * 5 + j / $2 % 5) END AS u) AS who
CROSS JOIN generate_series(0, 2) AS pos
"""

_MEMORIES = """
INSERT INTO memory.memories (personality_id, user_id, text, embedding, sector, salience,
  source_turn_ids, created_at, last_accessed_at, decayed_at, context)
SELECT t.personality_id, t.user_id,
  coalesce(nullif(t.author_name, ''), t.role) || ': ' || t.content,
  (SELECT array_agg(random() - 0.5) FROM generate_series(1, 384) WHERE t.id IS NOT NULL)::vector,
  'episodic', 0.5, ARRAY[t.id::text], t.created_at, t.created_at, t.created_at,
  'assistant: what someone else said in this channel before, ' || t.job_id
FROM memory.turns t
WHERE split_part(t.job_id, '-', 2)::int % 3 = 0
"""

_AGED = """
DELETE FROM memory.turns WHERE split_part(job_id, '-', 2)::int < $1 / 20
"""

_HELD = """
SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE l.pid = $1 AND l.granted AND l.locktype = 'relation'
  AND c.relnamespace = 'memory'::regnamespace
  AND (c.relname LIKE 'memories%' OR c.relname LIKE 'turns%')
"""


async def load(url: str, memories: int) -> dict[str, float]:
    """The turns and memories described above; the seconds of each step."""
    seconds: dict[str, float] = {}
    channels = max(1, memories // JOBS_PER_CHANNEL)
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await conn.execute(f"SET maintenance_work_mem = '{BULK_MEMORY}'")
        for table, statement, args in (
            ("turns", _TURNS, (memories, channels)),
            ("memories", _MEMORIES, ()),
        ):
            indexes = await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'memory'"
                " AND tablename = $1 AND indexname NOT LIKE '%pkey'"
                " AND indexname NOT LIKE '%_key'",
                table,
            )
            for index in indexes:
                await conn.execute(f"DROP INDEX memory.{index['indexname']}")
            started = time.perf_counter()
            await conn.execute(statement, *args)
            seconds[f"insert {table}"] = time.perf_counter() - started
            started = time.perf_counter()
            for index in indexes:
                await conn.execute(index["indexdef"])
            await conn.execute(f"VACUUM ANALYZE memory.{table}")
            seconds[f"index {table}"] = time.perf_counter() - started
        await conn.execute(_AGED, memories)
        await conn.execute("VACUUM ANALYZE memory.turns")
    finally:
        await conn.close()
    return seconds


class _RolledBack(Exception):
    """Ends a probe's transaction."""


async def probe(url: str, done: asyncio.Event) -> dict[str, Any]:
    """While the migration runs: the relation locks its backend holds, and how long
    formation's writes wait (an INSERT; an UPDATE of a memory)."""
    conn = await asyncpg.connect(libpq_url(url))
    held: set[tuple[str, str]] = set()
    inserts: list[float] = []
    waits: list[float] = []
    updates = 0
    try:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM memory.memories LIMIT 200")]
        while not done.is_set():
            pid = await conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE 'WITH sources AS%'"
                " AND pid <> pg_backend_pid()"
            )
            if pid is not None:
                held |= {(r["relname"], r["mode"]) for r in await conn.fetch(_HELD, pid)}
                started = time.perf_counter()
                with contextlib.suppress(_RolledBack):
                    async with conn.transaction():  # rolled back: the table stays as loaded
                        await conn.execute(
                            "INSERT INTO memory.memories (personality_id, user_id, text,"
                            " embedding, sector, salience) SELECT 'p0', 'probe', 'probe',"
                            " embedding, 'episodic', 0.5 FROM memory.memories LIMIT 1"
                        )
                        inserts.append(time.perf_counter() - started)
                        raise _RolledBack
                updates += 1
                started = time.perf_counter()
                await conn.execute(
                    "UPDATE memory.memories SET salience = salience WHERE id = $1",
                    ids[updates % len(ids)],
                )
                waits.append(time.perf_counter() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), PROBE_PAUSE)
    finally:
        await conn.close()
    return {
        "held": sorted(held),
        "insert_max_ms": round(max(inserts, default=0) * 1000, 1),
        "updates": updates,
        "update_waits_over_100ms": sum(wait > 0.1 for wait in waits),
        "update_wait_max_s": round(max(waits, default=0), 1),
    }


async def measure(memories: int, pg_dir: Path) -> dict[str, Any]:
    with local_postgres(pg_dir, delete_on_exit=True) as server_url:
        url = create_database(server_url, f"m0013_{memories}")
        upgrade(SCRIPT_LOCATION, url, SCHEMA, "0012")
        loaded = await load(url, memories)
        conn = await asyncpg.connect(libpq_url(url))
        try:
            counts = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM memory.turns) AS turns,"
                " (SELECT count(*) FROM memory.memories) AS memories,"
                " pg_total_relation_size('memory.memories') AS memories_bytes"
            )
            done = asyncio.Event()
            probing = asyncio.create_task(probe(url, done))
            started = time.perf_counter()
            await asyncio.to_thread(upgrade, SCRIPT_LOCATION, url, SCHEMA, "0013")
            seconds = time.perf_counter() - started
            done.set()
            probed = await probing
            after = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE context <> '') AS kept,"
                " count(*) FILTER (WHERE context = '') AS cleared FROM memory.memories"
            )
        finally:
            await conn.close()
    return {
        "memories": counts["memories"],
        "turns": counts["turns"],
        "memories_mb": round(counts["memories_bytes"] / 2**20),
        "load_s": {k: round(v, 1) for k, v in loaded.items()},
        "upgrade_s": round(seconds, 1),
        "memories_per_s": round(counts["memories"] / seconds),
        "contexts_remade": after["kept"],
        "contexts_cleared": after["cleared"],
        **probed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.migration_0013")
    parser.add_argument("--memories", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    for memories in args.memories:
        with tempfile.TemporaryDirectory(prefix="tzbench-0013-", dir="/tmp") as tmp:
            print(asyncio.run(measure(memories, Path(tmp) / "pg")), flush=True)


if __name__ == "__main__":
    main()
