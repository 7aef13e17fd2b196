"""The `tzurot` command line: run the mesh locally, chat, manage keys, certificates, migrations.

Each group of commands lives in its own module and registers on the typer apps of
`cli_app`; importing them here builds the command tree. Everything heavy loads inside the
command that needs it: `tzurot --help` and `tzurot chat -m` must start in well under a
second (gRPC, protobuf, pydantic and structlog cost more)."""

from __future__ import annotations

import os
import sys

import typer

from tzurot.cli.cli_app import _PLAIN, app, import_app, keys_app, wallet_app
from tzurot.cli.command_errors import _guarded, _run

# Imported in the order `tzurot --help` lists the commands: the order they register in.
# isort: off
from tzurot.cli.up_command import up
from tzurot.cli.chat_command import chat
from tzurot.cli.wallet_commands import wallet_list, wallet_remove, wallet_set, wallet_test
from tzurot.cli.setup_commands import certs, migrate
from tzurot.cli.master_key_commands import keys_add_version, keys_rotate
from tzurot.cli.import_commands import import_shapes
# isort: on

# What this module offered before the commands moved out (tests import them from here).
__all__ = [
    "_guarded",
    "_run",
    "app",
    "certs",
    "chat",
    "import_app",
    "import_shapes",
    "keys_add_version",
    "keys_app",
    "keys_rotate",
    "main",
    "migrate",
    "up",
    "wallet_app",
    "wallet_list",
    "wallet_remove",
    "wallet_set",
    "wallet_test",
]

ADMIN_HELP = "Operator tasks against the running mesh."


def main() -> None:
    if sys.argv[1:2] != ["up"]:  # (the services `up` starts keep gRPC's own default)
        # gRPC's core logs a failed TLS handshake at INFO on stderr, before our one line.
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    # `tzurot admin` loads gRPC and every stub at import: registered for real only when asked
    # for, so the other commands keep their fast start; help lists it all the same.
    if sys.argv[1:2] == ["admin"]:
        from tzurot.admin.commands import app as admin_app

        app.add_typer(admin_app, name="admin")
    else:
        app.add_typer(typer.Typer(help=ADMIN_HELP, **_PLAIN), name="admin")
    app()


if __name__ == "__main__":
    main()
