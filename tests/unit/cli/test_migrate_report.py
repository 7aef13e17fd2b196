"""`tzurot migrate` says whether it ran migrations, and which, or had nothing to do."""

from __future__ import annotations

from tzurot.cli.migrate import SchemaMigrated, _applied, migration_report
from tzurot.db.heads import InstalledMigrations, installed_migrations

CORE = InstalledMigrations("gateway", "core", "/nowhere/gateway")
MEMORY = InstalledMigrations("memory", "memory", "/nowhere/memory")
VAULT = InstalledMigrations("keyvault", "vault", "/nowhere/keyvault")


def test_nothing_to_do_says_the_database_is_up_to_date() -> None:
    done = [SchemaMigrated(CORE, ()), SchemaMigrated(VAULT, ()), SchemaMigrated(MEMORY, ())]
    assert migration_report(done) == [
        "gateway: schema core is at head",
        "keyvault: schema vault is at head",
        "memory: schema memory is at head",
        "The database is up to date: no migration to apply.",
    ]


def test_a_run_that_migrated_names_what_it_applied() -> None:
    fresh = tuple(f"{n:04d}_step" for n in range(1, 30))
    done = [
        SchemaMigrated(CORE, fresh),
        SchemaMigrated(VAULT, ("0001_vault",)),
        SchemaMigrated(MEMORY, ("0007_a", "0008_b")),
    ]
    assert migration_report(done) == [
        "gateway: schema core is at head: applied 29 migrations (0001_step … 0029_step)",
        "keyvault: schema vault is at head: applied 1 migration (0001_vault)",
        "memory: schema memory is at head: applied 2 migrations (0007_a, 0008_b)",
        "Applied 32 migrations.",
    ]


def test_a_schema_whose_revision_could_not_be_read_is_said_migrated() -> None:
    done = [SchemaMigrated(CORE, None), SchemaMigrated(VAULT, ())]
    assert migration_report(done) == [
        "gateway: schema core is at head: migrated",
        "keyvault: schema vault is at head",
        "Migrated.",
    ]


def test_the_scripts_applied_are_those_between_the_revisions_before_and_after() -> None:
    core = next(m for m in installed_migrations() if m.schema == "core")
    location = core.script_location
    before, after = {"core": frozenset({"0026"})}, {"core": frozenset({"0030"})}
    assert _applied(location, before, after, "core") == (
        "0027_usage_estimated",
        "0028_voice_clones",
        "0029_deletion_cloners",
        "0030_alias_keys",
    )
    fresh = _applied(location, {"core": frozenset()}, after, "core")
    assert fresh is not None
    assert (fresh[0], fresh[-1], len(fresh)) == ("0001_core", "0030_alias_keys", 30)
    assert _applied(location, after, after, "core") == ()
    assert _applied(location, None, after, "core") is None  # not read before: not known
