"""The heads `tzurot up` reads from the migration scripts (to skip Alembic when every schema is
already there) are Alembic's own, for every installed service and for odd scripts."""

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from tzurot.db.heads import (
    InstalledMigrations,
    installed_migrations,
    libpq_url,
    migration_problem,
    script_heads,
)
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


def _three_revisions(tmp_path: Path) -> str:
    versions = tmp_path / "versions"
    _script(versions, "a.py", 'revision = "0001"\ndown_revision = None\n')
    _script(versions, "b.py", 'revision = "0002"\ndown_revision = "0001"\n')
    _script(versions, "c.py", 'revision = "0003"\ndown_revision = "0002"\n')
    return str(tmp_path)


def test_a_schema_behind_the_head_or_never_migrated_is_refused(tmp_path: Path) -> None:
    location = _three_revisions(tmp_path)
    assert migration_problem("core", frozenset({"0002"}), location) == (
        "the schema 'core' is at revision 0002 and this release needs 0003: "
        "run `tzurot migrate` first"
    )
    assert migration_problem("core", frozenset(), location) == (
        "the schema 'core' was never migrated: run `tzurot migrate` first"
    )


def test_a_schema_at_the_head_or_at_a_newer_release_runs(tmp_path: Path) -> None:
    """A revision the scripts do not know is a newer release's: the code was rolled back, and
    migrations add before they remove, so the older code runs on the newer schema."""
    location = _three_revisions(tmp_path)
    assert migration_problem("core", frozenset({"0003"}), location) is None
    assert migration_problem("core", frozenset({"0004"}), location) is None


def test_scripts_it_cannot_read_refuse_nothing(tmp_path: Path) -> None:
    _script(tmp_path / "versions", "x.py", "revision = make_id()\ndown_revision = None\n")
    assert migration_problem("core", frozenset({"0001"}), str(tmp_path)) is None
