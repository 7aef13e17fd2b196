"""Restart backoff grows per crash; only repeated crashes within the window stop the mesh."""

from tzurot.cli.supervise import CrashHistory, RestartPolicy


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RestartPolicy(first_backoff=0.5, max_backoff=4.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_crashes_far_apart_never_stop_the_mesh() -> None:
    history = CrashHistory(RestartPolicy(max_crashes=3, window_seconds=60))
    counts = [history.record("memory", t) for t in (0, 100, 200, 300, 400)]
    assert counts == [1, 1, 1, 1, 1]
    assert not any(history.gives_up(c) for c in counts)


def test_repeated_crashes_in_the_window_stop_it() -> None:
    history = CrashHistory(RestartPolicy(max_crashes=3, window_seconds=60))
    counts = [history.record("memory", t) for t in (0, 10, 20)]
    assert counts == [1, 2, 3]
    assert history.gives_up(counts[-1])


def test_each_service_has_its_own_count() -> None:
    history = CrashHistory(RestartPolicy(max_crashes=2))
    assert history.record("memory", 0) == 1
    assert history.record("gateway", 1) == 1
    assert history.record("memory", 2) == 2
