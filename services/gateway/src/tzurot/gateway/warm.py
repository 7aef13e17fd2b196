"""Gateway's warm-up before it reports SERVING: the first message after start pays no
first-use costs that the next one does not.

Touches no user data: it only connects the outgoing channels (in the background; a peer
that is down does not delay start-up) and runs read-only statements of a turn with keys
that match nothing (the turn's context, which upserts the user, in a transaction that is
rolled back), which fills SQLAlchemy's compiled-statement cache and the database
connection's catalog caches for them (on every connection the pool opens later too:
`tzurot.db.warm`). The turn's job updates run too, for a job id that no job has: they
change no row (a zero-row UPDATE, and the counter bump is off).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import grpc
import structlog
from sqlalchemy.exc import NoResultFound

from tzurot.db.warm import warm_pool
from tzurot.gateway.domain import Usage
from tzurot.gateway.ratelimit import RateLimiter
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.client import connect_channels

log = structlog.get_logger(__name__)

# Matches no personality (names are normalized slugs/aliases) and no job (keys are ids).
NO_MATCH = "\x7fwarm-up"
NO_JOB = "00000000-0000-0000-0000-000000000000"  # job ids are random (v4) UUIDs


async def warm_statements(store: GatewayStore) -> None:
    """The first turn's statements, compiled and run once with keys that match nothing."""
    await store.find_personality(NO_MATCH)
    await store.rehearse_turn_context(NO_MATCH, datetime.now(UTC))  # rolled back
    await RateLimiter(store.engine).take([])  # no bucket: takes and creates nothing
    await store.get_job_by_key(NO_MATCH)
    await store.get_job_with_context(NO_JOB)
    await store.get_llm_config(NO_JOB)  # a personality's own config (none is cached)
    with contextlib.suppress(NoResultFound):  # no such job: nothing was updated
        await store.finish_job(NO_JOB, "", Usage("", "", 0, 0), "chat")
    await store.deliver(NO_JOB, [])  # no such job: nothing is delivered (None)


async def warm_up(store: GatewayStore, channels: Iterable[grpc.aio.Channel]) -> None:
    """Connects the channels and warms the statements on every pooled connection."""
    started = time.process_time()
    connect_channels(channels)
    statements = await warm_pool(store.engine, lambda: warm_statements(store))
    cpu = round(time.process_time() - started, 3)
    log.info("gateway.warm", statements=statements, cpu_seconds=cpu)
