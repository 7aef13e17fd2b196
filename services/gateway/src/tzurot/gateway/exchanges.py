"""Deleting one exchange of the history by any of its messages (❌ on any answer), and by its
job (the exchange a 🔄's answer replaces, once that answer is delivered: replacement.py).

Memory finds the turns posted as the message; their job says whose exchange it is. What was
said to the channel, not to anyone (a greeting, whose "job" is its bot event; a free-will
post or a chain reply, whose job only names its payer), is nobody's exchange: refused to
everyone, like `/history undo` (`/history clear everyone:true` takes it). Memory deletes
turns by message id, and a user's message addressed to several personalities is the
user turn of several exchanges: an id some other exchange's turn was also posted as is left
alone, so deleting one exchange never takes a turn of another.
"""

from __future__ import annotations

from collections.abc import Iterable

from tzurot.gateway.domain import HistoryTurn, Job, User
from tzurot.gateway.ports import ExchangeTurns, Memory
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.store.jobs import TURN_KEY_PREFIX
from tzurot.runtime.errors import InvalidArgument, NotFound, PermissionDenied


async def delete_exchange(
    store: GatewayStore, memory: Memory, user: User, message_id: str
) -> list[HistoryTurn]:
    """Deletes the exchange posted as `message_id` if `user` is the one it answered; its turns."""
    message_id = message_id.strip()
    if not message_id:
        raise InvalidArgument("message_id", "message_id is required")
    found = await memory.find_turns([message_id])
    job_id = _job_of(found, message_id)
    job = await store.get_job(job_id)
    if job is not None and job.idempotency_key.startswith(TURN_KEY_PREFIX):
        raise PermissionDenied(
            "this was said to the channel, not to you: nobody's to delete",
            reason="NOT_YOUR_EXCHANGE",
        )
    if job is None or job.user_id != user.id:  # a greeting has no job: nobody's either
        raise PermissionDenied(
            "only the person this answered may delete it", reason="NOT_YOUR_EXCHANGE"
        )
    known = {message_id, *(mid for turn in found for mid in turn.message_ids)}
    return await remove_exchange(memory, job, known)


async def remove_exchange(
    memory: ExchangeTurns, job: Job, known: Iterable[str] = ()
) -> list[HistoryTurn]:
    """Deletes `job`'s turns from history (found by its messages, and `known` ids of them),
    but no message id another exchange's turn was also posted as; the turns it deleted."""
    ids = {*known, *job.request_message_ids, *job.delivered_message_ids}
    if not ids:
        return []
    turns = await memory.find_turns(sorted(ids))
    ours = [turn for turn in turns if turn.job_id == job.id]
    shared = {mid for turn in turns if turn.job_id != job.id for mid in turn.message_ids}
    doomed = {mid for turn in ours for mid in turn.message_ids} - shared
    if doomed:
        await memory.delete_turns(sorted(doomed))
    return [turn for turn in ours if doomed.intersection(turn.message_ids)]


def _job_of(found: list[HistoryTurn], message_id: str) -> str:
    """The exchange's job: an answer's, else the only one the message belongs to."""
    answers = {turn.job_id for turn in found if turn.role == "assistant" and turn.job_id}
    jobs = answers or {turn.job_id for turn in found if turn.job_id}
    if not jobs:
        raise NotFound(
            f"no exchange in history was posted as message {message_id}",
            reason="EXCHANGE_NOT_FOUND",
        )
    if len(jobs) > 1:
        raise InvalidArgument(
            "message_id", "this message began several exchanges; name the answer's message"
        )
    return jobs.pop()
