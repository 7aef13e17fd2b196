"""bench.pg_statements' reading of Postgres's log (log_statement_stats) and WAL listing."""

from bench.pg_statements import commits, statement_costs

_LOG = """\
2026-12-03 02:48:30.319 UTC [1480] LOG:  BIND MESSAGE STATISTICS
2026-12-03 02:48:30.319 UTC [1480] DETAIL:  ! system usage stats:
\t!\t0.000100 s user, 0.000030 s system, 0.000029 s elapsed
\t!\t[0.033336 s user, 0.029648 s system total]
\t!\t0/0 [162/9] voluntary/involuntary context switches
2026-12-03 02:48:30.319 UTC [1480] STATEMENT:  UPDATE t
\t  SET a = $1 WHERE id = $2
2026-12-03 02:48:30.320 UTC [1480] LOG:  EXECUTE MESSAGE STATISTICS
2026-12-03 02:48:30.320 UTC [1480] DETAIL:  ! system usage stats:
\t!\t0.000000 s user, 0.000200 s system, 0.000236 s elapsed
\t!\t[0.033336 s user, 0.030280 s system total]
2026-12-03 02:48:30.320 UTC [1480] STATEMENT:  UPDATE t
\t  SET a = $1 WHERE id = $2
2026-12-03 02:48:30.321 UTC [1481] LOG:  EXECUTE MESSAGE STATISTICS
2026-12-03 02:48:30.321 UTC [1481] DETAIL:  ! system usage stats:
\t!\t0.001000 s user, 0.000000 s system, 0.001000 s elapsed
2026-12-03 02:48:30.321 UTC [1481] STATEMENT:  SELECT 1
2026-12-03 02:48:30.322 UTC [1481] LOG:  EXECUTE MESSAGE STATISTICS
2026-12-03 02:48:30.322 UTC [1481] DETAIL:  ! system usage stats:
\t!\t0.000500 s user, 0.000500 s system, 0.001000 s elapsed
2026-12-03 02:48:30.322 UTC [1481] STATEMENT:  SELECT 1"""


def test_costs_are_summed_per_statement_and_message_kind() -> None:
    costs = statement_costs(_LOG)
    assert set(costs) == {"UPDATE t SET a = $1 WHERE id = $2", "SELECT 1"}
    update = costs["UPDATE t SET a = $1 WHERE id = $2"]
    assert update.calls == 1
    assert round(update.seconds["BIND"], 6) == 0.00013
    assert round(update.seconds["EXECUTE"], 6) == 0.0002
    select = costs["SELECT 1"]
    assert select.calls == 2
    assert round(select.total, 6) == 0.002


def test_commits_are_counted_from_the_wal_listing() -> None:
    listing = (
        "rmgr: Heap len (rec/tot): 54/54, tx: 1660, lsn: 0/01E8F0B0, desc: INSERT off: 18\n"
        "rmgr: Transaction tx: 1660, lsn: 0/01E8F1B0, desc: COMMIT 2026-12-03\n"
        "rmgr: Transaction tx: 1661, lsn: 0/01E8F2B0, desc: COMMIT 2026-12-03\n"
    )
    assert commits(listing) == 2
