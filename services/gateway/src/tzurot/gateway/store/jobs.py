"""Jobs: one per request, claimed by idempotency key, leased while it runs, finished with
its answer and usage in one statement, then marked delivered.

`JobQueries` is made of one part per job: job_claims.py (claim, start, lease), job_outcomes.py
(the answer stored, the job failed), job_deliveries.py (delivery and owed history) and
job_reads.py, over job_base.py; their SQL is in job_claim_sql.py and job_finish_sql.py. The
names callers import from here are re-exported.
"""

from __future__ import annotations

from tzurot.gateway.store.job_claim_sql import RETRYABLE_CODES
from tzurot.gateway.store.job_claims import JobClaims, NewJob
from tzurot.gateway.store.job_deliveries import FOLLOW_UP_HOLD_SECONDS, Delivered, JobDeliveries
from tzurot.gateway.store.job_finish_sql import CONTEXT_COLUMNS, TURN_KEY_PREFIX
from tzurot.gateway.store.job_outcomes import JOB_TAKEN_OVER, JobOutcomes, taken_over
from tzurot.gateway.store.job_reads import JobReads

__all__ = [
    "CONTEXT_COLUMNS",
    "FOLLOW_UP_HOLD_SECONDS",
    "JOB_TAKEN_OVER",
    "RETRYABLE_CODES",
    "TURN_KEY_PREFIX",
    "Delivered",
    "JobQueries",
    "NewJob",
    "taken_over",
]


class JobQueries(JobClaims, JobOutcomes, JobDeliveries, JobReads):
    """The conversation path's job SQL (GatewayStore's part)."""
