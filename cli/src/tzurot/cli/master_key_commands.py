"""`tzurot keys`: keyvault's master key versions and their rotation (the work is in
keys.py and keys_rotate.py)."""

# ruff: noqa: PLC0415 - commands import their heavy modules inside their bodies, so
# `tzurot --help` and `tzurot chat -m` start fast (tests/unit/cli/test_lazy_start.py)

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tzurot.cli.cli_app import keys_app
from tzurot.cli.command_errors import _run
from tzurot.cli.paths import DEFAULT_DATA_DIR


@keys_app.command("add-version")
def keys_add_version(
    master_key_file: Annotated[
        Path,
        typer.Option(help="The master key file (what keyvault's TZUROT_MASTER_KEY_FILE reads)."),
    ] = DEFAULT_DATA_DIR / "master.key",
) -> None:
    """Append a new master key version; keyvault wraps new keys with it once it sees it."""
    from tzurot.cli.keys import add_master_key_version, rotation_lock
    from tzurot.runtime.errors import StartupError

    try:
        with rotation_lock(master_key_file) as locked:  # not while a rotation adds or rewraps
            version = add_master_key_version(master_key_file, locked=locked)
    except StartupError as exc:
        print(f"tzurot: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    print(f"Added master key version {version} to {master_key_file}")


@keys_app.command("rotate")
def keys_rotate(
    data_dir: Annotated[
        Path, typer.Option(help="Local state of `tzurot up` (master.key, certs/cli).")
    ] = DEFAULT_DATA_DIR,
    add_version: Annotated[
        bool,
        typer.Option(
            help="Append a new version to <data-dir>/master.key first (local dev), once "
            "keyvault answered. In production add it to the Secret, roll keyvault, then use "
            "--no-add-version."
        ),
    ] = True,
    keyvault_addr: Annotated[
        str, typer.Option(envvar="TZUROT_KEYVAULT_ADDR", help="keyvault host:port.")
    ] = "127.0.0.1:15054",
    tls_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="TZUROT_CLI_TLS_DIR", help="The cli certificate (default <data-dir>/certs/cli)."
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Keys per transaction (0: keyvault's default).")
    ] = 0,
) -> None:
    """Re-wrap every stored key under the newest master key version, online and resumably.

    keyvault is asked first: when it cannot be reached, or its newest master key version is
    not the newest in <data-dir>/master.key (it reads another file), no version is added. A
    version added stays when the rewrap then fails (keyvault may already seal keys with
    it): run again with --no-add-version to finish. One version added at a time: a second
    adding run (or `keys add-version`) meanwhile says so and exits 2 (a lock beside
    master.key); --no-add-version takes no lock."""
    from tzurot.cli.keys_rotate import rotate_master_key

    certs = tls_dir or data_dir / "certs" / "cli"
    rotation = rotate_master_key(
        data_dir / "master.key",
        keyvault_addr,
        certs,
        add_version=add_version,
        batch_size=batch_size,
    )
    raise typer.Exit(_run(rotation, f"keyvault at {keyvault_addr} (--keyvault-addr)"))
