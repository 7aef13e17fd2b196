"""`tzurot up`: the whole mesh on this machine (embedded Postgres, dev certificates, five services).

Starts the services as child processes (`python -m tzurot.<service>`), waits for every health
check, loads the seed personalities and prints where each listens. Ctrl-C stops all of it.
`up` spawns the services before anything else, behind start gates (processes.py), so their
imports overlap certificates, Postgres and migrations; `run_mesh` opens the gates.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import shlex
import signal
import stat
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tzurot.cli.localdb import local_postgres
from tzurot.cli.migrate import migrate_all
from tzurot.cli.paths import DEFAULT_DATA_DIR
from tzurot.cli.private_files import private_key_files, tighten
from tzurot.cli.processes import SERVICES, Mesh
from tzurot.cli.seeds import Seed, refused_seed
from tzurot.cli.supervise import CrashHistory, RestartPolicy
from tzurot.cli.terminal_text import one_line
from tzurot.runtime.client import secure_channel
from tzurot.runtime.errors import StartupError, TzurotError
from tzurot.runtime.regular_file import dangling_symlink, not_a_regular_file
from tzurot.runtime.tls import SERVICE_IDENTITIES, TlsFiles, generate_dev_pki, load_tls
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

HEALTHY_WITHIN_SECONDS = 240.0
"""How long start-up may take: memory loads and runs its embedding model before SERVING
(a few seconds on an idle machine, minutes on a crowded one)."""
INTERRUPT_SETTLES_SECONDS = 0.2
"""How long a failure at start waits for a Ctrl-C that caused it to be seen: the terminal
signals the services and Postgres's tools too, and they may fail before `up` reads its own."""
CHAT_HINT = "make chat   (or .venv/bin/tzurot chat <personality>)"
"""What the start-up banner suggests; the README shows the same commands."""
DEFAULT_BASE_PORT = 15051
"""Where `tzurot chat`, `wallet` and `admin` look for the mesh unless told (TZUROT_*_ADDR)."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class MeshLayout:
    """Ports and paths of a local mesh."""

    data_dir: Path
    host: str = "127.0.0.1"
    base_port: int = DEFAULT_BASE_PORT

    @property
    def certs_dir(self) -> Path:
        return self.data_dir / "certs"

    @property
    def master_key_file(self) -> Path:
        return self.data_dir / "master.key"

    def port(self, service: str) -> int:
        return self.base_port + ("gateway", "inference", "memory", "keyvault").index(service)

    def addr(self, service: str) -> str:
        return f"{self.host}:{self.port(service)}"


def client_env(layout: MeshLayout) -> dict[str, str]:
    """What the other commands (`tzurot chat`, `wallet`, `admin`, `keys rotate`) need set to
    find this mesh: nothing when it runs at the defaults (.data, ports from 15051)."""
    env: dict[str, str] = {}
    if layout.host != "127.0.0.1" or layout.base_port != DEFAULT_BASE_PORT:
        for service in ("gateway", "inference", "memory", "keyvault"):
            env[f"TZUROT_{service.upper()}_ADDR"] = layout.addr(service)
    cli_certs = layout.certs_dir / "cli"
    if cli_certs.resolve() != (DEFAULT_DATA_DIR / "certs" / "cli").resolve():
        env["TZUROT_CLI_TLS_DIR"] = str(cli_certs.resolve())
    return env


def ensure_master_key(path: Path) -> None:
    """A development master key, made once and kept with the local data (mode 0600).

    One already there must be a regular file (a symlink to one too): anything else (a FIFO
    would make keyvault's start wait) is refused in one line, and so is a symlink to nothing
    (a missing mount, more likely than a key to make: no key is made through it)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise dangling_symlink("master key file", path) from None
    except OSError as exc:  # a symlink loop, a file where a folder should be
        raise StartupError(f"cannot read master key file {path}: {exc.strerror}") from None
    else:
        if not stat.S_ISREG(found.st_mode):
            raise not_a_regular_file("master key file", path, found.st_mode)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        dangling = _dangling_folder(path.parent) if isinstance(exc, FileExistsError) else None
        why = exc.strerror if dangling is None else _missing(dangling)
        raise StartupError(f"cannot create master key file {path}: {why}") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")


def check_data_dir(data_dir: Path) -> None:
    """Refuses, in one line, a data folder that is (or lies in) a symlink to nothing: a
    missing mount, not a place to make one (it was a FileExistsError traceback)."""
    dangling = _dangling_folder(data_dir)
    if dangling is not None:
        where = "" if dangling == data_dir else f"{data_dir}: "
        raise StartupError(f"data folder {where}{_missing(dangling)}")


def _dangling_folder(folder: Path) -> Path | None:
    """`folder`, or the folder above it, that is a symlink to nothing; None when none is."""
    for each in (folder, *folder.parents):
        if os.path.islink(each) and not os.path.exists(each):
            return each
    return None


def _missing(link: Path) -> str:
    try:
        target = f" ({os.readlink(link)})"
    except OSError:  # gone since
        target = ""
    return f"{link} is a symlink to a missing folder{target}"


def service_env(
    layout: MeshLayout, service: str, database_url: str, extra: Mapping[str, str]
) -> dict[str, str]:
    env = {
        **os.environ,
        "TZUROT_TLS_DIR": str(layout.certs_dir / service),
        "TZUROT_GATEWAY_ADDR": layout.addr("gateway"),
        "TZUROT_INFERENCE_ADDR": layout.addr("inference"),
        "TZUROT_MEMORY_ADDR": layout.addr("memory"),
        "TZUROT_KEYVAULT_ADDR": layout.addr("keyvault"),
        **extra,
    }
    if service != "bot":
        env["TZUROT_LISTEN"] = layout.addr(service)
    if service in ("gateway", "memory", "keyvault"):
        env["TZUROT_DATABASE_URL"] = database_url
    if service == "keyvault":
        env["TZUROT_MASTER_KEY_FILE"] = str(layout.master_key_file)
    return env


async def wait_healthy(layout: MeshLayout, services: Sequence[str], within: float) -> None:
    """Polls each service's grpc.health.v1 over mTLS (as `cli`) until SERVING, all at once."""
    tls = load_tls(layout.certs_dir / "cli")
    waits = {asyncio.ensure_future(_wait_serving(layout, s, tls)): s for s in services}
    done, late = await asyncio.wait(waits, timeout=within)
    for task in late:
        task.cancel()
    for task in done:
        task.result()
    if late:
        names = ", ".join(waits[task] for task in waits if task in late)
        raise TimeoutError(f"{names} did not become healthy within {within:.0f} s")


async def _wait_serving(layout: MeshLayout, service: str, tls: TlsFiles) -> None:
    # A channel whose first connection is refused waits gRPC's reconnect backoff (1 s, then
    # 1.6 s, ...) before it tries again: most of a start on an idle machine. So the channel
    # is made once the port accepts connections.
    await _wait_listening(layout.host, layout.port(service))
    async with secure_channel(
        layout.addr(service), tls, server_identity=service, default_timeout=1.0
    ) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.05)


async def _wait_listening(host: str, port: int) -> None:
    while True:
        try:
            _reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


async def import_seeds(layout: MeshLayout, seeds: Sequence[Seed]) -> list[str]:
    """Loads the seeds (seeds.py) through the gateway (as the operator's CLI); a seed the
    gateway refuses is a SeedError naming its file."""
    names = []
    tls = load_tls(layout.certs_dir / "cli")
    async with secure_channel(
        layout.addr("gateway"), tls, server_identity="gateway", default_timeout=10.0
    ) as channel:
        stub = gw_grpc.GatewayServiceStub(channel)
        for seed in seeds:
            try:
                reply = await stub.ImportPersonality(
                    gw.ImportPersonalityRequest(
                        format=gw.IMPORT_FORMAT_SEED_YAML, document=seed.document
                    )
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() is grpc.StatusCode.INVALID_ARGUMENT:
                    raise refused_seed(seed.path, exc.details() or "") from None
                raise
            names.append(reply.personality.display_name)
    return names


async def run_mesh(
    layout: MeshLayout,
    *,
    seeds: Sequence[Seed],
    extra_env: Mapping[str, str],
    with_bot: bool,
    ready: asyncio.Event | None = None,
    policy: RestartPolicy | None = None,
    gated: Mesh | None = None,
    started: float | None = None,
) -> int:
    """Runs until Ctrl-C/SIGTERM, restarting services that exit (supervise.py); returns an
    exit code: 0 when stopped, 1 when a service failed at start or crashed repeatedly.

    `gated`: the services already spawned behind start gates (`Mesh.spawn_gated`, SERVICES
    and the bot when `with_bot`), opened here; without it they are spawned here. `started`:
    the monotonic time the start began (for the banner)."""
    started = time.monotonic() if started is None else started
    mesh = gated or Mesh()
    services = list(SERVICES)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watchers: list[asyncio.Future[Any]] = []
    try:
        # A Ctrl-C that came before these handlers (asyncio.run's own cancels this task, at
        # its next await) ends the start here, not after Postgres and the migrations.
        await asyncio.sleep(0)
        check_data_dir(layout.data_dir)
        generate_dev_pki(layout.certs_dir, SERVICE_IDENTITIES)
        ensure_master_key(layout.master_key_file)
        keys = [*private_key_files(layout.certs_dir, SERVICE_IDENTITIES), layout.master_key_file]
        for found in tighten(keys):  # kept from an earlier start, opened since
            print(f"tzurot up: {found.notice()}", file=sys.stderr)
        with local_postgres(layout.data_dir / "pg") as database_url:
            try:
                if not await _migrated_unless_stopped(database_url, stop):
                    return 0
                for service in services + (["bot"] if with_bot else []):
                    env = service_env(layout, service, database_url, extra_env)
                    await _start(mesh, service, env, gated=gated is not None)
                died = asyncio.ensure_future(mesh.wait_any_exit())
                stopper = asyncio.ensure_future(stop.wait())
                watchers += [died, stopper]
                failed = await _until_healthy(layout, services, died, stopper, watchers)
                if failed is not None:
                    return failed
                names = await _seeds_unless_stopped(layout, seeds, stopper)
                if names is None:
                    return 0
                _print_ready(layout, services, names, time.monotonic() - started, with_bot)
                if ready is not None:
                    ready.set()
                return await _supervise(mesh, died, stopper, policy or RestartPolicy())
            finally:
                for task in watchers:
                    task.cancel()
                await mesh.stop()
    except StartupError:
        # Ctrl-C in this terminal also interrupts a step in progress (Postgres's initdb or
        # pg_ctl), which then fails: stopping was asked for, that failure is not news.
        await asyncio.wait({asyncio.ensure_future(stop.wait())}, timeout=INTERRUPT_SETTLES_SECONDS)
        if stop.is_set():
            return 0
        raise
    finally:
        await mesh.stop()  # the gates of services never opened (no-op once stopped)


async def _start(mesh: Mesh, service: str, env: Mapping[str, str], *, gated: bool) -> None:
    """Opens `service`'s start gate with `env` (`gated`: it waits behind one), else spawns it."""
    if gated:
        mesh.open(service, env)
    else:
        await mesh.spawn(service, env)


async def _migrated_unless_stopped(database_url: str, stop: asyncio.Event) -> bool:
    """`migrate_all` in a worker thread, so that a Ctrl-C is seen while it runs (its lock
    retries may wait minutes); False when the stop came first. The thread is told (a pause
    between retries ends at once) and not waited for here: the statement it runs ends, rolled
    back, when Postgres stops next (asyncio.run joins the thread on the way out)."""
    stopping = threading.Event()
    migrated = asyncio.ensure_future(
        asyncio.to_thread(migrate_all, database_url, stopping=stopping)
    )
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({migrated, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        # A stop, or this task cancelled (a Ctrl-C that came before run_mesh's handler).
        if stop.is_set() or not migrated.done():
            stopping.set()
            if not migrated.cancel():  # done already: its outcome is the stop's doing
                migrated.exception()
    if stop.is_set():
        return False
    migrated.result()
    return True


async def _seeds_unless_stopped(
    layout: MeshLayout, seeds: Sequence[Seed], stopper: asyncio.Future[Any]
) -> list[str] | None:
    """`import_seeds`, or None when a stop (Ctrl-C reaches the gateway too) cut it short."""
    try:
        return await import_seeds(layout, seeds)
    except (grpc.RpcError, TzurotError):
        await asyncio.wait({stopper}, timeout=INTERRUPT_SETTLES_SECONDS)
        if stopper.done():
            return None
        raise


async def _until_healthy(
    layout: MeshLayout,
    services: Sequence[str],
    died: asyncio.Future[str],
    stopper: asyncio.Future[Any],
    watchers: list[asyncio.Future[Any]],
) -> int | None:
    """Waits until every service is SERVING (None) or the start ends first: 0 when stopped
    (Ctrl-C, SIGTERM), 1 when a service exited or start-up took too long."""
    healthy: asyncio.Future[Any] = asyncio.ensure_future(
        wait_healthy(layout, services, within=HEALTHY_WITHIN_SECONDS)
    )
    watchers.append(healthy)
    await asyncio.wait({healthy, died, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if died.done() and not stopper.done():
        # Ctrl-C in this terminal reaches the services too: one may exit before `up` sees it.
        await asyncio.wait({stopper}, timeout=INTERRUPT_SETTLES_SECONDS)
    if stopper.done():
        return 0
    if died.done():  # a service failed at start: its own one-line reason is above
        print(f"tzurot up: {died.result()} exited; stopping the mesh", file=sys.stderr)
        return 1
    try:
        healthy.result()
    except TimeoutError as exc:
        print(f"tzurot up: {exc}; stopping the mesh", file=sys.stderr)
        return 1
    return None


async def _supervise(
    mesh: Mesh,
    died: asyncio.Future[str],
    stopper: asyncio.Future[Any],
    policy: RestartPolicy,
) -> int:
    """Restarts each service that exits, with backoff, until Ctrl-C or repeated crashes."""
    history = CrashHistory(policy)
    while True:
        await asyncio.wait({stopper, died}, return_when=asyncio.FIRST_COMPLETED)
        if stopper.done():
            died.cancel()
            return 0
        service = died.result()
        code = mesh.processes[service].returncode
        crashes = history.record(service, time.monotonic())
        if history.gives_up(crashes):
            print(
                f"tzurot up: {service} exited {crashes} times within "
                f"{policy.window_seconds:.0f} s (last exit code {code}); stopping the mesh",
                file=sys.stderr,
            )
            return 1
        delay = policy.backoff(crashes)
        print(
            f"tzurot up: {service} exited (code {code}); restarting it in {delay:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        await asyncio.wait({stopper}, timeout=delay)
        if stopper.done():
            return 0
        await mesh.respawn(service)
        died = asyncio.ensure_future(mesh.wait_any_exit())


def _print_ready(
    layout: MeshLayout, services: Sequence[str], names: Sequence[str], seconds: float, bot: bool
) -> None:
    print(f"\nTzurot is up in {seconds:.1f} s (Ctrl-C stops it).")
    for service in services:
        print(f"  {service:<10} {layout.addr(service)}  (mTLS, certs in {layout.certs_dir})")
    print(f"  {'bot':<10} {'connected to Discord' if bot else 'off (set TZUROT_DISCORD_TOKEN)'}")
    print(f"  postgres   {layout.data_dir / 'pg'} (embedded)")
    shown = ", ".join(one_line(name) for name in names)  # as the gateway stored them
    print(f"Personalities: {shown or 'none (add personalities/*.yaml)'}")
    env = client_env(layout)
    if env:  # not at the defaults: the other commands must be told where it is
        exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
        print(f"Not at the defaults; in another shell first: export {exports}")
    print(f"Try: {CHAT_HINT}\n", flush=True)
