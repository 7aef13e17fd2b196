"""Ctrl-C while `tzurot up` is still starting: the terminal sends SIGINT to `up` and to every
process it started (the fork server importing, the services at their gates, Postgres's
initdb or pg_ctl). `up` stops what it started and ends quietly with 0, as Ctrl-C after the
start does: no traceback, and none of the failures the interrupt caused reported as faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tzurot.cli import mesh as mesh_module
from tzurot.cli.mesh import MeshLayout, _until_healthy, run_mesh
from tzurot.cli.processes import Mesh
from tzurot.runtime.errors import StartupError
from tzurot.runtime.startgate import StartGate
from tzurot.runtime.tls import generate_dev_pki


def test_opening_the_gate_of_a_service_that_already_exited_is_no_error() -> None:
    """It exited at its gate (Ctrl-C reached it first): its exit is reported by
    `wait_any_exit`, not by a BrokenPipeError out of `up`."""
    mesh = Mesh()
    gate = StartGate()
    gate.spawned()  # the only reader, the child, is gone
    mesh._gates["keyvault"] = gate
    mesh.open("keyvault", {"TZUROT_LISTEN": "127.0.0.1:1"})
    assert "keyvault" not in mesh._gates


async def test_the_fork_server_interrupted_while_importing_exits_quietly(
    capfd: pytest.CaptureFixture[str],
) -> None:
    mesh = Mesh()
    try:
        await mesh.spawn_gated(["keyvault"])
        server = mesh._fork_server
        if server is None:
            pytest.skip("no fork server here (not Linux, or no subreaper)")
        await asyncio.sleep(0.3)  # it imports its preload for a second or more
        server.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(server.wait(), 30) == 130
    finally:
        await mesh.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err


@contextlib.contextmanager
def _interrupted_postgres(data_dir: Path) -> Iterator[str]:
    """What Ctrl-C during `initdb` looks like to `up`: SIGINT, then the start fails."""
    os.kill(os.getpid(), signal.SIGINT)
    raise StartupError(f"embedded Postgres did not start in {data_dir} (initdb: interrupted)")
    yield ""  # never reached: a generator for contextmanager


@contextlib.contextmanager
def _failing_postgres(data_dir: Path) -> Iterator[str]:
    raise StartupError(f"embedded Postgres did not start in {data_dir} (disk full)")
    yield ""


@pytest.fixture
async def handlers_restored() -> AsyncIterator[None]:
    """run_mesh leaves its SIGINT/SIGTERM handlers on the loop; the test session's own
    Ctrl-C must work again afterwards."""
    yield
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


async def test_postgres_interrupted_at_start_is_a_stop_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, handlers_restored: None
) -> None:
    monkeypatch.setattr(mesh_module, "local_postgres", _interrupted_postgres)
    layout = MeshLayout(tmp_path / "data", base_port=1)
    code = await run_mesh(layout, seeds=[], extra_env={}, with_bot=False)
    assert code == 0


async def test_postgres_failing_on_its_own_is_still_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, handlers_restored: None
) -> None:
    monkeypatch.setattr(mesh_module, "local_postgres", _failing_postgres)
    layout = MeshLayout(tmp_path / "data", base_port=1)
    with pytest.raises(StartupError, match="disk full"):
        await run_mesh(layout, seeds=[], extra_env={}, with_bot=False)


async def test_a_service_exiting_as_ctrl_c_comes_is_a_stop_not_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The services get the terminal's SIGINT too, and one may exit before `up` has seen its
    own: `up` stops (0) without blaming the service."""
    generate_dev_pki(tmp_path / "certs", ["cli"])
    layout = MeshLayout(tmp_path, base_port=1)
    loop = asyncio.get_running_loop()
    died: asyncio.Future[str] = loop.create_future()
    died.set_result("keyvault")
    stop = asyncio.Event()
    loop.call_later(0.05, stop.set)  # `up`'s own SIGINT, handled a moment later
    stopper = asyncio.ensure_future(stop.wait())
    watchers: list[asyncio.Future[Any]] = [stopper]
    try:
        assert await _until_healthy(layout, ["keyvault"], died, stopper, watchers) == 0
    finally:
        for task in watchers:
            task.cancel()
    assert "exited" not in capsys.readouterr().err
