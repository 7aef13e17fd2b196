"""The start gate: a service spawned early waits, then starts with the environment sent."""

from __future__ import annotations

import subprocess
import sys
import time

from tzurot.runtime.startgate import GATE_FD_ENV, StartGate, wait_at_gate

CHILD = """
import os
from tzurot.runtime.startgate import wait_at_gate
opened = wait_at_gate()
print(opened, os.environ.get("TZUROT_DATABASE_URL"), os.environ.get("TZUROT_START_GATE_FD"))
"""


def _spawn(gate: StartGate) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        env={"PATH": "/usr/bin:/bin", **gate.child_env()},
        pass_fds=(gate.child_fd,),
        stdout=subprocess.PIPE,
        text=True,
    )
    gate.spawned()
    return child


def test_without_a_gate_a_service_starts_at_once() -> None:
    environ = {"TZUROT_LISTEN": "127.0.0.1:0"}
    assert wait_at_gate(environ)
    assert environ == {"TZUROT_LISTEN": "127.0.0.1:0"}


def test_a_gated_child_waits_then_starts_with_the_environment_sent() -> None:
    gate = StartGate()
    child = _spawn(gate)
    time.sleep(0.3)
    assert child.poll() is None  # still at the gate
    gate.open({"TZUROT_DATABASE_URL": "postgresql://x@/db"})
    out, _ = child.communicate(timeout=60)
    assert out.split() == ["True", "postgresql://x@/db", "None"]  # the fd variable is gone


def test_a_gate_closed_without_opening_stops_the_start() -> None:
    gate = StartGate()
    child = _spawn(gate)
    gate.close()
    out, _ = child.communicate(timeout=60)
    assert out.split() == ["False", "None", "None"]


def test_the_gate_variable_names_an_inherited_descriptor() -> None:
    gate = StartGate()
    try:
        assert gate.child_env() == {GATE_FD_ENV: str(gate.child_fd)}
    finally:
        gate.close()
