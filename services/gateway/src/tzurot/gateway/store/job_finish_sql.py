"""The statements that finish a job (its answer and its usage row in one), read it by id, page
the delivered jobs whose history is owed, and deliver one (with its group round, activity
counter, scheduled turn and follow-up)."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from tzurot.db import direct
from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import JobStatus

# A scheduled turn's job key: this prefix and its bot event's id (groups.TURN_KEY_PREFIX;
# groups imports the store, not the other way).
TURN_KEY_PREFIX = "turn:"
"""A scheduled turn's job key (free will, a chain reply): `turn:<event id>`."""
_TURN_KEY_PATTERN = f"^{TURN_KEY_PREFIX}[0-9a-f]{{8}}(-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}}$"


@functools.cache
def pending_history_statement() -> sa.Select[tuple[object, ...]]:
    """jobs_pending_history's statement, built once: a page after (`after_at`, `after_id`)."""
    jobs = t.jobs.c
    after = sa.tuple_(jobs.created_at, jobs.id) > sa.tuple_(
        sa.bindparam("after_at", type_=sa.DateTime(timezone=True)),
        sa.bindparam("after_id", type_=jobs.id.type),
    )
    return (
        sa.select(t.jobs)
        .where(
            jobs.status == JobStatus.STREAMED.value,
            sa.func.cardinality(jobs.delivered_message_ids) > 0,
            jobs.error_code.is_(None),  # not refused for good (refuse_history)
            after,
        )
        .order_by(jobs.created_at, jobs.id)
        .limit(sa.bindparam("row_limit", type_=sa.Integer))
    )


CONTEXT_COLUMNS = ("user_content", "user_attachments", "prompt_report", "reasoning")
"""What a finished reply leaves on its job for delivery and Inspect (job_context.py)."""


def _finish_job_statement() -> sa.Select[Any]:
    """UPDATE the job to streamed and INSERT its usage row from what the UPDATE returned."""
    jobs = t.jobs.c
    attempt = sa.bindparam("attempt", type_=sa.Integer)
    done = (
        sa.update(t.jobs)
        .where(
            jobs.id == sa.bindparam("job_id", type_=jobs.id.type),
            # The run's own attempt, still running: not one whose lease another run took.
            sa.or_(
                attempt.is_(None),
                sa.and_(jobs.attempts == attempt, jobs.status == JobStatus.RUNNING.value),
            ),
        )
        .values(
            status=JobStatus.STREAMED.value,
            content=sa.bindparam("v_content", type_=sa.Text),
            provider=sa.bindparam("v_provider", type_=sa.Text),
            model=sa.bindparam("v_model", type_=sa.Text),
            input_tokens=sa.bindparam("v_input_tokens", type_=sa.Integer),
            output_tokens=sa.bindparam("v_output_tokens", type_=sa.Integer),
            finished_at=sa.func.now(),
            **{
                name: sa.bindparam(f"v_{name}", type_=getattr(jobs, name).type)
                for name in CONTEXT_COLUMNS
            },
        )
        .returning(*t.jobs.c)
        .cte("done")
    )
    logged = (
        sa.insert(t.usage_log)
        .from_select(
            [
                "user_id",
                "job_id",
                "provider",
                "model",
                "input_tokens",
                "output_tokens",
                "images",
                "request_type",
                "estimated",
            ],
            sa.select(
                done.c.user_id,
                done.c.id,
                done.c.provider,
                done.c.model,
                done.c.input_tokens,
                done.c.output_tokens,
                sa.bindparam("v_images", type_=sa.Integer),
                sa.bindparam("v_request_type", type_=sa.Text),
                # Some of the answer's tokens are Tzurot's estimate (Usage.estimated).
                sa.bindparam("v_estimated", type_=sa.Boolean),
            ),
        )
        .cte("logged")
    )
    return sa.select(done).add_cte(logged)


FINISH_JOB = _finish_job_statement()
FINISH_JOB_ALONE = direct.Statement(FINISH_JOB)
JOB_BY_ID = direct.Statement(
    sa.select(t.jobs).where(t.jobs.c.id == sa.bindparam("job_id", type_=t.jobs.c.id.type))
)


def _deliver_statement() -> sa.Select[Any]:
    """Marks the streamed job delivered, bumps the activity counter when asked, and reads the
    job's group round (if any), in one statement: what ConfirmDelivery writes and needs after
    the exchange is stored. A scheduled turn's bot event is delivered with it (its message
    ids), so the turn is never sent to the bot again once its answer is posted. A round's
    last answer (or a chain reply) owes its group follow-up from this statement on
    (`group_follow_ups`, held by the delivering gateway for `follow_up_seconds`): a gateway
    killed before the follow-up ran leaves it to the sweep (delivery_flow.py
    `run_owed_follow_ups`), whichever path delivered it.

    Only a job still streamed is delivered, and the counter is bumped only when it was: of
    concurrent confirmations of one job (each waits for the other's row lock, then sees the
    job delivered), exactly one delivers it and counts it."""
    jobs = t.jobs.c
    done = (
        sa.update(t.jobs)
        .where(
            jobs.id == sa.bindparam("job_id", type_=jobs.id.type),
            jobs.status == JobStatus.STREAMED.value,
        )
        .values(
            status=JobStatus.DELIVERED.value,
            delivered_message_ids=sa.bindparam(
                "message_ids", type_=jobs.delivered_message_ids.type
            ),
            delivered_at=sa.func.now(),
            # A refusal of its history (refuse_history) no longer holds: it is stored now.
            error_code=None,
            error_reason=None,
            error_message=None,
        )
        .returning(*t.jobs.c)
        .cte("done")
    )
    counters = g.activity_counters
    bump = insert(counters).from_select(
        ["name", "value"],
        sa.select(sa.bindparam("counter", type_=sa.Text), sa.literal(1, sa.BigInteger)).where(
            sa.bindparam("bump", type_=sa.Boolean), sa.exists(sa.select(done.c.id))
        ),
    )
    bumped = (
        bump.on_conflict_do_update(
            index_elements=[counters.c.name], set_={"value": counters.c.value + 1}
        )
        .returning(counters.c.value)
        .cte("bumped")
    )
    e = g.bot_events.c
    key = done.c.idempotency_key
    turn_id = sa.func.substr(key, len(TURN_KEY_PREFIX) + 1)
    event_id = sa.case(
        (key.regexp_match(_TURN_KEY_PATTERN), sa.cast(turn_id, e.id.type)), else_=sa.null()
    )
    turn_event = (
        sa.update(g.bot_events)
        .where(e.id == event_id, e.delivered_at.is_(None))
        .values(
            delivered_at=sa.func.now(), message_ids=done.c.delivered_message_ids, dropped_reason=""
        )
        .returning(e.id)
        .cte("turn_event")
    )
    gj = g.group_jobs.c
    # Only a round's last answer has a follow-up a repeat does anything with (the chain
    # reply, and the last speaker with it: groups.after_delivery's `again`).
    hold = sa.func.make_interval(
        0, 0, 0, 0, 0, 0, sa.bindparam("follow_up_seconds", type_=sa.Float)
    )
    owed = (
        insert(g.group_follow_ups)
        .from_select(
            ["job_id", "due_at"],
            sa.select(done.c.id, sa.func.now() + hold)
            .select_from(done.join(g.group_jobs, gj.job_id == done.c.id))
            .where(gj.last_in_round),
        )
        .on_conflict_do_nothing(index_elements=[g.group_follow_ups.c.job_id])
        .returning(g.group_follow_ups.c.job_id)
        .cte("owed")
    )
    return sa.select(
        done,
        gj.job_id.label("group_job_id"),
        gj.conversation_id.label("group_conversation_id"),
        gj.round_id.label("group_round_id"),
        gj.depth.label("group_depth"),
        gj.last_in_round.label("group_last_in_round"),
        sa.select(bumped.c.value).scalar_subquery().label("counter"),
        sa.select(turn_event.c.id).scalar_subquery().label("turn_event_id"),
        sa.exists(sa.select(owed.c.job_id)).label("follow_up_owed"),
    ).select_from(done.outerjoin(g.group_jobs, gj.job_id == done.c.id))


DELIVER = direct.Statement(_deliver_statement())
