"""Why a job is no longer there for the run answering it, or for the client confirming it,
told apart, since the user reads them differently.

Another run took the job over (this one lost its lease: JOB_TAKEN_OVER), or it was deleted
while it was being answered: with its personality (PERSONALITY_DELETED; store/in_flight.py
drops its answers in flight), or with its user's data (USER_DATA_DELETING, which wins, as it
does for the half answers a dead bot left: store/previews.why_withheld). A deleted one reads
as those half answers do once a restarted bot shows them (unfinished.py): the same reason and
the same words, so the bot streaming it says so in its preview, in the same way. None of them
writes the answer: it reaches no one's history. What the provider billed for it is recorded,
as paid but not delivered (`usage_log.failed`), unless its user's data is being deleted.
"""

from __future__ import annotations

from tzurot.gateway.gateway_core import user_data_deleting
from tzurot.gateway.store import JobLoss
from tzurot.gateway.store.jobs import taken_over
from tzurot.gateway.store.previews import PERSONALITY_DELETED, USER_DATA_DELETING
from tzurot.gateway.unfinished import withheld_words
from tzurot.runtime.errors import FailedPrecondition, NotFound, TzurotError


def personality_deleted() -> FailedPrecondition:
    """The error of an answer whose job went with its personality's deletion while it was
    answered: in the words its half answer reads with after a restart."""
    return FailedPrecondition(withheld_words(PERSONALITY_DELETED), reason=PERSONALITY_DELETED)


def lost_job_error(job_id: str, loss: JobLoss) -> TzurotError:
    """What the run of `job_id` ends with, its job no longer its own (`loss`: what is left)."""
    if loss.job_gone and loss.user_deleting:
        return user_data_deleting()
    if loss.job_gone and loss.personality_deleted:
        return personality_deleted()
    return taken_over(job_id)


def gone_job_error(job_id: str, withheld: str) -> TzurotError:
    """What a confirmation of `job_id`, a job that is gone, is told: why its deletion dropped
    it (`withheld`: the reason its half answer was handed to the bot with, if it was), or
    else that there is no such job."""
    if withheld == USER_DATA_DELETING:
        return user_data_deleting()
    if withheld == PERSONALITY_DELETED:
        return personality_deleted()
    return NotFound(f"no job {job_id}", reason="JOB_NOT_FOUND")
