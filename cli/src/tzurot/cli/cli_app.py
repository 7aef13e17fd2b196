"""The `tzurot` command tree (typer apps) and what its commands share: the user,
settings and gateway stubs, each loaded only when a command calls for it."""

# ruff: noqa: PLC0415 - commands import their heavy modules inside their bodies, so
# `tzurot --help` and `tzurot chat -m` start fast (tests/unit/cli/test_lazy_start.py)

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

# Everything else loads inside the command that needs it: `tzurot --help` and `tzurot chat -m`
# must start in well under a second (gRPC, protobuf, pydantic and structlog cost more).
if TYPE_CHECKING:
    from tzurot.cli.gateway_client import CliUser
    from tzurot.cli.settings import CliSettings

# Plain help (no rich): loading rich to format help costs more than the rest of the start.
_PLAIN: dict[str, Any] = {"rich_markup_mode": None, "pretty_exceptions_enable": False}
app = typer.Typer(help="Tzurot: AI personalities for Discord.", no_args_is_help=True, **_PLAIN)
wallet_app = typer.Typer(
    help="Your LLM provider API keys (bring your own key).", no_args_is_help=True, **_PLAIN
)
app.add_typer(wallet_app, name="wallet")
keys_app = typer.Typer(
    help="Keyvault's master key: versions and rotation.", no_args_is_help=True, **_PLAIN
)
app.add_typer(keys_app, name="keys")
import_app = typer.Typer(
    help="Bring personalities in from elsewhere.", no_args_is_help=True, **_PLAIN
)
app.add_typer(import_app, name="import")

UserOption = Annotated[str, typer.Option("--user", "-u", help="Who you are to the personalities.")]


def _default_user() -> str:
    return os.environ.get("USER") or getpass.getuser() or "you"


def _user(name: str) -> CliUser:
    from tzurot.cli.gateway_client import CliUser

    return CliUser(name or _default_user())


def _settings() -> CliSettings:
    from tzurot.cli.settings import CliSettings

    return CliSettings.from_env()


def _gateway() -> tuple[Any, Any, Any]:
    """The gateway messages, client and settings, loaded only by the commands that call it."""
    from tzurot.cli.gateway_client import GatewayClient
    from tzurot.cli.settings import CliSettings
    from tzurot.v1 import gateway_pb2 as gw

    return gw, GatewayClient, CliSettings
