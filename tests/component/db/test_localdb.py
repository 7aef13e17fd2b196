"""The embedded server: extensions in every fresh database, isolation, persistence."""

import shutil
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from tzurot.cli.localdb import EXTENSIONS, create_database, local_postgres
from tzurot.db.engine import create_engine
from tzurot.runtime.errors import StartupError
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component


async def _scalar(url: str, sql: str) -> object:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.scalar(text(sql))
    finally:
        await engine.dispose()


async def _run(url: str, sql: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


async def test_fresh_database_has_the_extensions(fresh_database: DatabaseFactory) -> None:
    url = fresh_database()

    installed = await _scalar(url, "select array_agg(extname::text) from pg_extension")
    distance = await _scalar(url, "select '[1,0]'::vector <=> '[0,1]'::vector")

    assert isinstance(installed, list)
    assert set(EXTENSIONS) <= set(installed)
    assert distance == 1.0


async def test_fresh_databases_are_isolated(fresh_database: DatabaseFactory) -> None:
    first, second = fresh_database(), fresh_database()

    await _run(first, "create table only_here (id int)")

    assert first != second
    assert await _scalar(first, "select to_regclass('public.only_here')::text") == "only_here"
    assert await _scalar(second, "select to_regclass('public.only_here')::text") is None


def test_create_database_refuses_odd_names(postgres_url: str) -> None:
    with pytest.raises(ValueError, match="not a plain database name"):
        create_database(postgres_url, 'x"; drop database postgres; --')


async def test_data_survives_a_restart() -> None:
    root = Path(tempfile.mkdtemp(prefix="tzpg-", dir="/tmp"))  # short: unix socket path
    try:
        with local_postgres(root / "pg") as url:
            await _run(url, "create table kept (v text)")
            await _run(url, "insert into kept values ('still here')")
        with local_postgres(root / "pg", delete_on_exit=True) as url:
            assert await _scalar(url, "select v from kept") == "still here"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_unusable_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")

    with (
        pytest.raises(StartupError, match=r"^embedded Postgres did not start in .*a-file/pg \("),
        local_postgres(tmp_path / "a-file" / "pg"),
    ):
        pass


async def test_deep_data_dir_gets_its_socket_elsewhere() -> None:
    root = Path(tempfile.mkdtemp(prefix="tzpg-", dir="/tmp"))
    deep = root / ("d" * 50) / ("e" * 50) / "pg"  # socket path would pass 107 bytes
    try:
        with local_postgres(deep, delete_on_exit=True) as url:
            socket_dir = Path(parse_qs(urlsplit(url).query)["host"][0])
            assert socket_dir != deep
            assert await _scalar(url, "select 1") == 1
        shutil.rmtree(socket_dir, ignore_errors=True)  # pgserver leaves the fallback dir
    finally:
        shutil.rmtree(root, ignore_errors=True)
