"""Each bench run's JSON says which machine it ran on, with the reference loop's speed."""

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
