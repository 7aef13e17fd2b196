"""`TZUROT_BENCH_UP_PYTHON`: the deployed figures measure another checkout's `tzurot up`."""

import sys

import pytest

from bench.cold_start import UP_PYTHON, up_interpreter


def test_without_it_this_checkout_runs_with_the_bench_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(UP_PYTHON, raising=False)
    monkeypatch.setenv("GRPC_EXPERIMENTS", "-event_engine_client")
    python, env = up_interpreter()
    assert python == sys.executable
    assert env["GRPC_EXPERIMENTS"] == "-event_engine_client"


def test_another_checkout_runs_without_this_benchs_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(UP_PYTHON, "/elsewhere/.venv/bin/python")
    monkeypatch.setenv("GRPC_EXPERIMENTS", "-event_engine_client")
    monkeypatch.setenv("TZUROT_SOMETHING", "kept")
    python, env = up_interpreter()
    assert python == "/elsewhere/.venv/bin/python"
    assert "GRPC_EXPERIMENTS" not in env
    assert UP_PYTHON not in env
    assert env["TZUROT_SOMETHING"] == "kept"
