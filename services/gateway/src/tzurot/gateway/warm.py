"""Gateway's warm-up before it reports SERVING: the first message after start pays no
first-use costs that the next one does not.

Touches no user data: it only connects the outgoing channels (in the background; a peer
that is down does not delay start-up) and runs read-only statements of a turn with keys
that match nothing, which fills SQLAlchemy's compiled-statement cache and the database
connection's catalog caches for them. The turn's job updates run too, for a job id that
no job has: they change no row (a zero-row UPDATE, and the counter bump is off).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import grpc
import structlog
from sqlalchemy.exc import NoResultFound

from tzurot.gateway.domain import Usage
from tzurot.gateway.store import GatewayStore

log = structlog.get_logger(__name__)

# Matches no personality (names are normalized slugs/aliases) and no job (keys are ids).
NO_MATCH = "\x7fwarm-up"
NO_JOB = "00000000-0000-0000-0000-000000000000"  # job ids are random (v4) UUIDs


def connect_channels(channels: Iterable[grpc.aio.Channel]) -> None:
    """Starts each channel's connection (TLS handshake) now rather than on the first call."""
    for made in channels:
        made.get_state(try_to_connect=True)


async def warm_statements(store: GatewayStore) -> None:
    """The first turn's statements, compiled and run once with keys that match nothing."""
    await store.find_personality(NO_MATCH)
    await store.get_job_by_key(NO_MATCH)
    await store.get_job_with_context(NO_JOB)
    with contextlib.suppress(NoResultFound):  # no such job: nothing was updated
        await store.finish_job(NO_JOB, "", Usage("", "", 0, 0), "chat")
    with contextlib.suppress(NoResultFound):
        await store.deliver(NO_JOB, [])


async def warm_up(store: GatewayStore, channels: Iterable[grpc.aio.Channel]) -> None:
    connect_channels(channels)
    await warm_statements(store)
    log.info("gateway.warm")
