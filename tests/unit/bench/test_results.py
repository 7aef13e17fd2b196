"""Each bench run's JSON says which machine it ran on, with the reference loop's speed; the
printed table shows a score to the digits that tell it from its goal."""

import json
from pathlib import Path

import pytest

from bench import results
from bench.machine import reference_loop_seconds


def test_the_json_carries_the_machines_reference_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    figure = results.summarise("a figure", [1.0, 2.0, 3.0])
    path = results.write([figure], quick=True, reference_loop_s=1.2345)
    document = json.loads(path.read_text())
    assert document["machine"]["reference_loop_s"] == 1.234
    assert document["figures"][0]["p50"] == 2.0


def test_the_reference_loop_takes_cpu_time() -> None:
    assert 0 < reference_loop_seconds(repeats=1) < 60


def test_a_score_prints_to_three_decimals_a_ratio_to_two_a_count_or_time_to_one() -> None:
    recall = results.Figure("LoCoMo recall@10", "", 1536, 0.7444, 0.7444, 0.7444)
    ratio = results.goal("mesh/floor", 1.4298, "x", "<= 1.3x", met=False)
    time = results.summarise("search", [8.24, 8.16])
    count = results.Figure("SQL round trips per turn", "", 1, 12.6, 12.6, 12.6)
    lines = results.table([recall, ratio, time, count]).splitlines()
    assert "0.744" in lines[1]
    assert "1.43x" in lines[2]
    assert "8.2ms" in lines[3]
    assert " 12.6 " in lines[4]
    assert results.goal_line(ratio) == "goal mesh/floor: 1.43 x (goal <= 1.3x) NOT MET"
