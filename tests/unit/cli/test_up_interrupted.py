"""Ctrl-C while `tzurot up` is still starting: the terminal sends SIGINT to `up` and to every
process it started (the fork server importing, the services at their gates, Postgres's
initdb or pg_ctl). `up` stops what it started and ends quietly with 0, as Ctrl-C after the
start does: no traceback, and none of the failures the interrupt caused reported as faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import threading
import time
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


@pytest.mark.parametrize(
    "after",
    [
        # Its interpreter is only starting: no handler of its own yet (it died of the signal,
        # or printed a KeyboardInterrupt traceback); SIGINT is held since the spawn instead.
        0.0,
        0.3,  # it imports its preload for a second or more
    ],
)
async def test_the_fork_server_interrupted_while_importing_exits_quietly(
    capfd: pytest.CaptureFixture[str], after: float
) -> None:
    mesh = Mesh()
    try:
        await mesh.spawn_gated(["keyvault"])
        server = mesh._fork_server
        if server is None:
            pytest.skip("no fork server here (not Linux, or no subreaper)")
        await asyncio.sleep(after)
        server.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(server.wait(), 30) == 130
    finally:
        await mesh.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err


async def test_a_wait_cancelled_before_the_fork_server_is_done_leaves_stop_clean() -> None:
    """Ctrl-C while the fork server still imports or forks: `up` cancels its wait for a
    service's exit (`wait_any_exit`, waiting for the adoption), then stops the mesh, which
    finishes the adoption; the cancel went on into the adoption, and `stop` raised it."""
    mesh = Mesh()
    try:
        await mesh.spawn_gated(["keyvault"])
        if mesh._fork_server is None:
            pytest.skip("no fork server here (not Linux, or no subreaper)")
        died = asyncio.ensure_future(mesh.wait_any_exit())
        await asyncio.sleep(0.1)  # it waits for the adoption (the fork server imports for 1 s+)
        assert not died.done()
        died.cancel()
    finally:
        await mesh.stop()
    assert mesh.processes["keyvault"].returncode is not None


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


@contextlib.contextmanager
def _started_postgres(data_dir: Path) -> Iterator[str]:
    yield "postgresql://tz@/tzurot?host=/nonexistent-socket-dir"


async def test_ctrl_c_while_migrating_stops_at_once_and_tells_the_migrations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, handlers_restored: None
) -> None:
    """The migrations run in a worker thread: `up` sees Ctrl-C while they wait (on a lock a
    long transaction holds, minutes of retries), stops at once, and tells them to give up."""
    told: list[threading.Event] = []

    def stuck_migrating(database_url: str, *, stopping: threading.Event) -> None:
        told.append(stopping)
        stopping.wait(60)  # as the pause between lock retries does

    monkeypatch.setattr(mesh_module, "local_postgres", _started_postgres)
    monkeypatch.setattr(mesh_module, "migrate_all", stuck_migrating)
    asyncio.get_running_loop().call_later(0.3, os.kill, os.getpid(), signal.SIGINT)
    started = time.monotonic()
    code = await run_mesh(MeshLayout(tmp_path, base_port=1), seeds=[], extra_env={}, with_bot=False)
    assert code == 0
    assert time.monotonic() - started < 30, "up waited for the migrations"
    [stopping] = told
    assert stopping.is_set()


async def test_a_ctrl_c_before_run_mesh_took_sigint_over_stops_before_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, handlers_restored: None
) -> None:
    """Ctrl-C while `up` still imports (asyncio.run's own handler cancels its task, which
    runs on to its next await): run_mesh ends there, before it starts Postgres."""
    started: list[Path] = []

    @contextlib.contextmanager
    def postgres(data_dir: Path) -> Iterator[str]:
        started.append(data_dir)
        yield "postgresql://tz@/tzurot?host=/nonexistent-socket-dir"

    monkeypatch.setattr(mesh_module, "local_postgres", postgres)

    async def interrupted_up() -> int:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # what asyncio.run's SIGINT handler does
        layout = MeshLayout(tmp_path, base_port=1)
        return await run_mesh(layout, seeds=[], extra_env={}, with_bot=False)

    with pytest.raises(asyncio.CancelledError):
        await asyncio.ensure_future(interrupted_up())
    assert started == []


async def test_a_ctrl_c_before_up_took_sigint_over_ends_the_migrations_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, handlers_restored: None
) -> None:
    """Ctrl-C while `up` still imports (asyncio.run's own handler: its task is cancelled, at
    its next await) reaches run_mesh as a cancellation while it migrates: the migrations are
    told to give up, and their failure once Postgres stops is nobody's to report (it was
    "Task exception was never retrieved", with a traceback)."""
    loop = asyncio.get_running_loop()
    told: list[threading.Event] = []
    migrating = asyncio.Event()

    def migrating_until_postgres_stops(database_url: str, *, stopping: threading.Event) -> None:
        told.append(stopping)
        loop.call_soon_threadsafe(migrating.set)
        stopping.wait(60)
        raise RuntimeError("the database system is shutting down")

    monkeypatch.setattr(mesh_module, "local_postgres", _started_postgres)
    monkeypatch.setattr(mesh_module, "migrate_all", migrating_until_postgres_stops)
    reported: list[dict[str, Any]] = []
    monkeypatch.setattr(loop, "call_exception_handler", reported.append)
    layout = MeshLayout(tmp_path, base_port=1)
    running = asyncio.ensure_future(run_mesh(layout, seeds=[], extra_env={}, with_bot=False))
    await migrating.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    [stopping] = told
    assert stopping.is_set()
    await asyncio.sleep(0.1)  # the thread's failure arrives
    gc.collect()  # where a task's unretrieved exception is reported
    assert reported == []


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
