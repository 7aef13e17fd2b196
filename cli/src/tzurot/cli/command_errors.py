"""How a command ends: its exit code, and an error as one line on standard error
(`_run`, `_guarded`); gRPC and the error types load only on failure."""

# ruff: noqa: PLC0415 - commands import their heavy modules inside their bodies, so
# `tzurot --help` and `tzurot chat -m` start fast (tests/unit/cli/test_lazy_start.py)

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from tzurot.cli.cli_app import _settings

if TYPE_CHECKING:
    from collections.abc import Callable


def _run(coro: object, target: str = "") -> int:
    """Runs a command's coroutine; errors become one line and an exit code."""
    import asyncio

    return _guarded(lambda: asyncio.run(coro), target)  # type: ignore[arg-type]


def _guarded(body: Callable[[], int], target: str = "") -> int:
    """`body()`'s exit code; an error becomes one line and an exit code (see speech.py):
    1 the mesh refused, 2 bad usage or local setup, 3 unreachable, 130 Ctrl-C.

    `target`: what the command calls, for "cannot reach ..." (default: the gateway)."""
    try:
        return body()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # reported in one line below, or raised again
        return _reported(exc, target)


def _reported(exc: Exception, target: str) -> int:
    """The exit code of an error the user is told of in one line; raises any other.

    gRPC and the error types load here, only on failure: `tzurot up` spawns its services
    first thing, before anything heavy is imported."""
    from tzurot.cli.answer_files import FilesNotSaved
    from tzurot.cli.seeds import SeedError
    from tzurot.cli.settings import SettingsError

    if isinstance(exc, SettingsError | SeedError):
        print(f"tzurot: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, FilesNotSaved):  # local: the folder given, the disk
        print(f"tzurot: {exc.explained()}", file=sys.stderr)
        return 2

    import grpc

    from tzurot.cli.speech import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, rpc_failure
    from tzurot.db.errors import DatabaseRefused, DatabaseUnreachable
    from tzurot.runtime.errors import StartupError

    if isinstance(exc, StartupError):
        print(f"tzurot: {exc}", file=sys.stderr)
        if isinstance(exc, DatabaseUnreachable):
            return EXIT_UNREACHABLE
        return EXIT_REFUSED if isinstance(exc, DatabaseRefused) else EXIT_USAGE
    if isinstance(exc, grpc.aio.AioRpcError):
        target = target or _settings().gateway_named
        line, code = rpc_failure(exc, target)
        print(f"tzurot: {line}", file=sys.stderr)
        return code
    raise exc
