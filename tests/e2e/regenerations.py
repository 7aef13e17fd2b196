"""The jobs of an answer's 🔄s, found by their keys: the bot asks each under
`<key>#regen<n>.<token>` (`AnswerBook.next_regeneration`), the token new for each 🔄, so a
test knows a 🔄's key only up to its token."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import World
from tzurot.v1 import gateway_pb2 as gw


async def regeneration_keys(world: World, key: str) -> list[str]:
    """The keys of every 🔄 asked of the answer asked under `key` (and of the answers those
    made), oldest first."""
    engine = create_engine(world.mesh.database_url)
    prefix = f"{key}#regen"
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT idempotency_key FROM core.jobs "
                    "WHERE left(idempotency_key, length(:p)) = :p ORDER BY created_at"
                ),
                {"p": prefix},
            )
            return [str(row[0]) for row in rows]
    finally:
        await engine.dispose()


async def regeneration_key(world: World, key: str, n: int, within: float = 30.0) -> str:
    """The key of the 🔄 `…#regen<n>` of the answer asked under `key`, once the bot asked it
    (the newest, should there be several)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        asked = [k for k in await regeneration_keys(world, key) if _number(k, key) == n]
        if asked:
            return asked[-1]
        if loop.time() > deadline:
            raise TimeoutError(f"no 🔄 {key}#regen{n} was asked within {within}s")
        await asyncio.sleep(0.05)


async def regeneration_delivered(
    world: World, key: str, n: int = 1, within: float = 30.0
) -> gw.Job:
    """Waits until the 🔄 `…#regen<n>` of the answer asked under `key` is delivered."""
    return await world.delivered(await regeneration_key(world, key, n, within), within)


def _number(regeneration: str, key: str) -> int | None:
    count = regeneration.removeprefix(f"{key}#regen").partition(".")[0]
    return int(count) if count.isdigit() else None
