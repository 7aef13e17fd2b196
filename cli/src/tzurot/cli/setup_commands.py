"""`tzurot certs` and `tzurot migrate`: a development CA and certificates, and every
service's database migrations."""

# ruff: noqa: PLC0415 - commands import their heavy modules inside their bodies, so
# `tzurot --help` and `tzurot chat -m` start fast (tests/unit/cli/test_lazy_start.py)

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tzurot.cli.cli_app import app
from tzurot.cli.command_errors import _guarded
from tzurot.cli.paths import DEFAULT_DATA_DIR


@app.command()
def certs(
    out: Annotated[
        Path, typer.Option(help="Where to write the CA and certificates.")
    ] = DEFAULT_DATA_DIR / "certs",
) -> None:
    """Make a development CA and one certificate per service identity.

    Run again, it keeps the CA and every certificate still valid, and makes only what is
    missing or about to expire. A private key file kept that others may read is made 0600
    (owner only), and said so; a symlink to one, or one whose mode cannot be changed, is
    left as it is, and said so."""
    from tzurot.cli.private_files import private_key_files, tighten
    from tzurot.runtime.errors import StartupError
    from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki

    try:
        # First: a key is closed even when the CA then turns out unusable.
        for found in tighten(private_key_files(out, SERVICE_IDENTITIES)):
            print(f"tzurot: {found.notice()}", file=sys.stderr)
        generate_dev_pki(out, SERVICE_IDENTITIES)
    except OSError as exc:
        print(f"tzurot: cannot write certificates to {out}: {exc.strerror or exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    except (ValueError, StartupError):  # a CA already there that cannot be read or used
        print(
            f"tzurot: the CA in {out / 'ca'} cannot be used (ca.crt and ca.key unreadable or "
            "not a development CA); move that folder away to make a new CA",
            file=sys.stderr,
        )
        raise typer.Exit(2) from None
    print(f"Certificates for {', '.join(SERVICE_IDENTITIES)} are in {out}/")


@app.command()
def migrate(
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="TZUROT_DATABASE_URL", help="Postgres URL (default: the embedded one)."
        ),
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Embedded Postgres location.")] = DEFAULT_DATA_DIR,
) -> None:
    """Run every service's migrations (schemas core, memory, vault), and say which ran:
    a line per schema (what it was given), then "Applied N migrations." or "The database is
    up to date: no migration to apply."

    Exits 2 for a malformed URL, 3 when its server cannot be reached, 1 when it refuses
    (password, database, privileges); the one line never shows the password."""

    def _body() -> int:
        from tzurot.cli.migrate import migrate_database, migrate_schemas, migration_report

        if database_url:
            ran = migrate_database(database_url)
        else:
            from tzurot.cli.localdb import local_postgres

            with local_postgres(data_dir / "pg") as url:
                ran = migrate_schemas(url)
        print("\n".join(migration_report(ran)))
        return 0

    raise typer.Exit(_guarded(_body))
