"""`migrate_all` (what `tzurot up` and `tzurot migrate` run): Alembic only for the schemas that
are behind, found with one query each."""

import pytest

from tzurot.cli.migrate import migrate_all
from tzurot.db.blocking import run_blocking
from tzurot.db.heads import behind_head, installed_migrations
from tzurot.db.migrate import current, downgrade
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component


def test_a_schema_behind_is_found_and_upgraded(fresh_database: DatabaseFactory) -> None:
    url = fresh_database()
    installed = installed_migrations()
    assert run_blocking(lambda: behind_head(url, installed)) == installed  # never migrated

    assert migrate_all(url) == installed
    assert run_blocking(lambda: behind_head(url, installed)) == []

    keyvault = next(m for m in installed if m.service == "keyvault")
    head = current(keyvault.script_location, url, keyvault.schema)
    downgrade(keyvault.script_location, url, keyvault.schema, "-1")
    assert run_blocking(lambda: behind_head(url, installed)) == [keyvault]

    migrate_all(url)
    assert current(keyvault.script_location, url, keyvault.schema) == head
    assert run_blocking(lambda: behind_head(url, installed)) == []


def test_an_unreachable_database_counts_as_behind() -> None:
    installed = installed_migrations()
    url = "postgresql://nobody@/nowhere?host=/nonexistent-socket-dir"
    assert run_blocking(lambda: behind_head(url, installed)) == installed
