"""A 🔄: a new answer replacing one of the user's answers (GenerateRequest.replaces_job_id).

The old exchange stays in history until the new answer is delivered. The new prompt leaves it
out (inference drops the old job's turns from what it reads), and delivery takes it out of
history just before it stores the new one (`remove_replaced`, from `_store_history`, so a
delivery stored late by the sweep does it too). A regeneration refused before it starts (no
key, a rate limit, the guests' budget, the denylist...) or failing after (the provider, a
cancelled stream) is never delivered: the old exchange stays in history, as the bot leaves
its messages in Discord.
"""

from __future__ import annotations

import structlog

from tzurot.gateway.domain import GenerateCommand, Job, Personality, User
from tzurot.gateway.exchanges import remove_exchange
from tzurot.gateway.ids import is_uuid
from tzurot.gateway.ports import ExchangeTurns
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.store.jobs import TURN_KEY_PREFIX
from tzurot.runtime.errors import InvalidArgument, PermissionDenied, quoted

log = structlog.get_logger(__name__)


async def replaced_job(
    store: GatewayStore, command: GenerateCommand, user: User, personality: Personality
) -> str:
    """The id of the job `command` replaces ("" for none), checked before any job is claimed:
    an answer to `user` (never one said to the channel) by the same personality in the same
    conversation, like the exchange a ❌ of theirs may delete."""
    job_id = command.replaces_job_id
    if not job_id:
        return ""
    job = await store.get_job(job_id) if is_uuid(job_id) else None
    if job is None:
        raise InvalidArgument("replaces_job_id", f"no job {quoted(job_id)} to replace")
    if job.idempotency_key.startswith(TURN_KEY_PREFIX) or job.user_id != user.id:
        raise PermissionDenied(
            "only the person an answer was for may have it answered again",
            reason="NOT_YOUR_EXCHANGE",
        )
    if (job.personality_id, job.channel_id) != (
        personality.id,
        command.location.conversation_id,
    ):
        raise InvalidArgument(
            "replaces_job_id",
            "the answer replaced is another personality's, or another conversation's",
        )
    return job.id


async def remove_replaced(store: GatewayStore, turns: ExchangeTurns | None, job: Job) -> None:
    """Takes the exchange `job` replaces out of history (its answer is being delivered)."""
    if not job.replaces_job_id or turns is None:
        return
    old = await store.get_job(job.replaces_job_id)
    if old is None:  # deleted with its user's data: its turns went with it
        return
    removed = await remove_exchange(turns, old)
    log.info("job.replaced_exchange_removed", job_id=job.id, turns=len(removed))
