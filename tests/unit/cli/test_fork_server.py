"""`tzurot up`'s fork server: the shared libraries imported once, each gated service forked
from it and adopted by `up` (real processes; no timings, the figures are bench `cold_start`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tzurot.cli.processes import Mesh
from tzurot.runtime.forkserver import PRELOAD, process_name, runs_service

SERVICES = ("gateway", "inference", "memory", "keyvault")


def _proc(pid: int, entry: str) -> bytes:
    return Path(f"/proc/{pid}/{entry}").read_bytes()


def _probe(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout


def test_the_fork_server_preloads_only_what_two_services_import_anyway() -> None:
    # What each imports, and what its database engine loads when made (no connection).
    started = (
        "import sys, tzurot.{service}.__main__\n"
        "if 'tzurot.db.engine' in sys.modules:\n"
        "    sys.modules['tzurot.db.engine'].create_engine('postgresql://u@localhost/db')\n"
        "print(*sys.modules)"
    )
    imported = {
        service: set(_probe(started.format(service=service)).split()) for service in SERVICES
    }
    for module in PRELOAD:
        users = [service for service in SERVICES if module in imported[service]]
        assert len(users) >= 2, (module, users)


def test_preloading_starts_no_thread_so_forking_is_safe() -> None:
    out = _probe(
        "import importlib, os, threading\n"
        "from tzurot.runtime.forkserver import PRELOAD\n"
        "for m in PRELOAD: importlib.import_module(m)\n"
        "print(threading.active_count(), len(os.listdir('/proc/self/task')))"
    )
    assert out.split() == ["1", "1"]


async def test_gated_services_are_forked_then_adopted_and_start_as_python_m_would(
    capfd: pytest.CaptureFixture[str],
) -> None:
    mesh = Mesh()
    try:
        await mesh.spawn_gated(["keyvault", "memory"])
        # keyvault gets no settings: it fails at start with its own one-line reason and code
        mesh.open("keyvault", {**os.environ, "TZUROT_MASTER_KEY": ""})
        assert await mesh.wait_any_exit() == "keyvault"
        assert mesh.processes["keyvault"].returncode == 2
        memory = mesh.processes["memory"].pid
        assert memory != 0
        assert mesh.processes["memory"].returncode is None  # still at its gate
        stat = _proc(memory, "stat").rsplit(b")", 1)[1].split()
        assert int(stat[1]) == os.getpid()  # adopted: the fork server has exited
        assert _proc(memory, "comm").decode().strip() == process_name("memory")
        assert runs_service(memory, "memory")
        assert not runs_service(memory, "keyvault")
    finally:
        await mesh.stop()
    assert mesh.processes["memory"].returncode is not None
    assert "tzurot-keyvault: cannot start:" in capfd.readouterr().err


async def test_inference_is_forked_before_the_database_libraries_load() -> None:
    """Inference (no database) starts importing while the server loads SQLAlchemy and
    asyncpg for the others: their compiled modules are mapped in memory, not in inference."""
    mesh = Mesh()
    try:
        await mesh.spawn_gated(["inference", "memory"])
        await mesh.made()  # the fork server has made both and exited
        maps = {s: _proc(mesh.processes[s].pid, "maps") for s in ("inference", "memory")}
    finally:
        await mesh.stop()
    assert b"/asyncpg/protocol/" in maps["memory"]
    assert b"/asyncpg/" not in maps["inference"]
    assert b"/grpc/_cython/" in maps["inference"]  # the common stage it shares


async def test_without_the_fork_server_each_service_is_its_own_interpreter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZUROT_FORK_SERVER", "0")
    mesh = Mesh()
    try:
        await mesh.spawn_gated(["memory"])
        memory = mesh.processes["memory"].pid
        argv = _proc(memory, "cmdline").split(b"\0")
        assert argv[1:3] == [b"-m", b"tzurot.memory"]
        assert runs_service(memory, "memory")
    finally:
        await mesh.stop()
