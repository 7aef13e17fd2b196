"""The formation outbox's statements (outbox.py runs them): a batch claimed with all that
formation reads of it, its writes and the end of its jobs, a lease renewed, jobs given back.
Each is one statement, fenced by the claim's token: a job another worker leased since, or a
forget deleted, is never touched.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from tzurot.db import direct
from tzurot.memory.memory_rows import EFFECTIVE_SALIENCE_SQL, nth_vector
from tzurot.memory.tables import turns
from tzurot.memory.tombstones import forgotten_sql

PRECEDING_WINDOW = 8
"""How many turns back formation looks for an exchange's preceding turn, its memories'
context: the newest of them that is the same user's or the channel's own (user_id '').
Another user's turn is never a memory's context: ForgetUser deletes that user's turns and
memories, and their words must not stay behind in someone else's memory (and its
search_text). Bounded so that a user new to a busy channel does not scan its history;
migration 0013 remade the older memories' context with the same window."""

_TURN_COLUMNS = [c.name for c in turns.c if c.name != "user_id"] + ["user_id"]
"""The turns' columns as `CLAIM` returns them (after its job and row kind)."""
_ORDER_BACK = "ORDER BY p.created_at DESC, p.job_id DESC, p.position DESC"

_CLAIM = sa.text(
    # The oldest free rows: never leased, or their lease (or the wait after a failure) ran
    # out. Locked: two replicas never take one.
    "WITH free AS (SELECT job_id, attempts FROM memory.formation_outbox"  # noqa: S608 - our names; values bound
    "  WHERE (claimed_until IS NULL OR claimed_until < now()) AND job_id <> ALL(:skip)"
    "  ORDER BY created_at, job_id LIMIT :n FOR UPDATE SKIP LOCKED"
    # Each claim counts an attempt (formation.py gives it back when the embedder or
    # Postgres was down): a job claimed `:max` times already, its leases lost (a worker
    # dying on it, or slower than the lease) or failing alone, is dropped ...
    "), dropped AS (DELETE FROM memory.formation_outbox o"
    "  WHERE o.job_id IN (SELECT job_id FROM free WHERE attempts >= :max) RETURNING o.job_id"
    # ... and the others are leased for `:lease` seconds.
    "), claimed AS (UPDATE memory.formation_outbox o"
    " SET claimed_until = now() + make_interval(secs => :lease), claimed_by = :token,"
    "  attempts = o.attempts + 1"
    " WHERE o.job_id IN (SELECT job_id FROM free WHERE attempts < :max)"
    " RETURNING o.job_id, o.created_at"
    # Each exchange's first turn, whose preceding turn is its memories' context.
    "), firsts AS (SELECT DISTINCT ON (t.job_id) t.job_id, t.channel_id, t.personality_id,"
    "  t.user_id, t.created_at FROM memory.turns t JOIN claimed c ON c.job_id = t.job_id"
    "  ORDER BY t.job_id, t.position"
    # The claimed jobs with their turns (none: deleted since) and whether the turn's
    # scope already holds a memory formed from it ...
    ") SELECT c.job_id AS claimed_job, c.created_at AS claimed_at, 'turn' AS kind,"
    f" {', '.join('t.' + name for name in _TURN_COLUMNS)},"
    " EXISTS (SELECT 1 FROM memory.memories m WHERE m.source_turn_ids @> ARRAY[t.id::text]"
    "  AND m.personality_id = t.personality_id AND m.user_id = t.user_id) AS formed"
    " FROM claimed c LEFT JOIN memory.turns t ON t.job_id = c.job_id"
    # ... the turn before each exchange in its conversation that is the same user's or the
    # channel's own, among the last PRECEDING_WINDOW ...
    " UNION ALL SELECT f.job_id, NULL, 'preceding',"
    f" {', '.join('p.' + name for name in _TURN_COLUMNS)}, false"
    " FROM firsts f CROSS JOIN LATERAL (SELECT * FROM (SELECT * FROM memory.turns p"
    "  WHERE p.channel_id = f.channel_id AND p.personality_id = f.personality_id"
    f"  AND p.created_at < f.created_at {_ORDER_BACK} LIMIT {PRECEDING_WINDOW}) p"
    f"  WHERE p.user_id IN (f.user_id, '') {_ORDER_BACK} LIMIT 1) p"
    # ... and the jobs dropped.
    " UNION ALL SELECT d.job_id, NULL, 'dropped',"
    f" {', '.join('NULL' for _name in _TURN_COLUMNS)}, false FROM dropped d"
).bindparams(
    sa.bindparam("token", type_=sa.Uuid),
    sa.bindparam("skip", type_=ARRAY(sa.Text)),
    sa.bindparam("lease", type_=sa.Float),
    sa.bindparam("n", type_=sa.Integer),
    sa.bindparam("max", type_=sa.Integer),
)
CLAIM = direct.Statement(_CLAIM)  # run through tzurot.db.direct
"""A batch of the formation outbox, leased, with all formation reads of it: one statement."""


def _kept(job: str) -> str:
    """SQL: whether a formation write keeps the batch's work for the job `job`: all of it
    without a claim (no `:jobs`), else only while the job is still the claim's (`mine`)."""
    return f"(cardinality(:jobs) = 0 OR {job} IN (SELECT job_id FROM mine))"  # noqa: S608


def _kept_turns(turns_column: str, jobs_column: str) -> str:
    """SQL: the turn ids of `turns_column` whose job (the same place of `jobs_column`) is
    `_kept`, in order."""
    return (
        f"ARRAY(SELECT s.turn FROM unnest({turns_column}, {jobs_column})"  # noqa: S608 - ours
        f" WITH ORDINALITY AS s(turn, job, k) WHERE {_kept('s.job')} ORDER BY s.k)"
    )


WRITE_FORMED = sa.text(
    # Which of the batch's jobs are still ours? (Another replica may have taken rows whose
    # lease ran out; a forget deleted its user's.) Locked, so no one takes them before this
    # statement commits.
    "WITH mine AS MATERIALIZED (SELECT job_id FROM memory.formation_outbox"  # noqa: S608
    "  WHERE job_id = ANY(:jobs) AND claimed_by = :token FOR UPDATE"
    # The batch's new memories, but none formed from a job no longer ours (its new worker
    # forms it) nor of a forgotten user or personality (tombstones.py); a turn of a job no
    # longer ours merged into one of them is left out of its sources.
    "), given AS MATERIALIZED (SELECT n.i, n.id, n.personality_id, n.user_id, n.text,"
    "  n.sector, n.salience, n.context, n.created_at, n.accessed_at,"
    f"  {_kept_turns('n.source_turn_ids', 'n.jobs')} AS source_turn_ids,"
    f"  NOT {_kept('n.jobs[1]')}"
    f"  OR {forgotten_sql('n.personality_id', 'n.user_id')} AS left_out"
    " FROM jsonb_to_recordset(:rows) AS n(i int, id uuid, personality_id text, user_id text,"
    "  text text, sector text, salience float8, source_turn_ids text[], jobs text[],"
    "  context text, created_at timestamptz, accessed_at timestamptz)"
    "), new AS (INSERT INTO memory.memories (id, personality_id, user_id, text, embedding,"
    "  sector, salience, source_turn_ids, context, created_at, last_accessed_at, decayed_at)"
    f" SELECT n.id, n.personality_id, n.user_id, n.text, {nth_vector('n.i')}, n.sector,"
    "  n.salience, n.source_turn_ids, n.context, coalesce(n.created_at, now()),"
    "  coalesce(n.accessed_at, n.created_at, now()), coalesce(n.accessed_at, n.created_at, now())"
    " FROM given n WHERE NOT n.left_out"
    # A near-duplicate arrived: the target absorbs its turns (of jobs still ours), salience
    # and access (merge()).
    f"), merging AS (SELECT u.id, {_kept_turns('u.turns', 'u.jobs')} AS turns, u.salience"
    " FROM jsonb_to_recordset(:merges) AS u(id uuid, turns text[], jobs text[], salience float8)"
    "), merged AS (UPDATE memory.memories m SET"
    "  source_turn_ids = ARRAY(SELECT DISTINCT unnest(m.source_turn_ids || u.turns)),"
    f"  salience = least(1.0, greatest({EFFECTIVE_SALIENCE_SQL}, u.salience)),"
    "  last_accessed_at = now(), decayed_at = now()"
    " FROM merging u WHERE m.id = u.id AND cardinality(u.turns) > 0"
    # Edges in both directions, in a fixed order (concurrent upserts cannot deadlock); none
    # to a new memory left out above.
    "), linked AS (INSERT INTO memory.waypoints (src_id, dst_id, weight)"
    " SELECT CAST(l.src AS uuid), CAST(l.dst AS uuid), :weight"
    " FROM unnest(CAST(:srcs AS text[]), CAST(:dsts AS text[])) AS l(src, dst)"
    " WHERE NOT EXISTS (SELECT 1 FROM given n"
    "  WHERE n.left_out AND CAST(n.id AS text) IN (l.src, l.dst)) ORDER BY 1, 2"
    " ON CONFLICT (src_id, dst_id) DO NOTHING"
    "), done AS (DELETE FROM memory.formation_outbox WHERE job_id IN (SELECT job_id FROM mine)"
    ") SELECT cardinality(:jobs) = 0 OR EXISTS (SELECT 1 FROM mine)"
).bindparams(
    sa.bindparam("jobs", type_=ARRAY(sa.Text)),
    sa.bindparam("token", type_=sa.Uuid),
    sa.bindparam("rows", type_=JSONB),
    sa.bindparam("merges", type_=JSONB),
    sa.bindparam("weight", type_=sa.Float),
)
"""Formation's writes for a batch and the end of its claim's jobs: one statement. Only the
work of the jobs still the claim's is written (all of it without a claim); nothing if none
is."""

RENEW_CLAIM = sa.text(
    "UPDATE memory.formation_outbox"
    " SET claimed_until = now() + make_interval(secs => :lease)"
    " WHERE job_id = ANY(:jobs) AND claimed_by = :token"
).bindparams(
    sa.bindparam("jobs", type_=ARRAY(sa.Text)),
    sa.bindparam("token", type_=sa.Uuid),
    sa.bindparam("lease", type_=sa.Float),
)
"""A claim's lease extended (formation's heartbeat), on the jobs still its own."""

RELEASE_FAILED = sa.text(
    # Claimed `:max` times (each claim counted one), the job goes; else it is free again
    # after `:retry` seconds, twice as long after each attempt. Both only while the job is
    # still this claim's (another replica's lease, or its new row, is not touched).
    "WITH gone AS (DELETE FROM memory.formation_outbox"
    "  WHERE job_id = :job AND claimed_by = :token AND attempts >= :max RETURNING job_id"
    "), kept AS (UPDATE memory.formation_outbox SET claimed_by = NULL, claimed_until = now()"
    "  + make_interval(secs => :retry * power(2, least(greatest(attempts, 1), 20) - 1))"
    "  WHERE job_id = :job AND claimed_by = :token AND attempts < :max"
    ") SELECT EXISTS (SELECT 1 FROM gone)"
).bindparams(
    sa.bindparam("job", type_=sa.Text),
    sa.bindparam("token", type_=sa.Uuid),
    sa.bindparam("max", type_=sa.Integer),
    sa.bindparam("retry", type_=sa.Float),
)
"""A job that failed alone given back with its attempt counted, or dropped: one statement."""

RELEASE_UNFORMED = sa.text(
    "UPDATE memory.formation_outbox SET attempts = greatest(attempts - 1, 0),"
    " claimed_by = NULL, claimed_until = now() + make_interval(secs => :delay)"
    " WHERE job_id = ANY(:jobs) AND claimed_by = :token"
).bindparams(
    sa.bindparam("jobs", type_=ARRAY(sa.Text)),
    sa.bindparam("token", type_=sa.Uuid),
    sa.bindparam("delay", type_=sa.Float),
)
"""Jobs given back untried (the embedder or Postgres was down): their claim's attempt
uncounted, free again after `:delay` seconds."""
