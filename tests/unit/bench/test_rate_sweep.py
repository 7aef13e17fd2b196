"""The rate sweep's logic (bench/throughput.py) on synthetic steps: which rate it reports."""

from bench.throughput import Step, Sweep, sweep


def _step(rate: float, p99_ms: float, *, errors: int = 0, offered: float | None = None) -> Step:
    """A step whose 100 latencies have `p99_ms` as their 99th percentile."""
    return Step(
        target_per_s=rate,
        whole_ms=[10.0] * 98 + [p99_ms, p99_ms],
        offered_per_s=rate if offered is None else offered,
        errors=errors,
    )


async def _sweep_over(p99_by_rate: dict[float, float]) -> tuple[Sweep, list[float]]:
    asked: list[float] = []

    async def step(rate: float) -> Step:
        asked.append(rate)
        return _step(rate, p99_by_rate[rate])

    return await sweep(list(p99_by_rate), step), asked


async def test_the_rate_is_the_highest_before_p99_passes_the_limit() -> None:
    result, asked = await _sweep_over({10: 20.0, 20: 40.0, 30: 99.0, 40: 150.0, 50: 90.0})
    assert result.rate == 30
    assert asked == [10, 20, 30, 40]  # stops at the first rate that fails


async def test_rates_are_stepped_in_ascending_order() -> None:
    result, asked = await _sweep_over({30: 50.0, 10: 20.0, 20: 30.0})
    assert asked == [10, 20, 30]
    assert result.rate == 30


async def test_no_rate_when_the_first_step_fails() -> None:
    result, asked = await _sweep_over({10: 100.0, 20: 20.0})
    assert result.rate == 0.0
    assert result.best is None
    assert asked == [10]


def test_a_step_with_a_failed_turn_does_not_pass() -> None:
    assert _step(10, 20.0).passed
    assert not _step(10, 20.0, errors=1).passed


def test_a_step_whose_driver_fell_behind_does_not_pass() -> None:
    assert _step(50, 20.0, offered=48.0).passed
    assert not _step(50, 20.0, offered=45.0).passed


def test_a_step_without_measured_turns_does_not_pass() -> None:
    assert not Step(target_per_s=10, whole_ms=[], offered_per_s=10, errors=0).passed


def test_p99_is_the_99th_percentile_of_the_measured_turns() -> None:
    assert _step(10, 120.0).p99 == 120.0
    assert not _step(10, 120.0).passed
