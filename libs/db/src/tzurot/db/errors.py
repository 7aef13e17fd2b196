"""Why a database could not be used, by kind: the caller picks its exit code by the class.

Each is a StartupError (a service meeting one cannot start) whose message is one line naming
where the database is (`host:port db=name`) and never its password. Only the standard library
and tzurot.runtime are imported here: the CLI maps these to exit codes without SQLAlchemy.
"""

from __future__ import annotations

from tzurot.runtime.errors import StartupError

URL_FORM = "postgresql://user:password@host:port/database"
"""The shape a database URL error message points to."""


class DatabaseUrlError(StartupError, ValueError):
    """The database URL cannot be used as written. The message quotes no part of it but its
    scheme: a malformed URL may hold its password anywhere (in the "port", in the "host")."""


class DatabaseUnreachable(StartupError):
    """No database server answered there: none runs, an unknown host, a timeout."""


class DatabaseRefused(StartupError):
    """The server answered and refused: a wrong password or user, no such database, a
    missing privilege."""
