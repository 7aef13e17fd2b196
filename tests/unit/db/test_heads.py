"""The heads `tzurot up` reads from the migration scripts (to skip Alembic when every schema is
already there) are Alembic's own, for every installed service and for odd scripts."""

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from tzurot.db.heads import InstalledMigrations, installed_migrations, libpq_url, script_heads
from tzurot.db.migrate import alembic_config


@pytest.mark.parametrize("migration", installed_migrations(), ids=lambda m: m.service)
def test_heads_read_from_the_scripts_are_alembics(migration: InstalledMigrations) -> None:
    location = migration.script_location
    config = alembic_config(location, "postgresql://unused/db", migration.schema)
    assert script_heads(location) == frozenset(ScriptDirectory.from_config(config).get_heads())


def _script(versions: Path, name: str, body: str) -> None:
    versions.mkdir(parents=True, exist_ok=True)
    (versions / name).write_text(body)


def test_a_merge_has_one_head_and_branches_have_two(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    _script(versions, "a.py", 'revision = "a"\ndown_revision = None\n')
    _script(versions, "b.py", 'revision: str = "b"\ndown_revision: str | None = "a"\n')
    _script(versions, "c.py", "revision = 'c'\ndown_revision = 'a'\n")
    assert script_heads(str(tmp_path)) == frozenset({"b", "c"})
    _script(versions, "d.py", 'revision = "d"\ndown_revision = ("b", "c")\n')
    assert script_heads(str(tmp_path)) == frozenset({"d"})


@pytest.mark.parametrize(
    "body",
    [
        "revision = make_id()\ndown_revision = None\n",  # not a literal
        'revision = "x"\n',  # no down_revision line
        'revision = "x"\ndown_revision = "missing"\n',  # a parent that is no script
    ],
)
def test_scripts_it_cannot_read_for_certain_give_no_answer(tmp_path: Path, body: str) -> None:
    _script(tmp_path / "versions", "x.py", body)
    assert script_heads(str(tmp_path)) is None


def test_urls_lose_their_sqlalchemy_driver() -> None:
    assert libpq_url("postgresql+asyncpg://u:p@h/db?x=1") == "postgresql://u:p@h/db?x=1"
    assert libpq_url("postgres://u@/db?host=/s") == "postgres://u@/db?host=/s"
