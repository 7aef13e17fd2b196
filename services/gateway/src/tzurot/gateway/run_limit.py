"""How many times one job may run, whatever runs it again.

Every run of a job that reached the model costs its user's key again, and a message that
kills the service answering it (a poison message: an inference replica dying on it) kills
one replica per run, cutting every other answer that replica streamed. A job is run again by
the bot's own retries after a restart (`GATEWAY_RESTARTING`, `SERVICE_RESTARTING`), by a
resend taking it over once its lease ran out, by the claim of one the sweep failed
`ORPHANED`, by the unfinished-answer sweep's regeneration and by an operator's RetryJob: each
claims it under its idempotency key, and each claim counts one more `jobs.attempts`. So the
cap is kept where every path passes (store/job_claim_sql.py, store/retries.py): a job that ran
`max_runs` times and whose last run was cut (a service died, its gateway stopped:
`CUT_REASONS`) is failed for good instead (FAILED_PRECONDITION `JOB_RUN_LIMIT`, in words the
user reads in Discord), and no claim, sweep or retry runs it again. Any other failure is kept
as it is (it says better what went wrong), and the job may run again.
"""

from __future__ import annotations

from tzurot.gateway.domain import JobError
from tzurot.runtime.errors import FailedPrecondition, TzurotError

DEFAULT_MAX_RUNS = 3
"""The runs of one job at most (`TZUROT_JOB_MAX_RUNS`): the bot's first ask and its two
retries after a restart (`TZUROT_GENERATE_RESTART_RETRIES`, 2)."""
JOB_RUN_LIMIT = "JOB_RUN_LIMIT"
RUN_LIMIT_CODE = "FAILED_PRECONDITION"
CUT_REASONS = ("SERVICE_RESTARTING", "GATEWAY_RESTARTING")
"""The failures a run counts toward the cap for: a service of the mesh died under it, or its
gateway stopped or was killed (an orphan). Not a provider's hiccup (PROVIDER_UNAVAILABLE, a
timeout), a client gone (CLIENT_CANCELLED: the bot's own retries and the unfinished-answer
sweep's MAX_REGENERATIONS bound those) nor a run that never started: a 🔄 pressed again on
an answer whose regenerations met a provider's outage is run again."""


def run_limit_message(max_runs: int) -> str:
    """What the user reads (after the personality's voice) and the job's record keeps."""
    times = "once" if max_runs == 1 else f"{max_runs} times"
    return f"this message made the answering service fail {times}; it is not retried"


def run_limit_error(max_runs: int) -> JobError:
    """The job's error once its `max_runs` runs all failed: not retryable."""
    return JobError(RUN_LIMIT_CODE, JOB_RUN_LIMIT, run_limit_message(max_runs))


def past_run_limit(err: TzurotError, attempt: int, max_runs: int) -> TzurotError | None:
    """What the run `attempt` that failed with `err` ends with instead, when it was the job's
    last allowed run and `err` cut it (`CUT_REASONS`; the store writes the same on the job:
    `store/job_claim_sql.py`); None otherwise."""
    if attempt < max_runs or err.reason not in CUT_REASONS:
        return None
    return FailedPrecondition(run_limit_message(max_runs), reason=JOB_RUN_LIMIT)
